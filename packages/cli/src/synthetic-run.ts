import * as tf from '@tensorflow/tfjs';

import type { FrozenBackbone } from '@safe-metanet/backbones';
import type { RunRecord, SafeMetaNet, SafeMetaNetConfig } from '@safe-metanet/core';

import { SeededRandom } from './random.js';
import { SyntheticTask } from './synthetic-task.js';
import { trainBackbone } from './training.js';

/** Source-model training on the synthetic task: 300 Adam steps of 64 clean samples at learning rate 3e-3. */
export const SYNTHETIC_TRAINING = { steps: 300, batchSize: 64, learningRate: 3e-3 } as const;

/** Trains `backbone` on clean batches of a synthetic task seeded by the config, and returns the task. */
export function trainSyntheticSource(backbone: FrozenBackbone, config: SafeMetaNetConfig): SyntheticTask {
  const task = new SyntheticTask({ sampleShape: backbone.inputShape, classes: config.outputDim, seed: config.seed });
  const random = new SeededRandom(config.seed + 1);
  trainBackbone(backbone, {
    steps: SYNTHETIC_TRAINING.steps,
    learningRate: SYNTHETIC_TRAINING.learningRate,
    nextBatch: () => task.sample(SYNTHETIC_TRAINING.batchSize, random, false),
  });
  return task;
}

/** Options of streamSyntheticBatches. */
export interface SyntheticStreamOptions {
  /** Number of shifted batches. */
  readonly batches: number;
  /** Samples per batch. */
  readonly batchSize: number;
  /** Called with each runner's record of each batch. */
  readonly onRecord?: (record: RunRecord, runner: SafeMetaNet) => void;
}

/**
 * Streams shifted batches of the task, seeded by the config, through every runner, so that several
 * runners see identical batches. The labels only score the predictions.
 */
export function streamSyntheticBatches(
  runners: SafeMetaNet | readonly SafeMetaNet[],
  task: SyntheticTask,
  config: SafeMetaNetConfig,
  options: SyntheticStreamOptions,
): void {
  const all = Array.isArray(runners) ? runners : [runners as SafeMetaNet];
  const random = new SeededRandom(config.seed + 3);
  for (let step = 0; step < options.batches; step++) {
    const batch = task.sample(options.batchSize, random, true);
    for (const runner of all) {
      const inputs = tf.tensor(batch.inputs, [batch.count, ...runner.backbone.inputShape]);
      try {
        // The step runs on its own line: inside `onRecord?.(…)` it would be skipped when there is no callback.
        const record = runner.step(inputs, batch.labels);
        options.onRecord?.(record, runner);
      } finally {
        inputs.dispose();
      }
    }
  }
}
