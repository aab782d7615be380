import { buildSafeMetaNet, selectBackend } from '@safe-metanet/core';
import { CORRUPTIONS, corruptImages, MAX_SEVERITY, MIN_SEVERITY } from '@safe-metanet/datasets';

import { DATA_FLAGS, datasetDefaults, datasetFromFlags, modelDirFromFlags, trainingFromFlags } from '../data-options.js';
import { choiceFlag, formatFlags, integerFlag, parseFlags, stringFlag, type FlagSpecs } from '../flags.js';
import { openLogFile } from '../log-file.js';
import { formatHeader, formatSummary } from '../output.js';
import { standardModules } from '../plugins.js';
import { commandLogger, configFromFlags, RUNNER_FLAGS } from '../run-options.js';
import { checkRunnerSettings, obtainSourceModel } from '../source-model.js';
import { adaptStream } from '../stream.js';
import { UsageError } from '../usage-error.js';

const RUN_FLAGS: FlagSpecs = {
  corruption: { type: 'string', value: 'NAME', help: `corruption of the test images: ${CORRUPTIONS.join(', ')} (default gaussian_noise)` },
  severity: { type: 'string', value: 'N', help: `corruption severity, ${MIN_SEVERITY} to ${MAX_SEVERITY} (default 3)` },
  'batch-size': { type: 'string', value: 'N', help: 'images per batch (default 64)' },
  'max-samples': { type: 'string', value: 'N', help: 'stream at most N test images (default all)' },
  ...DATA_FLAGS,
  ...RUNNER_FLAGS,
};

/** Help text of the run command. */
export const RUN_HELP = `Usage: safe-metanet run [flags]

Streams corrupted test images through Safe MetaNet (labels are used only for scoring) and prints,
per batch and in the summary, the adapted accuracy beside the frozen source model's accuracy on
the same batches. Trains the source model first unless a matching saved one exists.

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
  const corruption = choiceFlag(values, 'corruption', CORRUPTIONS) ?? 'gaussian_noise';
  const severity = integerFlag(values, 'severity', MIN_SEVERITY, MAX_SEVERITY) ?? 3;
  const batchSize = integerFlag(values, 'batch-size', 1) ?? 64;
  const maxSamples = integerFlag(values, 'max-samples', 1);
  const modelDir = modelDirFromFlags(values);
  const dataset = datasetFromFlags(values);
  const training = trainingFromFlags(values, baseConfig, dataset);
  const logFile = openLogFile(stringFlag(values, 'log-file'));

  try {
    const logger = commandLogger(baseConfig);
    const backend = await selectBackend(baseConfig.backend, logger);
    checkRunnerSettings(baseConfig, dataset, standardModules());
    const source = obtainSourceModel({ config: baseConfig, dataset, modelDir, training, logger, retrain: values['retrain'] === true });
    const config = source.config;

    const count = Math.min(maxSamples ?? dataset.test.count, dataset.test.count);
    if (count < batchSize) {
      throw new UsageError(`Invalid value for --batch-size: ${batchSize} is larger than the ${count} test images streamed; choose at most ${count}.`);
    }
    const shape = { count, height: dataset.height, width: dataset.width, channels: dataset.channels };
    const sampleSize = dataset.height * dataset.width * dataset.channels;
    const images = corruptImages(dataset.test.images.subarray(0, count * sampleSize), shape, corruption, severity, config.seed);
    const labels = dataset.test.labels.subarray(0, count);

    process.stdout.write(
      formatHeader(`Safe MetaNet run: ${dataset.name}, ${corruption} severity ${severity}`, config, {
        batch_size: batchSize,
        images: count,
        active_backend: backend,
        source_model: source.file,
        clean_test_accuracy: source.cleanAccuracy.toFixed(4),
      }),
    );

    const runner = buildSafeMetaNet({ config, modules: standardModules(), logger, backbone: source.backbone });
    // Each batch logs its own line, which is the progress display of this command.
    adaptStream(runner, { images, labels, count }, batchSize, (record) => logFile?.write(record));

    process.stdout.write(formatSummary(runner.summary(), runner.proxy.name));
    runner.dispose();
    source.backbone.dispose();
    logFile?.close();
    if (logFile !== undefined) {
      process.stdout.write(`Records: ${logFile.target}\n`);
    }
    return 0;
  } finally {
    logFile?.abort();
  }
}
