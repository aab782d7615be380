import {
  buildSafeMetaNet,
  effectivePluginNames,
  overrideConfig,
  selectBackend,
  silentLogger,
  smallMemoryWarning,
  toSnakeCase,
  type RunRecord,
  type SafeMetaNetConfig,
} from '@safe-metanet/core';
import { CORRUPTIONS, corruptImages, MAX_SEVERITY, MIN_SEVERITY, type ImageDataset } from '@safe-metanet/datasets';
import type { FrozenBackbone } from '@safe-metanet/backbones';

import { BENCH_MODES, errorTable, formatMarkdownTable, formatPlainTable, type BenchMethod, type BenchMode, type BenchRow } from '../bench-table.js';
import { DATA_FLAGS, datasetDefaults, datasetFromFlags, modelDirFromFlags, trainingFromFlags } from '../data-options.js';
import { formatFlags, integerFlag, parseFlags, stringFlag, type FlagSpecs, type FlagValues } from '../flags.js';
import { prepareOutputDir, writeFileAtomically } from '../output-files.js';
import { commandModules } from '../plugins.js';
import { ProgressBar } from '../progress.js';
import { renderBenchReport, type BenchResults } from '../report/bench-report.js';
import { commandLogger, configFromFlags, RUNNER_FLAGS } from '../run-options.js';
import { checkRunnerSettings, obtainSourceModel, sliceSplit } from '../source-model.js';
import { adaptStream, batchCount, errorOf, type ImageStream } from '../stream.js';
import { evaluateBackbone } from '../training.js';
import { UsageError } from '../usage-error.js';
import path from 'node:path';

import type { ContainerModule } from 'inversify';

const { 'log-file': _logFile, ...BENCH_RUNNER_FLAGS } = RUNNER_FLAGS;

const BENCH_FLAGS: FlagSpecs = {
  severity: { type: 'string', value: 'LIST', help: `comma-separated severities, ${MIN_SEVERITY} to ${MAX_SEVERITY} (default 3,5)` },
  corruptions: { type: 'string', value: 'LIST', help: 'comma-separated corruptions (default all)' },
  modes: { type: 'string', value: 'LIST', help: 'comma-separated modes: episodic, continual, repeated, label_shift (default episodic,continual)' },
  repeats: { type: 'string', value: 'N', help: 'passes over the continual sequence in repeated mode (default 10)' },
  'batch-size': { type: 'string', value: 'N', help: 'images per batch (default 64)' },
  'max-samples': { type: 'string', value: 'N', help: 'test images streamed per corruption (default 2000)' },
  out: { type: 'string', value: 'DIR', help: 'write results.json, results.md and report.html (charts and tables) to DIR' },
  ...DATA_FLAGS,
  ...BENCH_RUNNER_FLAGS,
};

const DEFAULT_MAX_SAMPLES = 2000;

/** Help text of the bench command. */
export const BENCH_HELP = `Usage: safe-metanet bench [flags]

Runs every chosen corruption at the chosen severities through three methods on identical streams:
the frozen source model, the always-accept baseline (the same adapters with the entropy proxy,
a fixed scope, no gate, no reset and no memory, as in Tent, whatever the config sets), and Safe
MetaNet with the configured proxy, policy, reset and memory. In episodic mode the adapters are
reset between corruptions; in continual mode one runner sees every corruption of a severity in
turn, and only the config's reset mode resets it. Prints the settings of the Safe MetaNet column
and the error table per severity with the mean.

${formatFlags(BENCH_FLAGS)}
`;

function listFlag<T extends string>(values: FlagValues, name: string, allowed: readonly T[], fallback: readonly T[]): T[] {
  const raw = stringFlag(values, name);
  if (raw === undefined) {
    return [...fallback];
  }
  const items = raw.split(',').map((item) => item.trim()).filter((item) => item.length > 0);
  for (const item of items) {
    if (!allowed.includes(item as T)) {
      throw new UsageError(`Invalid value for --${name}: ${JSON.stringify(item)}; allowed: ${allowed.join(', ')}.`);
    }
  }
  if (items.length === 0) {
    throw new UsageError(`Invalid value for --${name}: the list is empty; allowed: ${allowed.join(', ')}.`);
  }
  return [...new Set(items as T[])];
}

function severityList(values: FlagValues): number[] {
  const raw = stringFlag(values, 'severity') ?? '3,5';
  const severities = raw.split(',').map((item) => item.trim());
  return [...new Set(severities.map((item) => {
    const value = Number(item);
    if (item === '' || !Number.isInteger(value) || value < MIN_SEVERITY || value > MAX_SEVERITY) {
      throw new UsageError(`Invalid value for --severity: ${JSON.stringify(item)}; expected integers from ${MIN_SEVERITY} to ${MAX_SEVERITY}, such as 3,5.`);
    }
    return value;
  }))];
}

interface BenchPlan {
  readonly dataset: ImageDataset;
  readonly backbone: FrozenBackbone;
  readonly config: SafeMetaNetConfig;
  readonly severities: readonly number[];
  readonly corruptions: readonly string[];
  readonly modes: readonly BenchMode[];
  readonly batchSize: number;
  readonly count: number;
  /** Plugin modules: the standard ones and those of --plugin. */
  readonly modules: readonly ContainerModule[];
  /** Passes over the continual sequence in repeated mode. */
  readonly repeats: number;
}

/** Returns a copy of a stream with its images sorted by label, keeping the order within a class. */
function sortedByLabel(stream: ImageStream, sampleSize: number): ImageStream {
  const order = Array.from({ length: stream.count }, (_, index) => index).sort(
    (left, right) => (stream.labels[left] as number) - (stream.labels[right] as number) || left - right,
  );
  const images = new Float32Array(stream.images.length);
  const labels = new Uint8Array(stream.count);
  order.forEach((source, target) => {
    images.set(stream.images.subarray(source * sampleSize, (source + 1) * sampleSize), target * sampleSize);
    labels[target] = stream.labels[source] as number;
  });
  return { images, labels, count: stream.count };
}

/** Describes the Safe MetaNet column's settings in one line: adapter, proxy, policy, reset, anchor bounds and memory. */
function methodSettings(config: SafeMetaNetConfig): string {
  const names = effectivePluginNames(config);
  const parts = [`adapter ${names.adapter}`, `proxy ${names.proxy}`, `policy ${names.policy}`, `reset ${config.reset}`];
  if (names.policy.split('+').includes('source_anchor') || config.reset === 'on_drift') {
    parts.push(`anchor_min_agreement ${config.anchorMinAgreement}`, `anchor_max_kl ${config.anchorMaxKl}`);
  }
  parts.push(`memory_size ${config.memorySize}`);
  return parts.join(', ');
}

function methodConfig(config: SafeMetaNetConfig, method: Exclude<BenchMethod, 'source'>): SafeMetaNetConfig {
  if (method === 'always_accept') {
    // Tent: entropy minimisation on the same adapters, every update kept, no scope growth and no reset.
    return overrideConfig(config, {
      policy: 'always_accept',
      expansion: 'fixed',
      proxy: 'entropy',
      reset: 'none',
      holdout_fraction: 0,
      memory_size: 0,
      disable_rollback: false,
      disable_scope_expansion: false,
    });
  }
  return config;
}

function adaptedRow(plan: BenchPlan, base: Omit<BenchRow, 'error' | 'accept_rate' | 'steps' | 'seconds'>, records: readonly RunRecord[], seconds: number): BenchRow {
  const accepted = records.filter((record) => record.action === 'accept').length;
  return { ...base, error: errorOf(records, 'adapted'), accept_rate: records.length === 0 ? null : accepted / records.length, steps: records.length, seconds };
}

/** Runs the bench plan and returns its rows; `tick` is called after every batch. */
function runBench(plan: BenchPlan, tick: () => void): BenchRow[] {
  const rows: BenchRow[] = [];
  const sampleSize = plan.dataset.height * plan.dataset.width * plan.dataset.channels;
  const shape = { count: plan.count, height: plan.dataset.height, width: plan.dataset.width, channels: plan.dataset.channels };
  const clean = plan.dataset.test.images.subarray(0, plan.count * sampleSize);
  const labels = plan.dataset.test.labels.subarray(0, plan.count);
  const common = { dataset: plan.dataset.name, backbone: plan.config.backbone };

  for (const severity of plan.severities) {
    const streams = new Map<string, ImageStream>();
    for (const corruption of plan.corruptions) {
      streams.set(corruption, { images: corruptImages(clean, shape, corruption, severity, plan.config.seed), labels, count: plan.count });
    }

    for (const corruption of plan.corruptions) {
      const stream = streams.get(corruption) as ImageStream;
      const started = performance.now();
      const accuracy = evaluateBackbone(plan.backbone, sliceSplit(stream, 0, plan.count, sampleSize));
      const seconds = (performance.now() - started) / 1000;
      for (const mode of plan.modes) {
        rows.push({ ...common, corruption, severity, method: 'source', mode, error: 1 - accuracy, accept_rate: null, steps: batchCount(plan.count, plan.batchSize), seconds });
      }
    }

    for (const mode of plan.modes) {
      const modeStreams = mode === 'label_shift'
        ? new Map([...streams].map(([corruption, stream]) => [corruption, sortedByLabel(stream, sampleSize)]))
        : streams;
      const passes = mode === 'repeated' ? plan.repeats : 1;

      for (const method of ['always_accept', 'safe_metanet'] as const) {
        const config = methodConfig(plan.config, method);
        const build = () => buildSafeMetaNet({ config, modules: plan.modules, logger: silentLogger, backbone: plan.backbone });
        const records = new Map<string, RunRecord[]>(plan.corruptions.map((corruption) => [corruption, []]));
        const seconds = new Map<string, number>(plan.corruptions.map((corruption) => [corruption, 0]));
        let runner = build();
        for (let pass = 0; pass < passes; pass++) {
          for (const corruption of plan.corruptions) {
            if (mode === 'episodic') {
              runner.dispose();
              runner = build();
            }
            const started = performance.now();
            const streamed = adaptStream(runner, modeStreams.get(corruption) as ImageStream, plan.batchSize, tick);
            seconds.set(corruption, (seconds.get(corruption) ?? 0) + (performance.now() - started) / 1000);
            records.get(corruption)?.push(...streamed);
          }
        }
        runner.dispose();
        for (const corruption of plan.corruptions) {
          const base = { ...common, corruption, severity, method, mode };
          rows.push(adaptedRow(plan, base, records.get(corruption) ?? [], seconds.get(corruption) ?? 0));
        }
      }
    }
  }
  return rows;
}

/** Runs the bench command; returns the exit status. */
export async function benchCommand(args: readonly string[]): Promise<number> {
  const values = parseFlags('bench', args, BENCH_FLAGS);
  if (values['help'] === true) {
    process.stdout.write(BENCH_HELP);
    return 0;
  }
  const baseConfig = configFromFlags(values, datasetDefaults);
  const modules = await commandModules(values);
  const severities = severityList(values);
  const corruptions = listFlag(values, 'corruptions', CORRUPTIONS, CORRUPTIONS);
  const modes = listFlag(values, 'modes', BENCH_MODES, ['episodic', 'continual']);
  const repeats = integerFlag(values, 'repeats', 1, 1000) ?? 10;
  const batchSize = integerFlag(values, 'batch-size', 1) ?? 64;
  const maxSamples = integerFlag(values, 'max-samples', 1) ?? DEFAULT_MAX_SAMPLES;
  const outDir = stringFlag(values, 'out');
  if (outDir !== undefined) {
    prepareOutputDir(outDir);
  }
  const dataset = datasetFromFlags(values);
  const training = trainingFromFlags(values, baseConfig, dataset);

  const logger = commandLogger(baseConfig);
  const backend = await selectBackend(baseConfig.backend, logger);
  checkRunnerSettings(baseConfig, dataset, modules);
  const source = obtainSourceModel({ config: baseConfig, dataset, modelDir: modelDirFromFlags(values), training, logger, retrain: values['retrain'] === true });
  const count = Math.min(maxSamples, dataset.test.count);
  if (count < batchSize) {
    throw new UsageError(`Invalid value for --batch-size: ${batchSize} is larger than the ${count} test images streamed; choose at most ${count}.`);
  }

  const memoryWarning = smallMemoryWarning(source.config.memorySize, batchSize);
  if (memoryWarning !== undefined) {
    logger.warn(memoryWarning);
  }
  const plan: BenchPlan = { dataset, backbone: source.backbone, config: source.config, severities, corruptions, modes, batchSize, count, modules, repeats };
  const batches = batchCount(count, batchSize);
  const passes = modes.reduce((total, mode) => total + (mode === 'repeated' ? repeats : 1), 0);
  const progress = new ProgressBar('bench', severities.length * passes * 2 * corruptions.length * batches);
  let done = 0;
  const started = performance.now();
  const rows = runBench(plan, () => progress.update(++done));
  progress.finish();
  const seconds = (performance.now() - started) / 1000;

  const tables = severities.map((severity) => errorTable(rows, severity));
  const method = methodSettings(source.config);
  process.stdout.write(
    `Bench: ${dataset.name}, ${source.config.backbone}, ${count} test images per corruption, batch ${batchSize}, backend ${backend}, ` +
      `clean source accuracy ${(source.cleanAccuracy * 100).toFixed(2)}%, streams ran in ${seconds.toFixed(1)} s\nSafe MetaNet: ${method}\n\n`,
  );
  process.stdout.write(tables.map((table) => formatPlainTable(table)).join('\n'));

  if (outDir !== undefined) {
    const results: BenchResults & Record<string, unknown> = {
      dataset: dataset.name,
      backbone: source.config.backbone,
      backend,
      images_per_corruption: count,
      batch_size: batchSize,
      clean_source_accuracy: source.cleanAccuracy,
      seconds,
      safe_metanet: method,
      config: toSnakeCase(source.config),
      rows,
    };
    const markdown = [
      `# Safe MetaNet bench: ${dataset.name}, ${source.config.backbone}`,
      '',
      `${count} test images per corruption, batch ${batchSize}, backend ${backend}; clean source accuracy ${(source.cleanAccuracy * 100).toFixed(2)}%.`,
      '',
      `Safe MetaNet: ${method}.`,
      '',
      ...tables.map((table) => formatMarkdownTable(table)),
    ].join('\n');
    writeFileAtomically(path.join(outDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
    writeFileAtomically(path.join(outDir, 'results.md'), markdown);
    writeFileAtomically(path.join(outDir, 'report.html'), await renderBenchReport(results));
    const written = ['results.json', 'results.md', 'report.html'].map((name) => path.join(outDir, name));
    process.stdout.write(`\nWrote ${written.join(', ')}\n`);
  }
  source.backbone.dispose();
  return 0;
}
