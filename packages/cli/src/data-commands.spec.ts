import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { beforeAll, describe, expect, it } from 'vitest';

const here = path.dirname(fileURLToPath(import.meta.url));
const bin = path.resolve(here, '../dist/bin.js');

let folder: string;
let config: string;

interface CliResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function cli(args: readonly string[]): CliResult {
  const result = spawnSync(process.execPath, [bin, ...args], { cwd: folder, encoding: 'utf8', timeout: 240_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

// A small MLP trained for one epoch keeps these process tests to seconds.
const SMALL = ['--dataset', 'mnist', '--epochs', '1', '--backend', 'cpu'];

beforeAll(() => {
  folder = mkdtempSync(path.join(tmpdir(), 'safe-metanet-cli-'));
  config = path.join(folder, 'small.yaml');
  writeFileSync(config, 'hidden_dim: 16\nseed: 3\n');
});

describe('train', () => {
  it('trains, saves, then reuses', () => {
    const first = cli(['train', ...SMALL, '--config', config, '--model-dir', 'models']);

    expect(first.status).toBe(0);
    expect(first.stdout).toMatch(/Trained in [\d.]+ s: mlp on mnist \(7996 train \/ 2004 test images, 1 epochs\)/);
    const accuracy = Number(/Clean test accuracy: ([\d.]+)%/.exec(first.stdout)?.[1]);
    // Chance is 10%; one epoch of a 16-unit MLP reaches about 70%.
    expect(accuracy).toBeGreaterThan(50);
    const files = readdirSync(path.join(folder, 'models'));
    expect(files).toHaveLength(1);
    const file = path.join(folder, 'models', files[0] as string);
    const modified = statSync(file).mtimeMs;

    const second = cli(['train', ...SMALL, '--config', config, '--model-dir', 'models']);

    expect(second.status).toBe(0);
    expect(second.stdout).toContain('Reused: mlp on mnist');
    expect(second.stdout).toContain(`Clean test accuracy: ${accuracy.toFixed(2)}%`);
    expect(statSync(file).mtimeMs).toBe(modified);
  });

  it('retrains when the config differs', () => {
    const other = path.join(folder, 'other.yaml');
    writeFileSync(other, 'hidden_dim: 12\nseed: 3\n');

    const result = cli(['train', ...SMALL, '--config', other, '--model-dir', 'models-other']);
    const again = cli(['train', ...SMALL, '--config', config, '--model-dir', 'models-other']);

    expect(result.status).toBe(0);
    expect(again.status).toBe(0);
    expect(again.stdout).toContain('Trained in');
    expect(readdirSync(path.join(folder, 'models-other'))).toHaveLength(2);
  });
});

describe('run', () => {
  it('prints adapted and frozen accuracy', () => {
    const result = cli([
      'run', ...SMALL, '--config', config, '--model-dir', 'models',
      '--corruption', 'contrast', '--severity', '4', '--max-samples', '256', '--batch-size', '32', '--log-file', 'run.jsonl',
    ]);

    expect(result.stderr).not.toContain('safe-metanet:');
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('Safe MetaNet run: mnist, contrast severity 4');
    expect(result.stdout).toMatch(/accuracy: adapted [\d.]+%, frozen source [\d.]+%/);
    const stepLines = result.stderr.split('\n').filter((line) => line.startsWith('INFO step '));
    expect(stepLines).toHaveLength(8);
    for (const line of stepLines) {
      expect(line).toMatch(/accuracy [\d.]+% \(frozen [\d.]+%\)/);
    }
    const records = readFileSync(path.join(folder, 'run.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
    expect(records).toHaveLength(8);
    for (const record of records) {
      expect(record.batch_size).toBe(32);
      expect(record.accuracy).toBeGreaterThanOrEqual(0);
      expect(record.accuracy).toBeLessThanOrEqual(1);
      expect(record.source_accuracy).toBeGreaterThanOrEqual(0);
      expect(record.source_accuracy).toBeLessThanOrEqual(1);
    }
  });

  it.each([
    { args: ['--corruption', 'fog'], fragment: 'Invalid value for --corruption: "fog"; allowed: gaussian_noise' },
    { args: ['--severity', '6'], fragment: 'Invalid value for --severity: "6"; expected an integer from 1 to 5' },
    { args: ['--dataset', 'no-such-folder'], fragment: 'no-such-folder' },
    { args: ['--batch-size', '5000'], fragment: 'Invalid value for --batch-size: 5000' },
  ])('rejects $args', ({ args, fragment }) => {
    const result = cli(['run', ...SMALL, '--config', config, '--model-dir', 'models', ...args]);

    expect(result.status).toBe(2);
    expect(result.stderr).toContain(fragment);
    expect(result.stderr).not.toContain('    at ');
  });
});

describe('bench', () => {
  it('warns once about a memory smaller than the batch', () => {
    const smallMemory = path.join(folder, 'small-memory.yaml');
    writeFileSync(smallMemory, 'hidden_dim: 16\nseed: 3\nmemory_size: 4\n');

    const result = cli([
      'bench', ...SMALL, '--config', smallMemory, '--model-dir', 'models',
      '--severity', '3', '--corruptions', 'contrast,rotate', '--max-samples', '64', '--batch-size', '32',
    ]);

    expect(result.status).toBe(0);
    const warnings = result.stderr.split('\n').filter((line) => line.includes('memory_size 4 is smaller than the batch'));
    expect(warnings).toEqual([
      'WARNING memory_size 4 is smaller than the batch of 32 samples, so the adapters train on 4 samples of it; set memory_size to at least the batch size.',
    ]);
    expect(result.stdout).toContain('memory_size 4');
  });

  it('writes results for every corruption, method and mode', () => {
    const result = cli([
      'bench', ...SMALL, '--config', config, '--model-dir', 'models',
      '--severity', '3,5', '--max-samples', '64', '--batch-size', '32', '--out', 'bench-out',
    ]);

    expect(result.status).toBe(0);
    expect(result.stdout).toContain('severity 3: error %');
    expect(result.stdout).toContain('severity 5: error %');
    expect(result.stdout).toMatch(/^mean\s/m);
    const results = JSON.parse(readFileSync(path.join(folder, 'bench-out', 'results.json'), 'utf8'));
    // 15 corruptions, 2 severities, 3 methods, 2 modes.
    expect(results.rows).toHaveLength(15 * 2 * 3 * 2);
    for (const row of results.rows) {
      expect(row.error).toBeGreaterThanOrEqual(0);
      expect(row.error).toBeLessThanOrEqual(1);
      expect(row.steps).toBe(2);
      expect(row.seconds).toBeGreaterThanOrEqual(0);
      if (row.method === 'source') {
        expect(row.accept_rate).toBeNull();
      } else {
        expect(row.accept_rate).toBeGreaterThanOrEqual(0);
        expect(row.accept_rate).toBeLessThanOrEqual(1);
      }
    }
    const alwaysAccept = results.rows.filter((row: { method: string }) => row.method === 'always_accept');
    expect(alwaysAccept.every((row: { accept_rate: number }) => row.accept_rate === 1)).toBe(true);
    const markdown = readFileSync(path.join(folder, 'bench-out', 'results.md'), 'utf8');
    expect(markdown).toContain('| severity 3: error % | source |');
    expect(markdown).toContain('| mean |');
    // The config of this test sets only the model, so the Safe MetaNet column runs the defaults.
    const method = 'Safe MetaNet: adapter lora, proxy infomax, policy threshold+source_anchor, reset on_drift, anchor_min_agreement 0.95';
    expect(result.stdout).toContain(method);
    expect(markdown).toContain(method);
  });

  it('rejects an unwritable out folder before training', () => {
    const blocker = path.join(folder, 'a-file');
    writeFileSync(blocker, 'not a folder');

    const result = cli(['bench', ...SMALL, '--config', config, '--out', path.join(blocker, 'out')]);

    expect(result.status).toBe(2);
    expect(result.stderr).toContain(`Cannot write to --out ${path.join(blocker, 'out')}`);
    expect(existsSync(path.join(blocker, 'out'))).toBe(false);
  });

  it.each([
    { args: ['--severity', '3,0'], fragment: 'Invalid value for --severity: "0"' },
    { args: ['--corruptions', 'gaussian_noise,fog'], fragment: 'Invalid value for --corruptions: "fog"' },
    { args: ['--modes', 'online'], fragment: 'Invalid value for --modes: "online"; allowed: episodic, continual' },
  ])('rejects $args', ({ args, fragment }) => {
    const result = cli(['bench', ...SMALL, '--config', config, ...args]);

    expect(result.status).toBe(2);
    expect(result.stderr).toContain(fragment);
  });
});
