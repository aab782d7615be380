import * as tf from '@tensorflow/tfjs';

import type { Adapter } from '@safe-metanet/core';

import type { NamedWeight } from '../frozen-backbone.js';

/** Returns the max absolute elementwise difference of two tensors of the same shape. */
export function maxAbsDifference(left: tf.Tensor, right: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(left, right))).dataSync()[0] ?? Number.NaN);
}

/** Checks whether two float32 arrays have identical bytes. Unlike a numeric comparison, it distinguishes -0 from 0. */
export function sameBytes(left: Float32Array, right: Float32Array): boolean {
  const leftBytes = Buffer.from(left.buffer, left.byteOffset, left.byteLength);
  const rightBytes = Buffer.from(right.buffer, right.byteOffset, right.byteLength);
  return leftBytes.equals(rightBytes);
}

/** Returns copies of every weight's values, in the backbone's order. */
export function weightValues(weights: readonly tf.Variable[]): Float32Array[] {
  return weights.map((weight) => Float32Array.from(weight.dataSync()));
}

/** Shapes an adapter saw on one call. */
export interface SeenShapes {
  readonly input: readonly number[];
  readonly frozenOutput: readonly number[];
}

/** A test adapter that adds `shift` to the frozen output and records the shapes it was called with. */
export class ShiftAdapter implements Adapter {
  readonly type = 'shift';
  readonly variables: readonly tf.Variable[] = [];
  readonly seen: SeenShapes[] = [];

  constructor(
    readonly layerName: string,
    private readonly shift: number,
  ) {}

  apply(input: tf.Tensor, frozenOutput: tf.Tensor): tf.Tensor {
    this.seen.push({ input: [...input.shape], frozenOutput: [...frozenOutput.shape] });
    return frozenOutput.add(this.shift);
  }

  dispose(): void {
    // Owns no tensors.
  }
}

/** A faulty test adapter that returns a tensor of the wrong shape. */
export class WrongShapeAdapter implements Adapter {
  readonly type = 'wrong_shape';
  readonly variables: readonly tf.Variable[] = [];

  constructor(readonly layerName: string) {}

  apply(_input: tf.Tensor, frozenOutput: tf.Tensor): tf.Tensor {
    return frozenOutput.reshape([-1]);
  }

  dispose(): void {
    // Owns no tensors.
  }
}

/** Returns the weight called `name`. Throws when the backbone has none, so that a test fails with the name. */
export function weightByName(backbone: { namedWeights(): readonly NamedWeight[] }, name: string): tf.Variable {
  const weight = backbone.namedWeights().find((candidate) => candidate.name === name);
  if (weight === undefined) {
    throw new Error(`The backbone has no weight '${name}'.`);
  }
  return weight.variable;
}
