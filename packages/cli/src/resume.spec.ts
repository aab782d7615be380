import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/*
 * Checkpoints of `safe-metanet run` as processes: an interrupted and resumed run must write the same
 * records as an uninterrupted one, and two runs with the same settings must agree exactly.
 * `pnpm test` builds the packages first; run `npx turbo run build` before running this file alone.
 */

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.resolve(here, '../dist/bin.js');
const PROCESS_TIMEOUT_MS = 240_000;

// 1024 images in batches of 16 give 64 batches of about 50 ms each on the cpu backend, so a signal sent
// at batch 10 arrives well before the end. The threshold gives accepts, rejects and two expansions.
const CONFIG = 'hidden_dim: 16\nseed: 1\nnum_layers: 4\nrollback_threshold: 0.0032\n';
const BATCHES = 64;
const RUN = ['run', '--dataset', 'mnist', '--epochs', '1', '--backend', 'cpu', '--config', 'small.yaml', '--model-dir', 'models'];
const STREAM = ['--max-samples', '1024', '--batch-size', '16'];

interface CliResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

type JsonRecord = Record<string, unknown>;

let folder = '';
let reference: JsonRecord[] = [];

function runCli(args: readonly string[]): Promise<CliResult> {
  const env = { PATH: process.env['PATH'] ?? '', HOME: folder, LANG: 'C.UTF-8' };
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, ...args], { cwd: folder, env, encoding: 'utf8', timeout: PROCESS_TIMEOUT_MS }, (error, stdout, stderr) => {
      if (error === null) {
        resolve({ status: 0, stdout, stderr });
      } else if (typeof error.code === 'number') {
        resolve({ status: error.code, stdout, stderr });
      } else {
        reject(new Error(`safe-metanet ${args.join(' ')} failed to finish: ${error.message}\n${stderr}`));
      }
    });
  });
}

/** Starts the CLI, sends `signal` once standard error shows `waitFor`, and returns its result. */
function runAndInterrupt(args: readonly string[], signal: NodeJS.Signals, waitFor: string): Promise<CliResult & { readonly signalled: boolean }> {
  const env = { PATH: process.env['PATH'] ?? '', HOME: folder, LANG: 'C.UTF-8' };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: folder, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let signalled = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), PROCESS_TIMEOUT_MS);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      if (!signalled && stderr.includes(waitFor)) {
        signalled = true;
        child.kill(signal);
      }
    });
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr, signalled });
    });
  });
}

function readRecords(file: string): JsonRecord[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as JsonRecord);
}

/** Removes the wall-clock field, the only one that may differ between equal runs. */
function withoutDuration(records: readonly JsonRecord[]): JsonRecord[] {
  return records.map(({ duration_ms: _duration, ...rest }) => rest);
}

function readJson(file: string): JsonRecord {
  return JSON.parse(readFileSync(path.join(folder, file), 'utf8')) as JsonRecord;
}

beforeAll(async () => {
  expect(existsSync(BIN), `${BIN} is missing; build the packages with 'npx turbo run build'`).toBe(true);
  folder = mkdtempSync(path.join(os.tmpdir(), 'safe-metanet-resume-spec-'));
  writeFileSync(path.join(folder, 'small.yaml'), CONFIG);

  // The source model is trained once here, so that the interrupted runs reach the stream within seconds.
  const train = await runCli(['train', ...RUN.slice(1)]);
  expect(train.status, train.stderr).toBe(0);

  const result = await runCli([...RUN, ...STREAM, '--log-file', 'reference.jsonl', '--checkpoint', 'reference.checkpoint.json']);
  expect(result.status, result.stderr).toBe(0);
  reference = readRecords(path.join(folder, 'reference.jsonl'));
});

afterAll(() => {
  if (folder !== '') {
    rmSync(folder, { recursive: true, force: true });
  }
});

describe('reference run', () => {
  it('mixes accepts, rejects and expansions', () => {
    expect(reference).toHaveLength(BATCHES);
    expect(reference.filter((record) => record['action'] === 'accept').length).toBeGreaterThan(0);
    expect(reference.filter((record) => record['action'] === 'reject').length).toBeGreaterThan(0);
    expect(reference.filter((record) => record['scope_expanded'] === true).length).toBeGreaterThan(0);
  });

  it('writes a final checkpoint at the end', () => {
    const checkpoint = readJson('reference.checkpoint.json');

    expect(checkpoint['format_version']).toBe(1);
    expect(checkpoint['next_batch']).toBe(BATCHES);
    const state = checkpoint['state'] as JsonRecord;
    expect(withoutDuration(state['records'] as JsonRecord[])).toEqual(withoutDuration(reference));
    const identity = checkpoint['identity'] as JsonRecord;
    expect(identity['dataset']).toBe('mnist');
    expect(identity['corruption']).toBe('gaussian_noise');
    expect(identity['severity']).toBe(3);
    expect(identity['batch_size']).toBe(16);
    expect(identity['max_samples']).toBe(1024);
    expect((identity['config'] as JsonRecord)['rollback_threshold']).toBe(0.0032);
  });
});

describe.concurrent('run checkpoints', () => {
  it('same settings give identical runs', async () => {
    const result = await runCli([...RUN, ...STREAM, '--log-file', 'again.jsonl', '--checkpoint', 'again.checkpoint.json']);

    expect(result.status, result.stderr).toBe(0);
    expect(withoutDuration(readRecords(path.join(folder, 'again.jsonl')))).toEqual(withoutDuration(reference));
    // The adapter weights of both runs, bit for bit: float32 values survive JSON unchanged.
    const first = (readJson('reference.checkpoint.json')['state'] as JsonRecord)['adapters'];
    const second = (readJson('again.checkpoint.json')['state'] as JsonRecord)['adapters'];
    expect(Object.keys(second as JsonRecord)).toEqual(['layer_3', 'layer_2', 'layer_1', 'layer_0']);
    expect(second).toEqual(first);
  });

  it.each([
    { signal: 'SIGTERM' as const, name: 'sigterm', extra: [] as string[], checkpoint: 'sigterm.jsonl.checkpoint.json' },
    { signal: 'SIGINT' as const, name: 'sigint', extra: ['--checkpoint', 'saved/sigint.json'], checkpoint: 'saved/sigint.json' },
  ])('$signal then --resume equals one run', async ({ signal, name, extra, checkpoint }) => {
    const logFile = `${name}.jsonl`;
    const args = [...RUN, ...STREAM, '--log-file', logFile, ...extra];

    const stopped = await runAndInterrupt(args, signal, 'INFO step 10 ');

    expect(stopped.signalled, stopped.stderr).toBe(true);
    expect(stopped.status, stopped.stderr).toBe(130);
    const lines = stopped.stderr.trim().split('\n');
    const last = lines.at(-1) ?? '';
    const match = new RegExp(`^safe-metanet: interrupted by ${signal} after batch (\\d+) of ${BATCHES}; checkpoint written to (\\S+)\\. Resume with: safe-metanet (.+)$`).exec(last);
    expect(match, last).not.toBeNull();
    const nextBatch = Number(match?.[1]);
    expect(nextBatch).toBeGreaterThanOrEqual(11);
    expect(nextBatch).toBeLessThan(BATCHES);
    expect(match?.[2]).toBe(checkpoint);
    expect(stopped.stdout).toContain(`Records: ${logFile}`);

    // The log file is complete up to the checkpoint, and no temporary file is left beside it.
    const partial = readRecords(path.join(folder, logFile));
    expect(partial).toHaveLength(nextBatch);
    expect(withoutDuration(partial)).toEqual(withoutDuration(reference.slice(0, nextBatch)));
    expect(readdirSync(folder).filter((file) => file.startsWith(`.${name}`))).toEqual([]);
    const saved = readJson(checkpoint);
    expect(saved['next_batch']).toBe(nextBatch);
    expect((saved['state'] as JsonRecord)['samplesSeen']).toBe(nextBatch * 16);

    // The printed command resumes the run.
    const resumeArgs = (match?.[3] ?? '').split(' ');
    expect(resumeArgs.slice(-2)).toEqual(['--resume', checkpoint]);
    const resumed = await runCli(resumeArgs);

    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain(`resumed_from: ${checkpoint} at batch ${nextBatch}`);
    const stepLines = resumed.stderr.split('\n').filter((line) => line.startsWith('INFO step '));
    expect(stepLines).toHaveLength(BATCHES - nextBatch);
    expect(stepLines[0]).toMatch(new RegExp(`^INFO step ${nextBatch} \\|`));
    const whole = readRecords(path.join(folder, logFile));
    expect(whole).toHaveLength(BATCHES);
    expect(withoutDuration(whole)).toEqual(withoutDuration(reference));
  });

  it('missing checkpoint exits 2', async () => {
    const result = await runCli([...RUN, ...STREAM, '--resume', 'absent.checkpoint.json']);

    expect(result.status).toBe(2);
    expect(result.stderr.trim()).toBe(
      "safe-metanet: Checkpoint file absent.checkpoint.json not found; pass the file that an interrupted 'safe-metanet run' wrote.",
    );
  });

  it('corrupt checkpoint exits 2', async () => {
    const text = readFileSync(path.join(folder, 'reference.checkpoint.json'), 'utf8');
    writeFileSync(path.join(folder, 'cut.checkpoint.json'), text.slice(0, text.length / 2));
    writeFileSync(path.join(folder, 'version.checkpoint.json'), JSON.stringify({ ...JSON.parse(text), format_version: 7 }));
    const parsed = JSON.parse(text) as JsonRecord;
    const badMemory = { ...parsed, state: { ...(parsed['state'] as JsonRecord), memory: { shape: [1, 784], values: [], labels: ['7'], arrivals: [0] } } };
    writeFileSync(path.join(folder, 'memory.checkpoint.json'), JSON.stringify(badMemory));
    const state = parsed['state'] as JsonRecord;
    const memoryState = state['memory'] as JsonRecord;
    const labels = (memoryState['labels'] as number[]).map(() => 99);
    const badLabels = { ...parsed, state: { ...state, memory: { ...memoryState, labels } } };
    writeFileSync(path.join(folder, 'labels.checkpoint.json'), JSON.stringify(badLabels));

    const cut = await runCli([...RUN, ...STREAM, '--resume', 'cut.checkpoint.json']);
    const version = await runCli([...RUN, ...STREAM, '--resume', 'version.checkpoint.json']);

    expect(cut.status).toBe(2);
    expect(cut.stderr).toMatch(/^safe-metanet: Checkpoint file cut\.checkpoint\.json is not valid JSON \(/);
    expect(cut.stderr).not.toMatch(/^\s+at /m);
    expect(version.status).toBe(2);
    expect(version.stderr).toContain('Checkpoint file version.checkpoint.json is invalid: format_version is 7, expected 1');
    const memory = await runCli([...RUN, ...STREAM, '--resume', 'memory.checkpoint.json']);
    expect(memory.status).toBe(2);
    expect(memory.stderr).toContain('Checkpoint file memory.checkpoint.json is invalid: state.memory is not {shape, values, labels, arrivals} with numeric values');
    const labelled = await runCli([...RUN, ...STREAM, '--resume', 'labels.checkpoint.json']);
    expect(labelled.status).toBe(2);
    expect(labelled.stderr).toContain(
      'Checkpoint file labels.checkpoint.json: Invalid checkpoint: its sample memory has label 99 at index 0, expected a class index from 0 to 9.',
    );
    // The header with its resumed_from line is printed only after the checkpoint is read.
    expect(labelled.stdout).not.toContain('resumed_from');
  });

  it.each([
    { args: ['--severity', '4'], message: 'its severity is 3, but this run has 4' },
    { args: ['--max-samples', '512'], message: 'its max_samples is 1024, but this run has 512' },
    { args: ['--seed', '2'], message: 'its config.seed is 1, but this run has 2' },
    { args: ['--corruption', 'contrast'], message: 'its corruption is "gaussian_noise", but this run has "contrast"' },
  ])('resume with $args exits 2', async ({ args, message }) => {
    const withoutStream = [...RUN, '--batch-size', '16', '--max-samples', '1024'];
    const result = await runCli([...withoutStream, ...args, '--resume', 'reference.checkpoint.json']);

    expect(result.status).toBe(2);
    expect(result.stderr).toContain(`safe-metanet: Checkpoint file reference.checkpoint.json belongs to another run: ${message}`);
    // Settings are compared before any training, and no step runs.
    expect(result.stderr).not.toContain('source model: training');
    expect(result.stderr).not.toContain('INFO step');
  });
});
