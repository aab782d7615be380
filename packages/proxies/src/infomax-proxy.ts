import * as tf from '@tensorflow/tfjs';
import { injectable } from 'inversify';

import { InputError, type ProxyInputs, type ProxyMetric } from '@safe-metanet/core';

/**
 * Information maximisation (the objective of SHOT): the mean per-sample entropy of the predicted
 * class distribution minus the entropy of the batch's mean prediction, in nats. The second term grows
 * when predictions spread over the classes, so the metric penalises a collapse onto few classes that
 * plain entropy rewards. It ranges from -ln(classes) (confident and balanced) to 0, because the
 * entropy of the mean prediction is at least the mean entropy.
 */
@injectable()
export class InfoMaxProxy implements ProxyMetric {
  readonly name = 'infomax';
  readonly requiresDecoder = false;

  compute(inputs: ProxyInputs): tf.Scalar {
    const logits = inputs.output.logits;
    if (logits.rank !== 2 || logits.shape[0] === 0 || logits.shape[1] === 0) {
      throw new InputError(
        `Invalid logits for the infomax proxy: expected a non-empty shape [batch, classes], got [${logits.shape.join(', ')}].`,
      );
    }

    return tf.tidy(() => {
      const logProbabilities = tf.logSoftmax(logits.toFloat());
      const probabilities = tf.exp(logProbabilities);
      const sampleEntropy = tf.neg(tf.sum(tf.mul(probabilities, logProbabilities), 1)).mean();
      // A floor of 1e-12 keeps log finite for classes that no sample predicts.
      const meanPrediction = probabilities.mean(0);
      const marginalEntropy = tf.neg(tf.sum(tf.mul(meanPrediction, tf.log(meanPrediction.maximum(1e-12)))));
      return sampleEntropy.sub(marginalEntropy) as tf.Scalar;
    });
  }
}
