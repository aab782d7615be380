import * as tf from '@tensorflow/tfjs';
import { injectable } from 'inversify';

import { ConfigError, InputError, type ProxyInputs, type ProxyMetric } from '@safe-metanet/core';

/**
 * Mean squared error between the decoder's reconstruction and the input, averaged over every
 * element of the batch (each sample flattened), in squared input units. It is a TTT-style
 * self-supervised objective and needs a backbone built with a decoder head.
 */
@injectable()
export class ReconstructionProxy implements ProxyMetric {
  readonly name = 'reconstruction';
  readonly requiresDecoder = true;

  compute(inputs: ProxyInputs): tf.Scalar {
    const { input } = inputs;
    const reconstruction = inputs.output.reconstruction;
    if (reconstruction === undefined) {
      throw new ConfigError(
        'proxy',
        "Invalid value for 'proxy': 'reconstruction' needs a backbone with a decoder head, and this backbone has no " +
          'decoder (its forward pass returned no reconstruction). Build the backbone with a decoder or choose proxy: entropy.',
      );
    }
    if (!sameShape(reconstruction.shape, input.shape)) {
      throw new InputError(
        `Invalid reconstruction for the reconstruction proxy: its shape [${reconstruction.shape.join(', ')}] differs ` +
          `from the input shape [${input.shape.join(', ')}]; the decoder must output the input's shape.`,
      );
    }
    if (input.size === 0) {
      throw new InputError(`Invalid input for the reconstruction proxy: shape [${input.shape.join(', ')}] is empty; pass at least one sample.`);
    }

    return tf.tidy(() => {
      const batchSize = input.shape[0] ?? 0;
      const target = input.toFloat().reshape([batchSize, -1]);
      const predicted = reconstruction.toFloat().reshape([batchSize, -1]);
      return tf.mean(tf.squaredDifference(predicted, target));
    });
  }
}

function sameShape(left: readonly number[], right: readonly number[]): boolean {
  return left.length === right.length && left.every((size, axis) => size === right[axis]);
}
