import { accessSync, constants, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { UsageError } from './usage-error.js';

/** Creates the --out folder and checks that it is writable, so that a long run does not fail at its end. */
export function prepareOutputDir(folder: string, flag = '--out'): string {
  try {
    mkdirSync(folder, { recursive: true });
    accessSync(folder, constants.W_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new UsageError(`Cannot write to ${flag} ${folder}: ${code}. Choose a writable folder.`);
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
