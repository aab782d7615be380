import { buildSafeMetaNet, InputError, selectBackend, toSnakeCase, type JsonLinesWriter, type RunRecord, type SafeMetaNetConfig } from '@safe-metanet/core';
import { CORRUPTIONS, corruptImages, MAX_SEVERITY, MIN_SEVERITY, type ImageDataset } from '@safe-metanet/datasets';

import {
  checkIdentity,
  checkpointPath,
  CHECKPOINT_FORMAT_VERSION,
  DEFAULT_CHECKPOINT_FILE,
  EXIT_INTERRUPTED,
  formatCommandLine,
  prepareCheckpointFolder,
  readCheckpoint,
  resumeArguments,
  watchInterrupts,
  writeCheckpoint,
  type RunIdentity,
} from '../checkpoint.js';
import { DATA_FLAGS, datasetDefaults, datasetFromFlags, modelDirFromFlags, trainingFromFlags } from '../data-options.js';
import { choiceFlag, formatFlags, integerFlag, parseFlags, stringFlag, type FlagSpecs } from '../flags.js';
import { openLogFile } from '../log-file.js';
import { prepareOutputDir, writeFileAtomically } from '../output-files.js';
import { formatHeader, formatSummary } from '../output.js';
import { commandModules } from '../plugins.js';
import { renderRunReport } from '../report/run-report.js';
import { commandLogger, configFromFlags, RUNNER_FLAGS } from '../run-options.js';
import { checkRunnerSettings, configForDataset, obtainSourceModel } from '../source-model.js';
import { adaptStreamInterruptibly, batchCount } from '../stream.js';
import { UsageError } from '../usage-error.js';
import path from 'node:path';

const RUN_FLAGS: FlagSpecs = {
  corruption: { type: 'string', value: 'NAME', help: `corruption of the test images: ${CORRUPTIONS.join(', ')} (default gaussian_noise)` },
  severity: { type: 'string', value: 'N', help: `corruption severity, ${MIN_SEVERITY} to ${MAX_SEVERITY} (default 3)` },
  'batch-size': { type: 'string', value: 'N', help: 'images per batch (default 64)' },
  'max-samples': { type: 'string', value: 'N', help: 'stream at most N test images (default all)' },
  checkpoint: {
    type: 'string',
    value: 'FILE',
    help: `write a checkpoint to FILE on SIGINT or SIGTERM and at the end (without it, only on a signal, to <log-file>.checkpoint.json, else the --resume file, else ${DEFAULT_CHECKPOINT_FILE})`,
  },
  out: { type: 'string', value: 'DIR', help: 'write records.jsonl (one record per batch) and report.html (charts of the run) to DIR at the end' },
  'checkpoint-every': { type: 'string', value: 'N', help: 'also write a checkpoint every N batches and at the end (default: only on SIGINT or SIGTERM)' },
  resume: { type: 'string', value: 'FILE', help: 'continue the run saved in checkpoint FILE; the other flags and the config must match it' },
  ...DATA_FLAGS,
  ...RUNNER_FLAGS,
};

/** Help text of the run command. */
export const RUN_HELP = `Usage: safe-metanet run [flags]

Streams corrupted test images through Safe MetaNet (labels are used only for scoring) and prints,
per batch and in the summary, the adapted accuracy beside the frozen source model's accuracy on
the same batches. Trains the source model first unless a matching saved one exists.

On SIGINT or SIGTERM the run finishes the current batch, writes a checkpoint and the records so
far, prints how to resume and exits with status 130. --resume continues from the checkpoint.

${formatFlags(RUN_FLAGS)}
`;

/** Runs the run command; returns the exit status. */
export async function runCommand(args: readonly string[]): Promise<number> {
  const values = parseFlags('run', args, RUN_FLAGS);
  if (values['help'] === true) {
    process.stdout.write(RUN_HELP);
    return 0;
  }
  const baseConfig = configFromFlags(values, datasetDefaults);
  const modules = await commandModules(values);
  const corruption = choiceFlag(values, 'corruption', CORRUPTIONS) ?? 'gaussian_noise';
  const severity = integerFlag(values, 'severity', MIN_SEVERITY, MAX_SEVERITY) ?? 3;
  const batchSize = integerFlag(values, 'batch-size', 1) ?? 64;
  const maxSamples = integerFlag(values, 'max-samples', 1);
  const checkpointEvery = integerFlag(values, 'checkpoint-every', 1);
  const resumeFile = stringFlag(values, 'resume');
  const logPath = stringFlag(values, 'log-file');
  const checkpointFile = checkpointPath({ checkpoint: stringFlag(values, 'checkpoint'), logFile: logPath, resume: resumeFile });
  // Read before anything slow, so that a missing or corrupt checkpoint fails at once.
  const resumed = resumeFile === undefined ? undefined : readCheckpoint(resumeFile);
  const modelDir = modelDirFromFlags(values);
  const dataset = datasetFromFlags(values);
  const training = trainingFromFlags(values, baseConfig, dataset);
  prepareCheckpointFolder(checkpointFile);
  const outDir = stringFlag(values, 'out');
  if (outDir !== undefined) {
    prepareOutputDir(outDir);
  }
  // The log file is opened once the source model is ready, because a signal during the synchronous training
  // ends the process at once and no file of the run should be left then. Opening and dropping it checks the path now.
  openLogFile(logPath)?.abort();
  let logFile: JsonLinesWriter | undefined;

  try {
    const logger = commandLogger(baseConfig);
    const backend = await selectBackend(baseConfig.backend, logger);
    checkRunnerSettings(baseConfig, dataset, modules);
    const identityOf = (config: SafeMetaNetConfig, sourceModel: string): RunIdentity =>
      runIdentity({ config, dataset, corruption, severity, batchSize, maxSamples, sourceModel });
    if (resumed !== undefined && resumeFile !== undefined) {
      // Every setting but the model file is known before training, so a mismatch does not wait for it.
      const expected = identityOf(configForDataset(baseConfig, dataset), resumed.identity.source_model);
      checkIdentity(resumeFile, resumed.identity, expected);
    }
    const source = obtainSourceModel({ config: baseConfig, dataset, modelDir, training, logger, retrain: values['retrain'] === true });
    logFile = openLogFile(logPath);
    const config = source.config;
    const identity = identityOf(config, source.file);
    if (resumed !== undefined && resumeFile !== undefined) {
      checkIdentity(resumeFile, resumed.identity, identity);
    }

    const count = Math.min(maxSamples ?? dataset.test.count, dataset.test.count);
    if (count < batchSize) {
      throw new UsageError(`Invalid value for --batch-size: ${batchSize} is larger than the ${count} test images streamed; choose at most ${count}.`);
    }
    const shape = { count, height: dataset.height, width: dataset.width, channels: dataset.channels };
    const sampleSize = dataset.height * dataset.width * dataset.channels;
    const images = corruptImages(dataset.test.images.subarray(0, count * sampleSize), shape, corruption, severity, config.seed);
    const labels = dataset.test.labels.subarray(0, count);

    const title = `Safe MetaNet run: ${dataset.name}, ${corruption} severity ${severity}`;
    const extras = {
      batch_size: batchSize,
      images: count,
      active_backend: backend,
      source_model: source.file,
      clean_test_accuracy: source.cleanAccuracy.toFixed(4),
      ...(resumed === undefined ? {} : { resumed_from: `${resumeFile ?? ''} at batch ${resumed.next_batch}` }),
    };
    const runner = buildSafeMetaNet({ config, modules, logger, backbone: source.backbone });
    const batches = batchCount(count, batchSize);
    if (resumed !== undefined) {
      if (resumed.next_batch > batches) {
        throw new InputError(
          `Checkpoint file ${resumeFile ?? ''} is invalid: it resumes at batch ${resumed.next_batch}, but this run has ${batches} batches; start the run again without --resume.`,
        );
      }
      try {
        runner.importState(resumed.state);
      } catch (error) {
        if (error instanceof InputError) {
          throw new InputError(`Checkpoint file ${resumeFile ?? ''}: ${error.message}`, { cause: error });
        }
        throw error;
      }
    }
    // The header comes after the checkpoint is read, so that a checkpoint that fails prints no resumed_from line.
    process.stdout.write(formatHeader(title, config, extras));
    if (resumed !== undefined) {
      // The resumed records come first, so that the log file contains the whole run.
      for (const record of resumed.state.records) {
        logFile?.write(record);
      }
    }
    const saveCheckpoint = (nextBatch: number): void => {
      writeCheckpoint(checkpointFile, { format_version: CHECKPOINT_FORMAT_VERSION, identity, next_batch: nextBatch, state: runner.exportState() });
    };

    const interrupts = watchInterrupts((signal) => logger.warn(`${signal} received: stopping after the current batch`));
    let position;
    try {
      // Each batch logs its own line, which is the progress display of this command.
      position = await adaptStreamInterruptibly(runner, { images, labels, count }, batchSize, {
        startBatch: resumed?.next_batch ?? 0,
        onRecord: (record, index) => {
          logFile?.write(record);
          if (checkpointEvery !== undefined && (index + 1) % checkpointEvery === 0 && interrupts.signal() === undefined) {
            saveCheckpoint(index + 1);
          }
        },
        shouldStop: () => interrupts.signal() !== undefined,
      });
    } finally {
      interrupts.dispose();
    }

    const signal = interrupts.signal();
    const interrupted = signal !== undefined && position.nextBatch < position.batches;
    if (interrupted || checkpointEvery !== undefined || values['checkpoint'] !== undefined) {
      saveCheckpoint(position.nextBatch);
    }
    process.stdout.write(formatSummary(runner.summary(), runner.proxy.name));
    if (outDir !== undefined) {
      const settings = { dataset: dataset.name, corruption, severity, ...extras, ...toSnakeCase(config) };
      await writeRunOutput(outDir, { title, settings, metric: runner.proxy.name, records: runner.records });
    }
    runner.dispose();
    source.backbone.dispose();
    logFile?.close();
    if (logFile !== undefined) {
      process.stdout.write(`Records: ${logFile.target}\n`);
    }
    if (!interrupted) {
      return 0;
    }
    const resumeCommand = formatCommandLine(['safe-metanet', 'run', ...resumeArguments(args, checkpointFile)]);
    process.stderr.write(
      `safe-metanet: interrupted by ${signal} after batch ${position.nextBatch} of ${position.batches}; checkpoint written to ${checkpointFile}. Resume with: ${resumeCommand}\n`,
    );
    return EXIT_INTERRUPTED;
  } finally {
    logFile?.abort();
  }
}

/** The settings of a run that a checkpoint stores and a resumed run must match. */
interface RunSettings {
  readonly config: SafeMetaNetConfig;
  readonly dataset: ImageDataset;
  readonly corruption: string;
  readonly severity: number;
  readonly batchSize: number;
  readonly maxSamples: number | undefined;
  readonly sourceModel: string;
}

function runIdentity(settings: RunSettings): RunIdentity {
  return {
    config: toSnakeCase(settings.config),
    dataset: settings.dataset.name,
    dataset_fingerprint: settings.dataset.fingerprint,
    corruption: settings.corruption,
    severity: settings.severity,
    batch_size: settings.batchSize,
    max_samples: settings.maxSamples ?? null,
    source_model: settings.sourceModel,
  };
}

/** Writes records.jsonl and report.html of a run to `outDir`, each under a temporary name first. */
async function writeRunOutput(outDir: string, run: { title: string; settings: Record<string, unknown>; metric: string; records: readonly RunRecord[] }): Promise<void> {
  const recordsFile = path.join(outDir, 'records.jsonl');
  const reportFile = path.join(outDir, 'report.html');
  writeFileAtomically(recordsFile, run.records.map((record) => `${JSON.stringify(record)}\n`).join(''));
  const settings = Object.fromEntries(
    Object.entries(run.settings).map(([key, value]) => [key, Array.isArray(value) ? `[${value.join(', ')}]` : String(value)]),
  );
  writeFileAtomically(reportFile, await renderRunReport({ title: run.title, settings, metric: run.metric, records: run.records }));
  process.stdout.write(`Wrote ${recordsFile} and ${reportFile}\n`);
}
