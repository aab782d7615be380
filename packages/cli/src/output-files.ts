import { accessSync, constants, existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { UsageError } from './usage-error.js';

/** Returns the nearest part of `target`'s path that exists and is a file, not a folder, if any. */
function fileInPath(target: string): string | undefined {
  let current = path.resolve(target);
  for (;;) {
    if (existsSync(current)) {
      return statSync(current).isDirectory() ? undefined : current;
    }
    const parent = path.dirname(current);
    if (parent === current) {
      return undefined;
    }
    current = parent;
  }
}

/** Describes why a path cannot be written, in words, from a file-system error. */
export function describeWriteError(target: string, error: unknown): string {
  const blocker = fileInPath(target);
  if (blocker !== undefined && blocker !== path.resolve(target)) {
    return `${blocker} is a file, not a folder`;
  }
  const code = (error as NodeJS.ErrnoException).code;
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'the file system is read-only';
    case 'EISDIR':
      return 'it is a folder';
    case 'ENOSPC':
      return 'no space left on the device';
    default:
      return error instanceof Error ? error.message : String(error);
  }
}

/** Creates an output folder and checks that it is writable, so that a long run does not fail at its end. */
export function prepareOutputDir(folder: string, flag = '--out'): string {
  try {
    mkdirSync(folder, { recursive: true });
    accessSync(folder, constants.W_OK);
  } catch (error) {
    throw new UsageError(`Cannot write to ${flag} ${folder}: ${describeWriteError(folder, error)}. Choose a writable folder.`);
  }
  return folder;
}

/** Writes a file under a temporary name in the same folder, then renames it into place. */
export function writeFileAtomically(file: string, contents: string): void {
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    writeFileSync(temporary, contents);
    renameSync(temporary, file);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}
