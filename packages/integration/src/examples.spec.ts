import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

const EXAMPLES = ['lora', 'linear-adapter', 'no-rollback', 'no-scope-expansion', 'cnn-conv-adapters', 'config-file'].map((name) => ({ name }));

describe('examples', () => {
  it.each(EXAMPLES)('$name runs and adapts', async ({ name }) => {
    const main = path.join(root, 'examples', name, 'dist', 'main.js');
    expect(existsSync(main)).toBe(true);

    const { stdout } = await run(process.execPath, [main], { cwd: path.join(root, 'examples', name), timeout: 240_000 });

    expect(stdout).toMatch(/accuracy/i);
    expect(stdout).not.toMatch(/steps: 0 /);
    expect(stdout).not.toMatch(/\bn\/a\b/);
  });
});
