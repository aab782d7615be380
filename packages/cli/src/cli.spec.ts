import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { CONFIG_KEYS } from '@safe-metanet/core';

/*
 * The built CLI as a separate process: exit status, standard output, standard error and the JSON
 * Lines file. `pnpm test` builds the packages first. Run `npx turbo run build` before running
 * this file alone.
 */

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.resolve(here, '../dist/bin.js');
const PROTOTYPE_CONFIG = path.resolve(here, '../../core/src/test-support/prototype-default.yaml');

// A demo process trains a source model for a few seconds first, and the machine may be busy. A hung
// process is killed before the package's test timeout (vitest.config.ts), so its output is reported.
const PROCESS_TIMEOUT_MS = 240_000;

// Small runs on the cpu backend keep each process at a few seconds.
const QUICK = ['--steps', '2', '--batch-size', '4', '--backend', 'cpu'];

const RECORD_FIELDS = [
  'step',
  'sample_idx',
  'action',
  'metric_before',
  'metric_after',
  'scope',
  'scope_expanded',
  'attempts',
  'gradient_steps',
  'reject_reason',
  'duration_ms',
  'prediction',
  'attempt_metrics',
  'batch_size',
  'accuracy',
  'source_accuracy',
  'reset',
];

interface CliResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

type JsonRecord = Record<string, unknown>;

let folder = '';

beforeAll(() => {
  expect(existsSync(BIN), `${BIN} is missing; build the packages with 'npx turbo run build'`).toBe(true);
  folder = mkdtempSync(path.join(os.tmpdir(), 'safe-metanet-cli-spec-'));
});

afterAll(() => {
  if (folder !== '') {
    rmSync(folder, { recursive: true, force: true });
  }
});

/** Runs the built CLI in the temporary folder with pipes for its streams, so that it runs without a terminal. */
function runCli(args: readonly string[]): Promise<CliResult> {
  // Only what Node needs, so that color or Node options of the test runner do not reach the CLI.
  const env = { PATH: process.env['PATH'] ?? '', HOME: folder, LANG: 'C.UTF-8' };
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: folder, env, encoding: 'utf8', timeout: PROCESS_TIMEOUT_MS },
      (error, stdout, stderr) => {
        if (error === null) {
          resolve({ status: 0, stdout, stderr });
        } else if (typeof error.code === 'number') {
          resolve({ status: error.code, stdout, stderr });
        } else {
          // Killed by the timeout or not started at all.
          reject(new Error(`safe-metanet ${args.join(' ')} failed to finish: ${error.message}\n${stderr}`));
        }
      },
    );
  });
}

/** Writes a file in the temporary folder and returns its path. */
function writeTemp(name: string, text: string): string {
  const file = path.join(folder, name);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
  return file;
}

function linesOf(text: string): string[] {
  return text.split('\n').filter((line) => line.length > 0);
}

function readRecords(file: string): JsonRecord[] {
  return linesOf(readFileSync(file, 'utf8')).map((line) => JSON.parse(line) as JsonRecord);
}

/** Returns the value of a `  key: value` header line of standard output. */
function headerValue(stdout: string, key: string): string | undefined {
  const line = stdout.split('\n').find((candidate) => candidate.startsWith(`  ${key}: `));
  return line?.slice(`  ${key}: `.length);
}

function isLayerName(value: unknown): boolean {
  return typeof value === 'string' && /^layer_\d+$/.test(value);
}

function expectNumberIn(record: JsonRecord, key: string, minimum: number, maximum: number): void {
  const value = record[key];
  expect(typeof value, `type of ${key}`).toBe('number');
  expect(value as number, key).toBeGreaterThanOrEqual(minimum);
  expect(value as number, key).toBeLessThanOrEqual(maximum);
}

/** Checks every field of a demo record: its type and range. */
function expectValidRecord(record: JsonRecord, step: number, batchSize: number): void {
  expect(Object.keys(record).sort()).toEqual([...RECORD_FIELDS].sort());

  expect(record['step']).toBe(step);
  expect(record['sample_idx']).toBe(step * batchSize);
  expect(record['batch_size']).toBe(batchSize);
  expect(typeof record['reset']).toBe('boolean');
  expect(['accept', 'reject']).toContain(record['action']);
  expect(record['prediction']).toBe('after_update');
  expectNumberIn(record, 'metric_before', 0, Math.log(10));
  expectNumberIn(record, 'metric_after', 0, Math.log(10));
  expectNumberIn(record, 'accuracy', 0, 1);
  expectNumberIn(record, 'source_accuracy', 0, 1);
  expectNumberIn(record, 'duration_ms', 0, PROCESS_TIMEOUT_MS);
  expectNumberIn(record, 'attempts', 1, 3);
  expectNumberIn(record, 'gradient_steps', 1, 3);
  expect(typeof record['scope_expanded']).toBe('boolean');

  const scope = record['scope'] as unknown[];
  expect(Array.isArray(scope)).toBe(true);
  expect(scope.length).toBeGreaterThan(0);
  expect(scope.every(isLayerName)).toBe(true);

  if (record['action'] === 'accept') {
    expect(record['reject_reason']).toBeNull();
  } else {
    expect(['no_improvement', 'non_finite']).toContain(record['reject_reason']);
  }

  const attempts = record['attempt_metrics'] as JsonRecord[];
  expect(Array.isArray(attempts)).toBe(true);
  expect(attempts).toHaveLength(record['attempts'] as number);
  for (const attempt of attempts) {
    expect(Object.keys(attempt).sort()).toEqual(['accepted', 'metric_after', 'metric_before', 'reject_reason', 'scope']);
    expect(typeof attempt['accepted']).toBe('boolean');
    expect((attempt['scope'] as unknown[]).every(isLayerName)).toBe(true);
  }
  expect(attempts.at(-1)?.['accepted']).toBe(record['action'] === 'accept');
}

function expectOneErrorLine(result: CliResult): string {
  const lines = linesOf(result.stderr);
  expect(lines, result.stderr).toHaveLength(1);
  const line = lines[0] ?? '';
  expect(line).toMatch(/^safe-metanet: /);
  expect(result.stderr).not.toMatch(/^\s+at /m);
  return line;
}

describe.concurrent('safe-metanet demo', () => {
  it('demo writes header, step lines and records', async () => {
    const logFile = path.join(folder, 'default', 'run.jsonl');

    const result = await runCli(['demo', '--steps', '5', '--batch-size', '8', '--backend', 'cpu', '--log-file', logFile]);

    expect(result.status, result.stderr).toBe(0);

    // Standard output: the header lists every config key, then the source model line and the summary.
    expect(result.stdout).toMatch(/^Safe MetaNet demo\n/);
    for (const key of CONFIG_KEYS) {
      expect(headerValue(result.stdout, key), `header line for ${key}`).toBeDefined();
    }
    expect(headerValue(result.stdout, 'backend')).toBe('cpu');
    expect(headerValue(result.stdout, 'steps')).toBe('5');
    expect(headerValue(result.stdout, 'batch_size')).toBe('8');
    expect(headerValue(result.stdout, 'active_backend')).toBe('cpu');
    expect(result.stdout).toMatch(/^Source model: \d+\.\d% accuracy on clean data/m);
    expect(result.stdout).toMatch(/^Summary\n {2}steps: 5 \(accepted \d+, rejected \d+,/m);
    expect(result.stdout).toMatch(/^ {2}accuracy: adapted \d+\.\d\d%, frozen source \d+\.\d\d%$/m);
    expect(result.stdout).toContain(`Records: ${logFile}`);

    // Standard error: the backend line, then one INFO line per step in order, and nothing else.
    const errorLines = linesOf(result.stderr);
    expect(errorLines[0]).toBe('INFO backend: cpu (requested)');
    const stepLines = errorLines.slice(1);
    expect(stepLines).toHaveLength(5);
    stepLines.forEach((line, step) => {
      expect(line).toMatch(new RegExp(`^INFO step ${step} \\| (accept|reject)`));
      expect(line).toMatch(/\| accuracy \d+\.\d% \(frozen \d+\.\d%\)$/);
    });

    const records = readRecords(logFile);
    expect(records).toHaveLength(5);
    records.forEach((record, step) => expectValidRecord(record, step, 8));
    expect(readdirSync(path.dirname(logFile))).toEqual(['run.jsonl']);

    // Equal batches, so the summary's accuracies are the means of the records' accuracies.
    const summary = /accuracy: adapted (\d+\.\d\d)%, frozen source (\d+\.\d\d)%/.exec(result.stdout);
    const meanOf = (key: string): string => ((records.reduce((sum, record) => sum + (record[key] as number), 0) / 5) * 100).toFixed(2);
    expect(summary?.[1]).toBe(meanOf('accuracy'));
    expect(summary?.[2]).toBe(meanOf('source_accuracy'));
  });

  it('--disable-rollback accepts every batch', async () => {
    const logFile = path.join(folder, 'no-rollback.jsonl');

    // Threshold 1e6 would reject every update, so only the ablation can make them accepts. Width 16 trains faster.
    const config = writeTemp('no-rollback.yaml', 'rollback_threshold: 1000000\nhidden_dim: 16\n');
    const result = await runCli(['demo', '--config', config, ...QUICK, '--steps', '4', '--disable-rollback', '--log-file', logFile]);

    expect(result.status, result.stderr).toBe(0);
    expect(headerValue(result.stdout, 'disable_rollback')).toBe('true');
    expect(result.stdout).toContain('policy=always_accept');
    const records = readRecords(logFile);
    expect(records).toHaveLength(4);
    for (const [step, record] of records.entries()) {
      expectValidRecord(record, step, 4);
      expect(record['action']).toBe('accept');
      expect(record['attempts']).toBe(1);
      expect(record['scope']).toEqual(['layer_2']);
      expect(record['scope_expanded']).toBe(false);
    }
  });

  it('--disable-scope-expansion rejects in place', async () => {
    const logFile = path.join(folder, 'no-expansion.jsonl');
    const config = writeTemp('no-expansion.yaml', 'rollback_threshold: 1000000\nhidden_dim: 16\n');

    const args = ['--config', config, ...QUICK, '--steps', '4', '--disable-scope-expansion', '--log-file', logFile];
    const result = await runCli(['demo', ...args]);

    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain('expansion=fixed');
    const records = readRecords(logFile);
    expect(records).toHaveLength(4);
    for (const [step, record] of records.entries()) {
      expectValidRecord(record, step, 4);
      expect(record['action']).toBe('reject');
      expect(record['reject_reason']).toBe('no_improvement');
      expect(record['attempts']).toBe(1);
      expect(record['scope']).toEqual(['layer_2']);
      expect(record['scope_expanded']).toBe(false);
    }
  });

  it('cnn with linear_adapter runs', async () => {
    const logFile = path.join(folder, 'cnn.jsonl');
    const config = writeTemp('tiny-cnn.yaml', 'image_size: 8\nhidden_dim: 4\n');

    // The wasm backend, because the cpu backend's conv2d filter gradient made this source training take
    // about 20 s on a 2-core machine, against about 3 s on wasm.
    const args = ['--steps', '2', '--batch-size', '4', '--backend', 'wasm', '--log-file', logFile];
    const result = await runCli(['demo', '--config', config, '--adapter', 'linear_adapter', '--backbone', 'cnn', ...args]);

    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain('plugins: backbone=cnn adapter=linear_adapter');
    expect(headerValue(result.stdout, 'image_size')).toBe('8');
    expect(headerValue(result.stdout, 'hidden_dim')).toBe('4');
    expect(headerValue(result.stdout, 'active_backend')).toBe('wasm');
    const records = readRecords(logFile);
    expect(records).toHaveLength(2);
    records.forEach((record, step) => expectValidRecord(record, step, 4));
  });

  it('prototype config file loads unchanged', async () => {
    const result = await runCli(['demo', '--config', PROTOTYPE_CONFIG, ...QUICK]);

    expect(result.status, result.stderr).toBe(0);
    expect(headerValue(result.stdout, 'hidden_dim')).toBe('64');
    expect(headerValue(result.stdout, 'lora_rank')).toBe('4');
    expect(headerValue(result.stdout, 'expansion_schedule')).toBe('[layer_2, layer_1, layer_0]');
    expect(headerValue(result.stdout, 'log_level')).toBe('INFO');
    expect(result.stdout).toMatch(/^ {2}steps: 2 \(/m);
  });

  it('installed command runs the CLI', async () => {
    // The command that package.json declares, run as a program (shebang and file mode), not through node.
    const manifest = JSON.parse(readFileSync(path.resolve(here, '../package.json'), 'utf8')) as { bin: Record<string, string> };
    const command = path.resolve(here, '..', manifest.bin['safe-metanet'] ?? '');
    const run = (args: readonly string[]): Promise<CliResult> =>
      new Promise((resolve) => {
        execFile(command, [...args], { cwd: folder, encoding: 'utf8', timeout: PROCESS_TIMEOUT_MS }, (error, stdout, stderr) => {
          let status = 0;
          if (error !== null) {
            // A file that cannot be run at all (no execute bit, say) gives a string code such as EACCES.
            status = typeof error.code === 'number' ? error.code : -1;
          }
          resolve({ status, stdout, stderr });
        });
      });

    const help = await run(['--help']);
    const unknown = await run(['frob']);

    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^Usage: safe-metanet <command>/);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain("Unknown command 'frob'");
  });

  it('--help prints the flags', async () => {
    const result = await runCli(['demo', '--help']);

    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^Usage: safe-metanet demo/);
    expect(result.stdout).toContain('--log-file FILE');
    expect(result.stderr).toBe('');

    const top = await runCli(['--help']);
    expect(top.status).toBe(0);
    expect(top.stdout).toMatch(/^Usage: safe-metanet <command>/);
    expect(top.stdout).toContain('demo');
  });
});

interface BadInputCase {
  readonly name: string;
  /** Arguments after the program name; `{folder}` is replaced by the temporary folder. */
  readonly args: readonly string[];
  /** A file to write in the temporary folder first. */
  readonly file?: { readonly name: string; readonly text: string };
  /** Texts the single error line must contain. */
  readonly expected: readonly string[];
}

const BAD_INPUT_CASES: readonly BadInputCase[] = [
  { name: 'unknown command', args: ['nope'], expected: ["Unknown command 'nope'", 'Commands: demo'] },
  {
    name: 'unknown flag',
    args: ['demo', '--bogus'],
    expected: ["'--bogus'", 'Valid flags: --steps, --batch-size, --config', '--log-file'],
  },
  { name: '--steps 0', args: ['demo', '--steps', '0'], expected: ['--steps: "0"', 'at least 1'] },
  { name: '--steps abc', args: ['demo', '--steps', 'abc'], expected: ['--steps: "abc"', 'integer'] },
  { name: '--batch-size -1', args: ['demo', '--batch-size', '-1'], expected: ['--batch-size: "-1"', 'at least 1'] },
  { name: '--backend gpu', args: ['demo', '--backend', 'gpu'], expected: ['--backend: "gpu"', 'auto, tensorflow, wasm, cpu'] },
  {
    name: '--adapter nonsense',
    args: ['demo', '--adapter', 'nonsense', ...QUICK],
    expected: ["'nonsense'", 'Registered adapter names: lora, linear_adapter'],
  },
  {
    name: 'unknown config key',
    args: ['demo', '--config', '{folder}/misspelt.yaml', ...QUICK],
    file: { name: 'misspelt.yaml', text: 'hiden_dim: 4\n' },
    expected: ["'hiden_dim'", "Did you mean 'hidden_dim'?"],
  },
  {
    name: 'malformed YAML',
    args: ['demo', '--config', '{folder}/malformed.yaml', ...QUICK],
    file: { name: 'malformed.yaml', text: 'hidden_dim: 4\n  lr: [1\n' },
    expected: ['malformed.yaml', 'line 2, column'],
  },
  {
    name: 'missing config file',
    args: ['demo', '--config', '{folder}/absent.yaml', ...QUICK],
    expected: ['absent.yaml', 'not found'],
  },
  {
    name: 'schedule with unknown layer',
    args: ['demo', '--config', '{folder}/schedule.yaml', ...QUICK],
    file: { name: 'schedule.yaml', text: 'expansion_schedule: [layer_9]\n' },
    expected: ["'layer_9'", 'Valid layers: layer_0, layer_1, layer_2'],
  },
  {
    name: 'lora_rank above the layer limit',
    args: ['demo', '--config', '{folder}/rank.yaml', ...QUICK],
    file: { name: 'rank.yaml', text: 'lora_rank: 1000\n' },
    expected: ["'lora_rank': 1000", 'maximum rank 10'],
  },
  {
    name: '--log-file under a regular file',
    args: ['demo', ...QUICK, '--log-file', '{folder}/regular-file/run.jsonl'],
    file: { name: 'regular-file', text: 'not a folder\n' },
    expected: ['--log-file', 'regular-file/run.jsonl'],
  },
];

describe.concurrent('safe-metanet bad input', () => {
  it.each(BAD_INPUT_CASES)('$name exits 2 with one line', async ({ args, file, expected }) => {
    if (file !== undefined) {
      writeTemp(file.name, file.text);
    }

    const result = await runCli(args.map((arg) => arg.replace('{folder}', folder)));

    expect(result.status, result.stderr).toBe(2);
    const line = expectOneErrorLine(result);
    for (const text of expected) {
      expect(line).toContain(text);
    }
  });

  it('--verbose adds the stack trace', async () => {
    const config = writeTemp('verbose-schedule.yaml', 'expansion_schedule: [layer_9]\n');

    const result = await runCli(['demo', '--config', config, ...QUICK, '--verbose']);

    expect(result.status).toBe(2);
    const lines = linesOf(result.stderr);
    expect(lines[0]).toMatch(/^safe-metanet: .*'layer_9'/);
    expect(lines[1]).toMatch(/^ConfigError: /);
    expect(result.stderr).toMatch(/^\s+at /m);
  });

  it('invalid config leaves no log file', async () => {
    const config = writeTemp('no-file-schedule.yaml', 'expansion_schedule: [layer_9]\n');
    const logFile = path.join(folder, 'invalid-config', 'run.jsonl');

    const result = await runCli(['demo', '--config', config, ...QUICK, '--log-file', logFile]);

    expect(result.status).toBe(2);
    expect(existsSync(logFile)).toBe(false);
    // Neither the target nor the temporary file it is written under.
    expect(readdirSync(path.dirname(logFile))).toEqual([]);
  });

  it('rank too large for a later layer fails first', async () => {
    // layer_0 joins the scope only after a rejection, but its LoRA rank limit (32 inputs) is checked when the runner is built.
    const config = writeTemp('mid-run.yaml', 'expansion_schedule: [layer_1, layer_0]\nlora_rank: 40\nrollback_threshold: 0.015\n');
    const logFile = path.join(folder, 'mid-run', 'run.jsonl');

    const args = ['--config', config, '--seed', '2', '--steps', '4', '--batch-size', '8', '--backend', 'cpu', '--log-file', logFile];
    const result = await runCli(['demo', ...args]);

    expect(result.status).toBe(2);
    expect(result.stderr).not.toContain('INFO step');
    expect(result.stderr).toContain("Invalid value for 'lora_rank': 40 exceeds the maximum rank 32 of layer 'layer_0'");
    expect(existsSync(logFile)).toBe(false);
    expect(readdirSync(path.dirname(logFile))).toEqual([]);
  });
});
