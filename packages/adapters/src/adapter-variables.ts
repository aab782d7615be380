import * as tf from '@tensorflow/tfjs';

import { ConfigError } from '@safe-metanet/core';

// tfjs rejects a second variable with a registered name, so every adapter variable gets a process-wide number.
let variableCount = 0;

/**
 * Creates a trainable variable named `adapter/<layer>/<type>/<role>/<number>` from the tensor `initial`
 * returns; the initial tensor is released.
 */
export function createAdapterVariable(
  layerName: string,
  adapterType: string,
  role: string,
  initial: () => tf.Tensor,
): tf.Variable {
  const name = `adapter/${layerName}/${adapterType}/${role}/${variableCount}`;
  variableCount++;
  return tf.tidy(() => tf.variable(initial(), true, name));
}

/**
 * Returns seeded values uniform in ±1/sqrt(fanIn), the bound of PyTorch's kaiming_uniform_ with
 * a = sqrt(5): its default Linear initialisation, and the usual initialisation of LoRA's A factor.
 */
export function seededUniform(shape: readonly number[], fanIn: number, seed: number): tf.Tensor {
  const bound = 1 / Math.sqrt(fanIn);
  return tf.randomUniform([...shape], -bound, bound, 'float32', seed);
}

/** Checks that an adapter seed is a finite number. */
export function checkSeed(seed: number): void {
  if (typeof seed !== 'number' || !Number.isFinite(seed)) {
    throw new ConfigError('seed', `Invalid value for 'seed': ${String(seed)}; expected a finite number.`);
  }
}
