import * as tf from '@tensorflow/tfjs';
import { injectable } from 'inversify';

import { InputError, type ProxyInputs, type ProxyMetric } from '@safe-metanet/core';

/**
 * Mean Shannon entropy of the predicted class distribution in nats, the objective of Tent.
 * For each sample H = -Σ p·log p with log p = logSoftmax(logits), so that large logits (±1e4)
 * give a finite value and finite gradients. H ranges from 0 (one-hot) to ln(classes) (uniform).
 */
@injectable()
export class EntropyProxy implements ProxyMetric {
  readonly name = 'entropy';
  readonly requiresDecoder = false;

  compute(inputs: ProxyInputs): tf.Scalar {
    const logits = inputs.output.logits;
    const shape = `[${logits.shape.join(', ')}]`;
    if (logits.rank !== 2) {
      throw new InputError(`Invalid logits for the entropy proxy: expected shape [batch, classes], got rank ${logits.rank} with shape ${shape}.`);
    }
    if (logits.shape[0] === 0 || logits.shape[1] === 0) {
      throw new InputError(`Invalid logits for the entropy proxy: shape ${shape} is empty; pass at least one sample and one class.`);
    }

    return tf.tidy(() => {
      const logProbabilities = tf.logSoftmax(logits.toFloat());
      const entropy = tf.neg(tf.sum(tf.mul(tf.exp(logProbabilities), logProbabilities), 1));
      return tf.mean(entropy);
    });
  }
}
