import { JsonLinesWriter } from '@safe-metanet/core';

import { UsageError } from './usage-error.js';

/** Opens the --log-file writer, turning a path that cannot be written into a UsageError. */
export function openLogFile(file: string | undefined): JsonLinesWriter | undefined {
  if (file === undefined) {
    return undefined;
  }
  try {
    return new JsonLinesWriter(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new UsageError(`Cannot write --log-file ${file}: ${code}. Choose a path in a writable folder.`);
  }
}
