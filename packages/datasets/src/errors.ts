/**
 * Invalid data: a missing or corrupt data file, an unknown data set, a bad corruption name or
 * severity.
 *
 * This package does not depend on `@safe-metanet/core`, so it cannot throw core's `InputError`.
 * `DatasetError` carries the same `code` (`'invalid_input'`) and `exitStatus` (2), and the CLI
 * maps it to exit status 2 (invalid input) by reading `exitStatus`.
 */
export class DatasetError extends Error {
  /** Stable machine-readable identifier of the error kind, equal to core's `InputError` code. */
  readonly code = 'invalid_input';

  /** Process exit status the CLI uses for this error: 2, invalid input. */
  readonly exitStatus = 2;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'DatasetError';
  }
}
