import { selectBackend } from '@safe-metanet/core';

import { DATA_FLAGS, datasetDefaults, datasetFromFlags, modelDirFromFlags, trainingFromFlags } from '../data-options.js';
import { formatFlags, parseFlags, type FlagSpecs } from '../flags.js';
import { commandLogger, configFromFlags, RUNNER_FLAGS } from '../run-options.js';
import { obtainSourceModel } from '../source-model.js';

const TRAIN_FLAGS: FlagSpecs = {
  ...DATA_FLAGS,
  config: RUNNER_FLAGS['config'] as FlagSpecs[string],
  backbone: RUNNER_FLAGS['backbone'] as FlagSpecs[string],
  seed: RUNNER_FLAGS['seed'] as FlagSpecs[string],
  backend: RUNNER_FLAGS['backend'] as FlagSpecs[string],
  verbose: RUNNER_FLAGS['verbose'] as FlagSpecs[string],
  help: RUNNER_FLAGS['help'] as FlagSpecs[string],
};

/** Help text of the train command. */
export const TRAIN_HELP = `Usage: safe-metanet train [flags]

Trains a source model (the backbone plus a decoder head) on the clean training images of a data
set, reports its clean test accuracy and saves it. A saved model whose config and data match is
reused instead of retrained, by this command and by run and bench.

${formatFlags(TRAIN_FLAGS)}
`;

/** Runs the train command; returns the exit status. */
export async function trainCommand(args: readonly string[]): Promise<number> {
  const values = parseFlags('train', args, TRAIN_FLAGS);
  if (values['help'] === true) {
    process.stdout.write(TRAIN_HELP);
    return 0;
  }
  const config = configFromFlags(values, datasetDefaults);
  const modelDir = modelDirFromFlags(values);
  const dataset = datasetFromFlags(values);
  const training = trainingFromFlags(values, config, dataset);

  const logger = commandLogger(config);
  await selectBackend(config.backend, logger);
  const source = obtainSourceModel({ config, dataset, modelDir, training, logger, retrain: values['retrain'] === true });

  const verb = source.reused ? 'Reused' : `Trained in ${source.seconds.toFixed(1)} s`;
  process.stdout.write(
    `${verb}: ${config.backbone} on ${dataset.name} (${dataset.train.count} train / ${dataset.test.count} test images, ` +
      `${training.epochs} epochs)\n` +
      `Clean test accuracy: ${(source.cleanAccuracy * 100).toFixed(2)}%\n` +
      `Model file: ${source.file}\n`,
  );
  source.backbone.dispose();
  return 0;
}
