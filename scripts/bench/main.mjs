// Benchmarks of the Safe MetaNet step against a PyTorch reference of the same loop.
// Build the packages first (`pnpm install` or `pnpm build`), then run from the repository root.
// The step table and its method are described in docs/benchmarks.md.
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { loadPackages, percentile, ROOT } from './load.mjs';
import { inferenceRows, stepRows } from './rows.mjs';

const PYTHON = '/usr/bin/python3';
const TORCH_SCRIPT = path.join(ROOT, 'scripts/bench/torch_step.py');

const USAGE = `Usage:
  pnpm bench step [--quick] [--filter TEXT] [--backends wasm,cpu,tensorflow] [--steps N] [--warmup N]
                  [--row-seconds S] [--no-torch] [--soak] [--soak-steps N] [--json FILE]
  pnpm bench soak [--soak-steps N]

  step            time one Safe MetaNet step per row, and the PyTorch reference when it is installed
  soak            run 10,000 steps of mlp-b64-lora-last and report tensors and memory
  --quick         batch-64 rows only, 50 steps after 5 warm-up steps
  --filter TEXT   only the rows whose name contains TEXT
  --backends LIST comma-separated backends (default wasm,cpu,tensorflow)
  --steps N       timed steps per row (default 200)
  --warmup N      warm-up steps per row, 0 or more (default 20)
  --row-seconds S stop a row once its timed steps pass S seconds, 0 for no limit (default 25)
  --no-torch      skip the PyTorch reference
  --soak          run the soak after the step table
  --soak-steps N  steps of the soak (default 10000)
  --json FILE     write every number of the run to FILE
  --help          show this help`;

/** Prints one usage error and exits with status 2. */
function usageError(message) {
  console.error(`${message} Run with --help for the usage.`);
  process.exit(2);
}

const OPTIONS = {
  quick: { type: 'boolean', default: false },
  filter: { type: 'string' },
  backends: { type: 'string', default: 'wasm,cpu,tensorflow' },
  steps: { type: 'string' },
  warmup: { type: 'string' },
  'no-torch': { type: 'boolean', default: false },
  soak: { type: 'boolean', default: false },
  'soak-steps': { type: 'string', default: '10000' },
  json: { type: 'string' },
  'row-seconds': { type: 'string', default: '25' },
  help: { type: 'boolean', default: false },
};

// parseArgs reads a value that starts with a dash, such as -1, as a flag, so `--warmup -1` is joined into
// `--warmup=-1` first and reaches the range checks below.
const args = [];
for (let index = 2; index < process.argv.length; index++) {
  const arg = process.argv[index];
  const next = process.argv[index + 1];
  const name = arg.startsWith('--') ? arg.slice(2) : undefined;
  if (name !== undefined && OPTIONS[name]?.type === 'string' && next !== undefined && /^-\d|^-\.\d/.test(next)) {
    args.push(`${arg}=${next}`);
    index++;
  } else {
    args.push(arg);
  }
}

let parsed;
try {
  parsed = parseArgs({ args, allowPositionals: true, options: OPTIONS });
} catch (error) {
  if (error?.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const option = /'([^']+)'/.exec(error.message)?.[1] ?? 'option';
    usageError(`Invalid option '${option}'; the options are ${Object.keys(OPTIONS).map((name) => `--${name}`).join(', ')}.`);
  }
  const message = (error instanceof Error ? error.message : String(error)).replace(/\s*\n\s*/g, ' ').trim();
  usageError(`Invalid arguments: ${message}${message.endsWith('.') ? '' : '.'}`);
}
const { values: options, positionals } = parsed;
if (options.help) {
  console.log(USAGE);
  process.exit(0);
}

const command = positionals[0] ?? 'step';
if (command !== 'step' && command !== 'soak') {
  usageError(`Invalid command '${command}'; use 'step' or 'soak'.`);
}
if (positionals.length > 1) {
  usageError(`Unexpected argument '${positionals[1]}'; give one command, step or soak, then flags.`);
}
const BACKENDS = ['wasm', 'cpu', 'tensorflow'];
const backends = options.backends.split(',').map((name) => name.trim());
for (const backend of backends) {
  if (!BACKENDS.includes(backend)) {
    usageError(`Invalid --backends entry '${backend}'; use a comma-separated list of ${BACKENDS.join(', ')}.`);
  }
}

/** Returns the integer value of a flag, or exits with a usage error that quotes what was typed. */
function integerOption(name, fallback, minimum) {
  const typed = options[name];
  const value = typed === undefined ? fallback : Number(typed);
  if (typed === '' || !Number.isInteger(value) || value < minimum) {
    usageError(`Invalid --${name}: '${typed}'; expected an integer of at least ${minimum}.`);
  }
  return value;
}

const steps = integerOption('steps', options.quick ? 50 : 200, 1);
const warmup = integerOption('warmup', options.quick ? 5 : 20, 0);
const soakSteps = integerOption('soak-steps', 10000, 1);
// A row stops early once its timed steps pass this many seconds; the table prints how many steps ran.
const rowSeconds = Number(options['row-seconds']);
if (options['row-seconds'] === '' || !Number.isFinite(rowSeconds) || rowSeconds < 0) {
  usageError(`Invalid --row-seconds: '${options['row-seconds']}'; expected a number of seconds, or 0 for no limit.`);
}

const { tf, core, packages } = await loadPackages();
tf.env().set('PROD', true);

/** Builds a runner for a row and returns it with its backbone. */
function buildRunner(row) {
  const config = core.resolveConfig(row.settings);
  const backbone = packages.backbones.createBackbone(config);
  const runner = core.buildSafeMetaNet({
    config,
    modules: [packages.adapters.adaptersModule, packages.proxies.proxiesModule, packages.policies.policiesModule],
    backbone,
  });
  return { runner, backbone };
}

/** Returns seeded random batches for a row; the step cycles through them. */
function randomBatches(backbone, batchSize, count) {
  return Array.from({ length: count }, (_, index) =>
    tf.randomNormal([batchSize, ...backbone.inputShape], 0, 1, 'float32', 1000 + index),
  );
}

/** Times `warmup + steps` runner steps and returns the step statistics in ms. */
function timeStepRow(row) {
  const { runner, backbone } = buildRunner(row);
  const batches = randomBatches(backbone, row.batch, 8);
  const times = [];
  let attempts = 0;
  let accepted = 0;
  let timedMs = 0;
  let warmupMs = 0;
  let warmupSteps = warmup;
  try {
    for (let index = 0; index < warmupSteps + steps; index++) {
      const batch = batches[index % batches.length];
      const started = performance.now();
      const record = runner.step(batch);
      const elapsed = performance.now() - started;
      if (index < warmupSteps) {
        warmupMs += elapsed;
        // The warm-up ends early on slow rows, after at least 3 steps or a quarter of the time budget.
        if (rowSeconds > 0 && index >= 2 && warmupMs > rowSeconds * 250) {
          warmupSteps = index + 1;
        }
      } else {
        times.push(elapsed);
        attempts += record.attempts;
        accepted += record.action === 'accept' ? 1 : 0;
        timedMs += elapsed;
        if (rowSeconds > 0 && timedMs > rowSeconds * 1000) {
          break;
        }
      }
    }
  } finally {
    tf.dispose(batches);
    runner.dispose();
    backbone.dispose();
  }
  return {
    median_ms: percentile(times, 0.5),
    p90_ms: percentile(times, 0.9),
    steps: times.length,
    attempts_per_step: attempts / times.length,
    accept_rate: accepted / times.length,
  };
}

/** Times the frozen forward pass (logits read back with dataSync) and returns images per second. */
function timeInference(row, repeats) {
  const config = core.resolveConfig(row.settings);
  const backbone = packages.backbones.createBackbone(config);
  const [batch] = randomBatches(backbone, row.batch, 1);
  const noAdapters = new Map();
  const run = () => tf.tidy(() => backbone.forward(batch, noAdapters).logits.dataSync());
  for (let index = 0; index < 5; index++) {
    run();
  }
  const started = performance.now();
  for (let index = 0; index < repeats; index++) {
    run();
  }
  const seconds = (performance.now() - started) / 1000;
  batch.dispose();
  backbone.dispose();
  return { images_per_second: (row.batch * repeats) / seconds };
}

async function activate(backend) {
  try {
    await core.selectBackend(backend, core.silentLogger);
    return true;
  } catch (error) {
    console.log(`Backend ${backend} did not load, so it is skipped: ${error instanceof Error ? error.message : String(error)}`);
    return false;
  }
}

/** Runs the PyTorch reference and returns its parsed JSON, or undefined without PyTorch. */
function runTorch(rows, inference) {
  if (options['no-torch']) {
    return undefined;
  }
  const probe = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    console.log(`PyTorch is not available (${PYTHON} -c "import torch" failed), so the table shows our timings alone.`);
    return undefined;
  }
  const request = {
    rows: rows.map((row) => ({ name: row.name, ...row.torch })),
    inference: inference.map((row) => ({ name: row.name, ...row.torch })),
    steps,
    warmup,
    threads: 2,
    max_seconds: rowSeconds,
    inference_repeats: options.quick ? 50 : 200,
  };
  const result = spawnSync(PYTHON, [TORCH_SCRIPT], {
    input: JSON.stringify(request),
    encoding: 'utf8',
    maxBuffer: 1 << 24,
    stdio: ['pipe', 'pipe', 'inherit'],
    // Passive OpenMP threads sleep instead of spinning while they wait. On a loaded 2-core machine spinning
    // threads slowed the batch-1 CNN forward pass of torch 1.13 from about 8 ms to about 54 ms.
    env: { OMP_WAIT_POLICY: 'PASSIVE', ...process.env },
  });
  if (result.status !== 0) {
    console.log(`The PyTorch reference failed (exit ${result.status}), so the table shows our timings alone.`);
    return undefined;
  }
  return JSON.parse(result.stdout);
}

function formatMs(value) {
  return value === undefined ? '-' : value.toFixed(2);
}

function printStepTable(results, torch) {
  const header = ['row', 'backend', 'steps', 'attempts', 'accept', 'median ms', 'p90 ms'];
  if (torch !== undefined) {
    // The two sides start from different random weights, so the share of accepted steps can differ.
    header.push('torch accept', 'torch median', 'torch p90', 'ours / torch');
  }
  const lines = [header];
  for (const result of results) {
    const line = [
      result.row,
      result.backend,
      String(result.steps),
      result.attempts_per_step.toFixed(2),
      `${Math.round(result.accept_rate * 100)}%`,
      formatMs(result.median_ms),
      formatMs(result.p90_ms),
    ];
    if (torch !== undefined) {
      const reference = torch.rows[result.row];
      line.push(reference === undefined ? '-' : `${Math.round(reference.accept_rate * 100)}%`);
      line.push(formatMs(reference?.median_ms), formatMs(reference?.p90_ms));
      line.push(reference === undefined ? '-' : `${(result.median_ms / reference.median_ms).toFixed(2)}x`);
    }
    lines.push(line);
  }
  printMarkdown(lines);
}

function printInferenceTable(results, torch) {
  const header = ['row', 'backend', 'images/s'];
  if (torch !== undefined) {
    header.push('torch images/s', 'ours / torch time');
  }
  const lines = [header];
  for (const result of results) {
    const line = [result.row, result.backend, result.images_per_second.toFixed(0)];
    if (torch !== undefined) {
      const reference = torch.inference[result.row];
      line.push(reference === undefined ? '-' : reference.images_per_second.toFixed(0));
      line.push(reference === undefined ? '-' : `${(reference.images_per_second / result.images_per_second).toFixed(2)}x`);
    }
    lines.push(line);
  }
  printMarkdown(lines);
}

function printMarkdown(lines) {
  const widths = lines[0].map((_, column) => Math.max(...lines.map((line) => line[column].length)));
  const format = (line) => `| ${line.map((cell, column) => cell.padEnd(widths[column])).join(' | ')} |`;
  console.log(format(lines[0]));
  console.log(`|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`);
  for (const line of lines.slice(1)) {
    console.log(format(line));
  }
}

/** Returns the resident set, the live JS heap and the wasm backend's linear memory, in bytes. */
function memorySample() {
  const { rss, heapUsed } = process.memoryUsage();
  return { rss, heapUsed, wasm: tf.backend().wasm.HEAPU8.length };
}

/** Runs the MLP batch-64 LoRA last-layer row for soakSteps steps and prints tensor and memory growth. */
async function soak() {
  if (!(await activate('wasm'))) {
    return;
  }
  const row = stepRows({ quick: true }).find((candidate) => candidate.name === 'mlp-b64-lora-last');
  const { runner, backbone } = buildRunner(row);
  const batches = randomBatches(backbone, row.batch, 8);
  for (let index = 0; index < warmup; index++) {
    runner.step(batches[index % batches.length]);
  }

  globalThis.gc?.();
  const tensorsAtStart = tf.memory().numTensors;
  const memoryAtStart = memorySample();
  const started = performance.now();
  // RSS after every tenth of the run, without a forced collection: a plateau is the JS heap's high-water
  // mark between garbage collections, while steady growth would be a leak.
  const rssSamples = [];
  for (let index = 0; index < soakSteps; index++) {
    runner.step(batches[index % batches.length]);
    if ((index + 1) % Math.max(1, Math.floor(soakSteps / 10)) === 0) {
      rssSamples.push(process.memoryUsage().rss);
    }
  }
  const seconds = (performance.now() - started) / 1000;

  globalThis.gc?.();
  const tensorsAtEnd = tf.memory().numTensors;
  const memoryAtEnd = memorySample();
  const growth = (start, end) => `${(((end - start) / start) * 100).toFixed(1)}%`;
  const mib = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

  console.log(`\nSoak: ${soakSteps} steps of ${row.name} on wasm after ${warmup} warm-up steps, ${seconds.toFixed(1)} s`);
  printMarkdown([
    ['measure', 'start', 'end', 'growth'],
    ['tf.memory().numTensors', String(tensorsAtStart), String(tensorsAtEnd), growth(tensorsAtStart, tensorsAtEnd)],
    // The memory target is on rss. heapUsed counts live JS objects such as the records, and wasm the backend's linear memory.
    ...Object.keys(memoryAtStart).map((field) => [
      field === 'wasm' ? 'wasm memory' : `process.memoryUsage().${field}`,
      mib(memoryAtStart[field]),
      mib(memoryAtEnd[field]),
      growth(memoryAtStart[field], memoryAtEnd[field]),
    ]),
  ]);
  console.log(`RSS after each tenth of the steps: ${rssSamples.map((bytes) => mib(bytes)).join(', ')}.`);
  console.log(`The runner keeps one record per step (${runner.records.length} at the end), which accounts for part of the heapUsed growth.`);

  tf.dispose(batches);
  runner.dispose();
  backbone.dispose();
}

async function step() {
  const rows = stepRows({ quick: options.quick, filter: options.filter });
  const inference = inferenceRows({ filter: options.filter });
  if (rows.length === 0 && inference.length === 0) {
    usageError(`No row matches --filter '${options.filter}'.`);
  }
  const cpus = os.cpus();
  console.log(`Machine: ${cpus[0]?.model ?? 'unknown CPU'}, ${cpus.length} logical CPUs; Node ${process.version}; tfjs ${tf.version.tfjs}`);
  console.log(`Steps per row: ${steps} timed after ${warmup} warm-up steps, ${rowSeconds > 0 ? `at most ${rowSeconds} s per row` : 'no time limit per row'}.`);
  // The PyTorch line after the rows gives the reference's thread count.
  console.log('Threads: ours run on one thread on wasm and cpu.');
  console.log(`Load average at the start: ${os.loadavg().map((load) => load.toFixed(2)).join(', ')}\n`);

  const stepResults = [];
  const inferenceResults = [];
  for (const backend of backends) {
    if (!(await activate(backend))) {
      continue;
    }
    for (const row of rows) {
      const started = performance.now();
      const result = { row: row.name, backend, ...timeStepRow(row) };
      stepResults.push(result);
      console.error(`${backend} ${row.name}: median ${result.median_ms.toFixed(2)} ms (${((performance.now() - started) / 1000).toFixed(0)} s)`);
    }
    for (const row of inference) {
      inferenceResults.push({ row: row.name, backend, ...timeInference(row, options.quick ? 50 : 200) });
    }
  }

  const torch = runTorch(rows, inference);
  if (torch !== undefined) {
    console.log(`PyTorch ${torch.torch_version}, ${torch.threads} threads\n`);
  }
  console.log(`Load average at the end: ${os.loadavg().map((load) => load.toFixed(2)).join(', ')}\n`);
  console.log('One Safe MetaNet step (ms):\n');
  printStepTable(stepResults, torch);
  if (inferenceResults.length > 0) {
    console.log('\nFrozen inference, batch 64:\n');
    printInferenceTable(inferenceResults, torch);
  }
  if (options.json !== undefined) {
    const fs = await import('node:fs');
    fs.writeFileSync(options.json, JSON.stringify({ steps, warmup, ours: stepResults, inference: inferenceResults, torch }, null, 2));
  }
  if (options.soak) {
    await soak();
  }
}

if (command === 'soak') {
  await soak();
} else {
  await step();
}
