/** A wrong command line: an unknown command or flag, or a flag value out of range. Exit status 2. */
export class UsageError extends Error {
  readonly code = 'invalid_usage';
  readonly exitStatus = 2;

  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
