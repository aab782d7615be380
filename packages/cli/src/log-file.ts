import { existsSync, statSync } from 'node:fs';

import { JsonLinesWriter } from '@safe-metanet/core';

import { describeWriteError } from './output-files.js';
import { UsageError } from './usage-error.js';

/** Opens the --log-file writer, turning a path that cannot be written into a UsageError. */
export function openLogFile(file: string | undefined): JsonLinesWriter | undefined {
  if (file === undefined) {
    return undefined;
  }
  if (existsSync(file) && statSync(file).isDirectory()) {
    throw new UsageError(`Cannot write --log-file ${file}: it is a folder. Give a file path, such as ${file}/records.jsonl.`);
  }
  try {
    return new JsonLinesWriter(file);
  } catch (error) {
    throw new UsageError(`Cannot write --log-file ${file}: ${describeWriteError(file, error)}. Choose a path in a writable folder.`);
  }
}
