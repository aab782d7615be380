import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { AdamConstants, AttemptAdam } from './attempt-adam.js';
import { selectBackend } from './backend.js';
import { silentLogger } from './logger.js';

const LEARNING_RATE = 1e-3;

beforeAll(async () => {
  await selectBackend('wasm', silentLogger);
});

afterAll(async () => {
  await tf.setBackend('cpu');
});

/** Returns three variables like an adapter's: zeros, as LoRA's B starts, and two seeded random ones. */
function makeVariables(): tf.Variable[] {
  // tf.tidy disposes the initial values and keeps the variables.
  return tf.tidy(() => [
    tf.variable(tf.zeros([4, 10])),
    tf.variable(tf.randomNormal([6, 4], 0, 1, 'float32', 3)),
    tf.variable(tf.randomNormal([10], 0, 1, 'float32', 4)),
  ]);
}

/** Returns a loss of the variables with an entropy and a penalty, as the loop's loss has. */
function lossOf(variables: readonly tf.Variable[], input: tf.Tensor2D): tf.Scalar {
  const [b, a, bias] = variables as [tf.Variable, tf.Variable, tf.Variable];
  const logits = tf.add(tf.matMul(tf.matMul(input, a), b), bias);
  const logProbabilities = tf.logSoftmax(logits);
  const entropy = tf.neg(tf.mean(tf.sum(tf.mul(tf.exp(logProbabilities), logProbabilities), 1)));
  return tf.add(entropy, tf.mul(tf.addN(variables.map((variable) => tf.sum(tf.square(variable)))), 0.01));
}

/** Copies the bytes of tensors for bitwise comparison. */
function bytesOf(tensors: readonly tf.Tensor[]): Uint8Array[] {
  return tensors.map((tensor) => new Uint8Array((tensor.dataSync() as Float32Array).slice().buffer));
}

function runSteps(backend: 'cpu' | 'wasm', steps: number, optimizer: 'tfjs' | 'attempt'): { weights: Uint8Array[]; losses: number[] } {
  tf.setBackend(backend);
  const variables = makeVariables();
  const input = tf.randomNormal([8, 6], 0, 1, 'float32', 5) as tf.Tensor2D;
  const constants = new AdamConstants(LEARNING_RATE);
  const tfjsAdam = tf.train.adam(LEARNING_RATE);
  const attemptAdam = new AttemptAdam(constants);
  const losses: number[] = [];
  for (let step = 0; step < steps; step++) {
    const loss =
      optimizer === 'tfjs'
        ? (tfjsAdam.minimize(() => lossOf(variables, input), true, variables) as tf.Scalar)
        : attemptAdam.minimize(() => lossOf(variables, input), variables);
    losses.push(loss.dataSync()[0] as number);
    loss.dispose();
  }
  const weights = bytesOf(variables);
  tfjsAdam.dispose();
  attemptAdam.dispose();
  constants.dispose();
  tf.dispose([...variables, input]);
  return { weights, losses };
}

describe('AttemptAdam', () => {
  it.each([
    { backend: 'wasm' as const, steps: 1 },
    { backend: 'wasm' as const, steps: 3 },
    { backend: 'cpu' as const, steps: 1 },
    { backend: 'cpu' as const, steps: 3 },
  ])('equals tf.train.adam bitwise on $backend, $steps steps', ({ backend, steps }) => {
    const reference = runSteps(backend, steps, 'tfjs');
    const ours = runSteps(backend, steps, 'attempt');

    expect(ours.losses).toEqual(reference.losses);
    expect(ours.weights).toEqual(reference.weights);
    // The zero variable moved, so the comparison covers a real update.
    expect(new Float32Array(ours.weights[0]!.buffer).some((value) => value !== 0)).toBe(true);
  });

  it('leaves no tensor behind', () => {
    const before = tf.memory().numTensors;

    runSteps('wasm', 3, 'attempt');

    expect(tf.memory().numTensors).toBe(before);
  });

  it('keeps the weights when the loss throws', () => {
    tf.setBackend('wasm');
    const variables = makeVariables();
    const constants = new AdamConstants(LEARNING_RATE);
    const adam = new AttemptAdam(constants);
    const before = bytesOf(variables);
    const tensors = tf.memory().numTensors;

    expect(() =>
      adam.minimize(() => {
        throw new Error('proxy failed');
      }, variables),
    ).toThrow('proxy failed');
    expect(bytesOf(variables)).toEqual(before);
    expect(tf.memory().numTensors).toBe(tensors);
    adam.dispose();
    constants.dispose();
    tf.dispose(variables);
  });
});
