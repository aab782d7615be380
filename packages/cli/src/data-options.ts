import { loadDataset, type ImageDataset } from '@safe-metanet/datasets';
import type { SafeMetaNetConfig } from '@safe-metanet/core';

import { integerFlag, stringFlag, type FlagSpecs, type FlagValues } from './flags.js';
import { prepareOutputDir } from './output-files.js';
import { DEFAULT_MODEL_DIR, defaultTraining, type SourceTraining } from './source-model.js';

/** Flags of the commands that work on a data set and its source model. */
export const DATA_FLAGS: FlagSpecs = {
  dataset: { type: 'string', value: 'NAME', help: 'mnist (the embedded digits), fashion-mnist, or a folder of IDX files (default mnist)' },
  'model-dir': { type: 'string', value: 'DIR', help: `folder of saved source models (default ${DEFAULT_MODEL_DIR})` },
  epochs: { type: 'string', value: 'N', help: 'source-model training epochs (default: 10 for mlp and 4 for cnn, fewer on large data sets: at most 5000 and 3000 steps of 64 images)' },
  retrain: { type: 'boolean', help: 'train the source model even when a matching saved one exists' },
};

/**
 * Hidden widths for image data sets, used unless the config file or a flag sets hidden_dim.
 * At the general default of 64 units the MLP reaches 93.4% test accuracy on the embedded MNIST
 * split, and at 256 units 96.0%. The CNN reaches 96.1% with 32 channels.
 */
const DATASET_HIDDEN_DIM: Readonly<Record<string, number>> = { mlp: 256, cnn: 32 };

/** Returns the settings that data-set commands use in place of the general defaults. */
export function datasetDefaults(config: SafeMetaNetConfig): Record<string, unknown> {
  const hiddenDim = DATASET_HIDDEN_DIM[config.backbone];
  return hiddenDim === undefined ? {} : { hidden_dim: hiddenDim };
}

/** Loads the data set that --dataset names. */
export function datasetFromFlags(values: FlagValues): ImageDataset {
  return loadDataset(stringFlag(values, 'dataset') ?? 'mnist');
}

/** Returns the training settings for the config's backbone and the data set, with --epochs applied. */
export function trainingFromFlags(values: FlagValues, config: SafeMetaNetConfig, dataset: ImageDataset): SourceTraining {
  const base = defaultTraining(config.backbone, dataset.train.count);
  const epochs = integerFlag(values, 'epochs', 1, 1000);
  return epochs === undefined ? base : { ...base, epochs };
}

/** Returns the --model-dir folder, created and checked to be writable before any training starts. */
export function modelDirFromFlags(values: FlagValues): string {
  return prepareOutputDir(stringFlag(values, 'model-dir') ?? DEFAULT_MODEL_DIR, '--model-dir');
}
