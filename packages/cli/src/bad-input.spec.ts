import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/*
 * Bad input to `safe-metanet run` as a process: each case must exit with status 2, print one error line
 * that names the problem, and leave no output file behind. The data cases use small IDX folders written
 * here. Cases already covered by cli.spec.ts and data-commands.spec.ts are not repeated.
 * `pnpm test` builds the packages first; run `npx turbo run build` before running this file alone.
 */

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.resolve(here, '../dist/bin.js');
const PROCESS_TIMEOUT_MS = 240_000;

const IMAGE_SIDE = 28;
const TRAIN_COUNT = 256;
const TEST_COUNT = 128;
const CLASSES = 10;

interface CliResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

let folder = '';
let validData = '';

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

/** Encodes an unsigned-byte IDX file: magic 00 00 08 <rank>, big-endian uint32 dimensions, then the data. */
function idxBytes(dims: readonly number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt8(0x08, 2);
  header.writeUInt8(dims.length, 3);
  dims.forEach((size, axis) => header.writeUInt32BE(size, 4 + 4 * axis));
  return Buffer.concat([header, Buffer.from(data)]);
}

/** Writes an MNIST-layout folder of seeded noise images whose mean brightness depends on the label. */
function writeIdxFolder(target: string): void {
  mkdirSync(target, { recursive: true });
  let state = 12345;
  const nextByte = (): number => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state % 256;
  };
  const split = (count: number): { images: Uint8Array; labels: Uint8Array } => {
    const labels = Uint8Array.from({ length: count }, (_, index) => index % CLASSES);
    const images = new Uint8Array(count * IMAGE_SIDE * IMAGE_SIDE);
    for (let index = 0; index < images.length; index++) {
      const label = labels[Math.floor(index / (IMAGE_SIDE * IMAGE_SIDE))] as number;
      images[index] = Math.min(255, (nextByte() >> 2) + label * 18);
    }
    return { images, labels };
  };
  const train = split(TRAIN_COUNT);
  const test = split(TEST_COUNT);
  writeFileSync(path.join(target, 'train-images-idx3-ubyte'), idxBytes([TRAIN_COUNT, IMAGE_SIDE, IMAGE_SIDE], train.images));
  writeFileSync(path.join(target, 'train-labels-idx1-ubyte'), idxBytes([TRAIN_COUNT], train.labels));
  writeFileSync(path.join(target, 't10k-images-idx3-ubyte'), idxBytes([TEST_COUNT, IMAGE_SIDE, IMAGE_SIDE], test.images));
  writeFileSync(path.join(target, 't10k-labels-idx1-ubyte'), idxBytes([TEST_COUNT], test.labels));
}

/** Copies the valid folder under `name` and lets `damage` change it. */
function damagedFolder(name: string, damage: (target: string) => void): string {
  const target = path.join(folder, 'data', name);
  cpSync(validData, target, { recursive: true });
  damage(target);
  return target;
}

function writeConfig(name: string, text: string): string {
  const file = path.join(folder, 'configs', name);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
  return file;
}

function errorLines(result: CliResult): string[] {
  return result.stderr.split('\n').filter((line) => line.startsWith('safe-metanet: '));
}

function readRecords(file: string): Record<string, unknown>[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

beforeAll(() => {
  expect(existsSync(BIN), `${BIN} is missing; build the packages with 'npx turbo run build'`).toBe(true);
  folder = mkdtempSync(path.join(os.tmpdir(), 'safe-metanet-bad-input-spec-'));
  validData = path.join(folder, 'data', 'valid');
  writeIdxFolder(validData);
});

afterAll(() => {
  if (folder !== '') {
    rmSync(folder, { recursive: true, force: true });
  }
});

interface BadRunCase {
  readonly name: string;
  /** YAML of the --config file, if any. */
  readonly config?: string;
  /** Changes a copy of the valid IDX folder, which then becomes --dataset. */
  readonly damage?: (target: string) => void;
  /** Further arguments; `{folder}` is replaced by the temporary folder. */
  readonly args?: readonly string[];
  /** Texts the error line must contain; `{data}` is replaced by the damaged folder. */
  readonly expected: readonly string[];
}

const BAD_RUN_CASES: readonly BadRunCase[] = [
  { name: 'config value of wrong type', config: 'hidden_dim: wide\n', expected: [`Invalid value for 'hidden_dim': string "wide"; expected a finite integer of at least 1.`] },
  { name: 'lr 0', config: 'lr: 0\n', expected: ["Invalid value for 'lr': 0; it must be greater than 0."] },
  { name: 'lr -1', config: 'lr: -1\n', expected: ["Invalid value for 'lr': -1; it must be greater than 0."] },
  { name: 'num_layers 1', config: 'num_layers: 1\n', expected: ["Invalid value for 'num_layers': 1; it must be at least 2."] },
  { name: 'empty schedule', config: 'expansion_schedule: []\n', expected: ["Invalid value for 'expansion_schedule': []; list at least one layer."] },
  {
    name: 'duplicate schedule entries',
    config: 'expansion_schedule: [layer_2, layer_2]\n',
    expected: ["Invalid value for 'expansion_schedule': layer 'layer_2' is listed twice; list each layer once."],
  },
  {
    name: 'lora_rank above a cnn layer',
    config: 'backbone: cnn\nhidden_dim: 4\nlora_rank: 12\n',
    expected: ["Invalid value for 'lora_rank': 12 exceeds the maximum rank", 'Set lora_rank to at most'],
  },
  {
    name: 'unknown proxy name',
    config: 'proxy: nope\n',
    expected: ["Unknown proxy 'nope' (config key 'proxy'). Registered proxy names: entropy", 'reconstruction'],
  },
  {
    name: 'policies in one string with a comma',
    config: 'policy: "threshold, source_anchor"\n',
    expected: ["Unknown policy 'threshold, source_anchor'", 'write a YAML list such as [threshold, source_anchor]'],
  },
  {
    name: 'truncated IDX file',
    damage: (target) => {
      const file = path.join(target, 't10k-images-idx3-ubyte');
      writeFileSync(file, readFileSync(file).subarray(0, 5000));
    },
    expected: ['IDX file {data}/t10k-images-idx3-ubyte is truncated: dimensions 128 × 28 × 28 need 100368 bytes', 'the file has 5000 bytes'],
  },
  {
    name: '.gz that is not gzip',
    damage: (target) => {
      const file = path.join(target, 'train-labels-idx1-ubyte');
      writeFileSync(`${file}.gz`, readFileSync(file));
      rmSync(file);
    },
    expected: ['IDX file {data}/train-labels-idx1-ubyte.gz has the .gz extension but is not gzip-compressed (it starts with 00 00 08 01'],
  },
  {
    name: 'wrong IDX magic number',
    damage: (target) => {
      const file = path.join(target, 'train-images-idx3-ubyte');
      const bytes = readFileSync(file);
      bytes[0] = 0x13;
      bytes[1] = 0x37;
      writeFileSync(file, bytes);
    },
    expected: ['IDX file {data}/train-images-idx3-ubyte has an invalid magic number 13 37 08 03'],
  },
  {
    name: 'IDX length unlike its header',
    damage: (target) => {
      const file = path.join(target, 't10k-labels-idx1-ubyte');
      writeFileSync(file, Buffer.concat([readFileSync(file), Buffer.from([1, 2, 3])]));
    },
    expected: ['IDX file {data}/t10k-labels-idx1-ubyte has trailing bytes: dimensions 128 need 136 bytes', 'the file has 139 bytes'],
  },
  {
    name: 'missing IDX file',
    damage: (target) => rmSync(path.join(target, 't10k-labels-idx1-ubyte')),
    expected: ['IDX folder {data} is missing t10k-labels-idx1-ubyte', 'it must contain train-images-idx3-ubyte[.gz]'],
  },
  {
    name: 'unknown run flag',
    args: ['--checkpoint-evry', '3'],
    expected: ["Invalid arguments for 'run': Unknown option '--checkpoint-evry'.", '--checkpoint-every', '--resume'],
  },
  { name: '--checkpoint-every 0', args: ['--checkpoint-every', '0'], expected: ['Invalid value for --checkpoint-every: "0"; expected an integer of at least 1.'] },
  {
    name: '--checkpoint under a regular file',
    args: ['--checkpoint', '{folder}/blocker/run.checkpoint.json'],
    expected: ['Cannot write the checkpoint {folder}/blocker/run.checkpoint.json: ', 'Pass --checkpoint with a path in a writable folder.'],
  },
  {
    name: '--log-file under a regular file',
    args: ['--log-file', '{folder}/blocker/run.jsonl', '--checkpoint', '{folder}/log-file-case/run.checkpoint.json'],
    expected: ['Cannot write --log-file {folder}/blocker/run.jsonl: ', 'Choose a path in a writable folder.'],
  },
];

describe.concurrent('run with bad input', () => {
  it.each(BAD_RUN_CASES)('$name exits 2', async ({ name, config, damage, args = [], expected }) => {
    const slug = name.replace(/[^a-z0-9]+/gi, '-');
    const data = damage === undefined ? validData : damagedFolder(slug, damage);
    const output = path.join(folder, 'out', slug);
    writeFileSync(path.join(folder, 'blocker'), 'a regular file, not a folder\n');
    const configArgs = config === undefined ? [] : ['--config', writeConfig(`${slug}.yaml`, config)];
    const logArgs = args.includes('--log-file') ? [] : ['--log-file', path.join(output, 'run.jsonl')];

    const result = await runCli([
      'run', '--dataset', data, '--epochs', '1', '--backend', 'cpu', '--batch-size', '16', '--model-dir', path.join(folder, 'models', slug),
      ...configArgs, ...logArgs, ...args.map((arg) => arg.replaceAll('{folder}', folder)),
    ]);

    expect(result.status, result.stderr).toBe(2);
    const lines = errorLines(result);
    expect(lines, result.stderr).toHaveLength(1);
    for (const text of expected) {
      expect(lines[0]).toContain(text.replaceAll('{data}', data).replaceAll('{folder}', folder));
    }
    expect(result.stderr).not.toMatch(/^\s+at /m);
    expect(result.stderr).not.toContain('INFO step');
    // Neither a log file nor its temporary file, nor a checkpoint, nor a trained model.
    const written = existsSync(output) ? readdirSync(output) : [];
    expect(written).toEqual([]);
    // The model folder is created before any work so that an unwritable one fails early, but contains no model.
    const modelDir = path.join(folder, 'models', slug);
    expect(existsSync(modelDir) ? readdirSync(modelDir) : []).toEqual([]);
  });
});

interface BatchOfOneCase {
  readonly backbone: 'mlp' | 'cnn';
  readonly adapter: 'lora' | 'linear_adapter';
  readonly proxy: 'entropy' | 'reconstruction';
  readonly policy: 'threshold' | 'always_accept';
}

// Every backbone, adapter, proxy and policy appears twice, each time beside other values.
const BATCH_OF_ONE_CASES: readonly BatchOfOneCase[] = [
  { backbone: 'mlp', adapter: 'lora', proxy: 'entropy', policy: 'threshold' },
  { backbone: 'mlp', adapter: 'linear_adapter', proxy: 'reconstruction', policy: 'always_accept' },
  { backbone: 'cnn', adapter: 'lora', proxy: 'reconstruction', policy: 'threshold' },
  { backbone: 'cnn', adapter: 'linear_adapter', proxy: 'entropy', policy: 'always_accept' },
];

describe.concurrent('run on a valid IDX folder', () => {
  it('streams every test image', async () => {
    const logFile = path.join(folder, 'valid', 'run.jsonl');

    const result = await runCli([
      'run', '--dataset', validData, '--epochs', '1', '--backend', 'cpu', '--batch-size', '32', '--model-dir', path.join(folder, 'models', 'valid'),
      '--config', writeConfig('valid.yaml', 'hidden_dim: 16\n'), '--log-file', logFile,
    ]);

    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain('Safe MetaNet run: valid, gaussian_noise severity 3');
    expect(result.stdout).toContain(`  images: ${TEST_COUNT}`);
    expect(result.stderr).toContain(`source model: training mlp on ${TRAIN_COUNT} valid images for 1 epochs`);
    const records = readRecords(logFile);
    expect(records).toHaveLength(TEST_COUNT / 32);
    records.forEach((record, step) => {
      expect(record['step']).toBe(step);
      expect(record['batch_size']).toBe(32);
      expect(record['accuracy']).toBeGreaterThanOrEqual(0);
      expect(record['accuracy']).toBeLessThanOrEqual(1);
    });
    expect(readdirSync(path.dirname(logFile))).toEqual(['run.jsonl']);
  });

  it.each(BATCH_OF_ONE_CASES)('batch size 1: $backbone, $adapter, $proxy, $policy', async ({ backbone, adapter, proxy, policy }) => {
    const slug = `one-${backbone}-${adapter}-${proxy}-${policy}`;
    const logFile = path.join(folder, slug, 'run.jsonl');
    const hiddenDim = backbone === 'cnn' ? 4 : 8;
    // The cpu backend's conv2d filter gradient makes CNN training several times slower than on wasm.
    const backend = backbone === 'cnn' ? 'wasm' : 'cpu';
    const config = writeConfig(`${slug}.yaml`, `backbone: ${backbone}\nhidden_dim: ${hiddenDim}\nadapter_type: ${adapter}\nproxy: ${proxy}\npolicy: ${policy}\n`);

    const result = await runCli([
      'run', '--dataset', validData, '--epochs', '1', '--backend', backend, '--batch-size', '1', '--max-samples', '4',
      '--model-dir', path.join(folder, 'models', slug), '--config', config, '--log-file', logFile,
    ]);

    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain(`plugins: backbone=${backbone} adapter=${adapter} proxy=${proxy} policy=${policy}`);
    const records = readRecords(logFile);
    expect(records).toHaveLength(4);
    for (const [step, record] of records.entries()) {
      expect(record['step']).toBe(step);
      expect(record['sample_idx']).toBe(step);
      expect(record['batch_size']).toBe(1);
      expect(typeof record['metric_before'], `metric_before of step ${step}`).toBe('number');
      expect(Number.isFinite(record['metric_before'])).toBe(true);
      expect([0, 1]).toContain(record['accuracy']);
      if (policy === 'always_accept') {
        expect(record['action']).toBe('accept');
      }
    }
  });
});
