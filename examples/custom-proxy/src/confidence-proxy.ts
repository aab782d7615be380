import * as tf from '@tensorflow/tfjs';
import { injectable } from 'inversify';

import { InputError, type ProxyInputs, type ProxyMetric } from '@safe-metanet/core';

/**
 * One minus the mean, over the batch, of the highest softmax probability of each sample. It ranges
 * from 0 (every prediction one-hot) to 1 − 1/classes (every prediction uniform), and lower is better,
 * as the loop requires. Its gradient flows only through each sample's top-class probability.
 */
@injectable()
export class ConfidenceProxy implements ProxyMetric {
  readonly name = 'confidence';
  readonly requiresDecoder = false;

  compute(inputs: ProxyInputs): tf.Scalar {
    const logits = inputs.output.logits;
    const shape = `[${logits.shape.join(', ')}]`;
    if (logits.rank !== 2 || logits.shape[0] === 0 || logits.shape[1] === 0) {
      throw new InputError(`Invalid logits for the confidence proxy: expected a non-empty shape [batch, classes], got ${shape}.`);
    }

    return tf.tidy(() => {
      const topProbability = tf.max(tf.softmax(logits.toFloat()), 1);
      return tf.sub(1, tf.mean(topProbability)) as tf.Scalar;
    });
  }
}
