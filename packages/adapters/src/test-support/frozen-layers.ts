import * as tf from '@tensorflow/tfjs';

import type { LayerSpec } from '@safe-metanet/core';

/** One layer shape for table-driven adapter tests. */
export interface LayerCase {
  readonly label: string;
  readonly layer: LayerSpec;
  readonly batch: number;
  /** Image side in pixels; conv2d cases only. */
  readonly imageSize: number;
}

function denseCase(batch: number): LayerCase {
  return {
    label: `dense batch ${batch}`,
    layer: { name: 'layer_1', kind: 'dense', inputSize: 6, outputSize: 5, kernelSize: 1, strides: 1, padding: 'valid' },
    batch,
    imageSize: 0,
  };
}

function convCase(batch: number, strides: number, padding: 'same' | 'valid'): LayerCase {
  return {
    label: `conv2d k3 strides ${strides} ${padding} batch ${batch}`,
    layer: { name: 'layer_0', kind: 'conv2d', inputSize: 3, outputSize: 5, kernelSize: 3, strides, padding },
    batch,
    // An odd side makes 'same' and 'valid' give different output sizes under strides 2 (4 and 3).
    imageSize: 7,
  };
}

/** A dense layer of 6 inputs and 5 outputs, batch 4. */
export const DENSE_CASE = denseCase(4);

/** A conv2d layer with kernel 3, strides 2 and 'same' padding, batch 2. */
export const STRIDED_CONV_CASE = convCase(2, 2, 'same');

/** Dense and conv2d (kernel 3, strides 1 and 2, same and valid padding) layers, with batch 1 for each kind. */
export const LAYER_CASES: readonly LayerCase[] = [
  DENSE_CASE,
  denseCase(1),
  convCase(2, 1, 'same'),
  convCase(2, 1, 'valid'),
  STRIDED_CONV_CASE,
  convCase(2, 2, 'valid'),
  convCase(1, 2, 'same'),
];

/** A frozen dense or conv2d layer with random weights, an input batch and the layer's pre-activation output. */
export class FrozenLayer {
  readonly layer: LayerSpec;
  /** Frozen kernel, not trainable. */
  readonly kernel: tf.Variable;
  /** Frozen bias, not trainable. */
  readonly bias: tf.Variable;
  readonly input: tf.Tensor;
  /** Pre-activation output of the frozen layer for `input`. */
  readonly output: tf.Tensor;

  constructor(testCase: LayerCase, seed = 7) {
    const { layer, batch, imageSize } = testCase;
    this.layer = layer;
    const kernelShape =
      layer.kind === 'dense'
        ? [layer.inputSize, layer.outputSize]
        : [layer.kernelSize, layer.kernelSize, layer.inputSize, layer.outputSize];
    const inputShape = layer.kind === 'dense' ? [batch, layer.inputSize] : [batch, imageSize, imageSize, layer.inputSize];

    this.kernel = tf.tidy(() => tf.variable(tf.randomNormal(kernelShape, 0, 0.5, 'float32', seed), false));
    this.bias = tf.tidy(() => tf.variable(tf.randomNormal([layer.outputSize], 0, 0.1, 'float32', seed + 1), false));
    this.input = tf.randomNormal(inputShape, 0, 1, 'float32', seed + 2);
    this.output = tf.tidy(() => this.forward(this.input));
  }

  /** Computes the frozen pre-activation output with tf.matMul or tf.conv2d. */
  forward(input: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      if (this.layer.kind === 'dense') {
        return tf.matMul(input as tf.Tensor2D, this.kernel as tf.Tensor2D).add(this.bias);
      }
      return tf.conv2d(input as tf.Tensor4D, this.kernel as tf.Tensor4D, this.layer.strides, this.layer.padding).add(this.bias);
    });
  }

  dispose(): void {
    tf.dispose([this.kernel, this.bias, this.input, this.output]);
  }
}

/** Returns a copy of the tensor's bytes, for bitwise comparisons. */
export function bytesOf(tensor: tf.Tensor): Uint8Array {
  const values = Float32Array.from(tensor.dataSync());
  return new Uint8Array(values.buffer);
}

/** Returns max |tensor| as a number. */
export function maxAbs(tensor: tf.Tensor): number {
  const max = tf.tidy(() => tensor.abs().max());
  const value = max.dataSync()[0] ?? Number.NaN;
  max.dispose();
  return value;
}

/** Returns the adapter's delta for the frozen layer's input: apply(input, frozenOutput) - frozenOutput. */
export function deltaOf(
  adapter: { apply(input: tf.Tensor, frozenOutput: tf.Tensor): tf.Tensor },
  frozen: FrozenLayer,
): tf.Tensor {
  return tf.tidy(() => adapter.apply(frozen.input, frozen.output).sub(frozen.output));
}

/**
 * Runs `steps` Adam steps on the mean squared error between the adapted output and a fixed random
 * target, over the adapter's variables only, and returns the loss before each step.
 */
export function trainAdapter(
  adapter: { apply(input: tf.Tensor, frozenOutput: tf.Tensor): tf.Tensor; readonly variables: readonly tf.Variable[] },
  frozen: FrozenLayer,
  steps: number,
  learningRate = 0.05,
): number[] {
  const target = tf.randomNormal(frozen.output.shape, 0, 1, 'float32', 99);
  const optimizer = tf.train.adam(learningRate);
  const losses: number[] = [];
  for (let step = 0; step < steps; step++) {
    const loss = optimizer.minimize(
      () => tf.losses.meanSquaredError(target, adapter.apply(frozen.input, frozen.output)),
      true,
      [...adapter.variables],
    );
    losses.push(loss?.dataSync()[0] ?? Number.NaN);
    loss?.dispose();
  }
  optimizer.dispose();
  target.dispose();
  return losses;
}
