import * as tf from '@tensorflow/tfjs';

import type { FrozenBackbone } from '@safe-metanet/backbones';
import type { Backbone } from '@safe-metanet/core';

import type { LabelledBatch } from './synthetic-task.js';

/** Settings of source-model training. */
export interface TrainingOptions {
  /** Optimizer steps. */
  readonly steps: number;
  /** Adam learning rate. */
  readonly learningRate: number;
  /** Returns the next training batch. */
  readonly nextBatch: (step: number) => LabelledBatch;
  /** Weight of the decoder's mean squared reconstruction error in the loss; used only with a decoder. */
  readonly reconstructionWeight?: number;
  /** Called after each step with the step's loss. */
  readonly onStep?: (step: number, loss: number) => void;
}

/**
 * Trains every weight of a backbone (classifier and decoder) with Adam on cross-entropy,
 * plus the reconstruction error when the backbone has a decoder. Returns the last loss.
 */
export function trainBackbone(backbone: FrozenBackbone, options: TrainingOptions): number {
  const variables = [...backbone.weights()];
  backbone.setTrainable(true);
  const optimizer = tf.train.adam(options.learningRate);
  const reconstructionWeight = options.reconstructionWeight ?? 1;
  let lastLoss = Number.NaN;

  try {
    for (let step = 0; step < options.steps; step++) {
      const batch = options.nextBatch(step);
      const cost = tf.tidy((): tf.Scalar => {
        const inputs = tf.tensor(batch.inputs, [batch.count, ...backbone.inputShape]);
        const targets = tf.oneHot(tf.tensor1d(batch.labels, 'int32'), backbone.numClasses);
        const loss = optimizer.minimize(
          () => {
            const output = backbone.forward(inputs, new Map());
            const classification = tf.losses.softmaxCrossEntropy(targets, output.logits);
            if (output.reconstruction === undefined) {
              return classification as tf.Scalar;
            }
            const reconstruction = tf.losses.meanSquaredError(inputs, output.reconstruction);
            return classification.add(reconstruction.mul(reconstructionWeight)) as tf.Scalar;
          },
          true,
          variables,
        );
        return loss ?? tf.scalar(Number.NaN);
      });
      lastLoss = cost.dataSync()[0] ?? Number.NaN;
      cost.dispose();
      options.onStep?.(step, lastLoss);
    }
  } finally {
    optimizer.dispose();
    backbone.setTrainable(false);
  }
  return lastLoss;
}

/** Returns the accuracy of a backbone's frozen predictions on labelled samples, in batches. */
export function evaluateBackbone(backbone: Backbone, data: LabelledBatch, batchSize = 256): number {
  let correct = 0;
  const sampleSize = backbone.inputShape.reduce((product, size) => product * size, 1);
  for (let start = 0; start < data.count; start += batchSize) {
    const count = Math.min(batchSize, data.count - start);
    const predicted = tf.tidy(() => {
      const inputs = tf.tensor(data.inputs.subarray(start * sampleSize, (start + count) * sampleSize), [count, ...backbone.inputShape]);
      return backbone.forward(inputs, new Map()).logits.argMax(1).dataSync();
    });
    for (let row = 0; row < count; row++) {
      if (predicted[row] === data.labels[start + row]) {
        correct++;
      }
    }
  }
  return data.count === 0 ? 0 : correct / data.count;
}
