import 'reflect-metadata';

import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';

import { ConfigError, InputError, selectBackend, silentLogger } from '@safe-metanet/core';

import { ReconstructionProxy } from './reconstruction-proxy.js';

const proxy = new ReconstructionProxy();

function mseOf(input: tf.Tensor, reconstruction: tf.Tensor): number {
  const logits = tf.zeros([input.shape[0] ?? 0, 3]) as tf.Tensor2D;
  const metric = proxy.compute({ input, output: { logits, reconstruction } });
  const value = metric.dataSync()[0] ?? Number.NaN;
  tf.dispose([metric, logits]);
  return value;
}

beforeAll(async () => {
  await selectBackend('cpu', silentLogger);
});

describe('ReconstructionProxy', () => {
  it('has the config name and needs a decoder', () => {
    expect(proxy.name).toBe('reconstruction');
    expect(proxy.requiresDecoder).toBe(true);
  });

  it('equals a hand-computed MSE', () => {
    const input = tf.tensor2d([
      [0, 1, 2],
      [3, 4, 5],
    ]);
    const reconstruction = tf.tensor2d([
      [0.5, 1, 1],
      [3, 2, 5],
    ]);
    // Squared errors 0.25, 0, 1, 0, 4, 0 over 6 elements.
    const expected = 5.25 / 6;

    expect(Math.abs(mseOf(input, reconstruction) - expected)).toBeLessThan(1e-6);
    tf.dispose([input, reconstruction]);
  });

  it('averages every element of image batches', () => {
    const input = tf.randomUniform([4, 5, 5, 2], 0, 1, 'float32', 7);
    const reconstruction = tf.randomUniform([4, 5, 5, 2], 0, 1, 'float32', 8);
    const inputValues = input.dataSync();
    const reconstructionValues = reconstruction.dataSync();
    let sum = 0;
    inputValues.forEach((value, index) => {
      sum += ((reconstructionValues[index] ?? 0) - value) ** 2;
    });

    expect(Math.abs(mseOf(input, reconstruction) - sum / inputValues.length)).toBeLessThan(1e-6);
    tf.dispose([input, reconstruction]);
  });

  it('perfect reconstruction gives zero', () => {
    const input = tf.randomUniform([3, 6], 0, 1, 'float32', 9);

    expect(mseOf(input, input)).toBe(0);
    input.dispose();
  });

  it('missing reconstruction is a config error', () => {
    const input = tf.zeros([2, 4]);
    const logits = tf.zeros([2, 3]) as tf.Tensor2D;
    const run = (): unknown => proxy.compute({ input, output: { logits } });

    expect(run).toThrow(ConfigError);
    expect(run).toThrow('this backbone has no decoder');
    tf.dispose([input, logits]);
  });

  it('names the proxy key in the error', () => {
    const input = tf.zeros([2, 4]);
    const logits = tf.zeros([2, 3]) as tf.Tensor2D;
    let caught: unknown;
    try {
      proxy.compute({ input, output: { logits } });
    } catch (error) {
      caught = error;
    }

    expect((caught as ConfigError).key).toBe('proxy');
    tf.dispose([input, logits]);
  });

  it('rejects a reconstruction of another shape', () => {
    const input = tf.zeros([2, 4]);
    const reconstruction = tf.zeros([2, 2, 2]);

    expect(() => mseOf(input, reconstruction)).toThrow(InputError);
    expect(() => mseOf(input, reconstruction)).toThrow('its shape [2, 2, 2] differs from the input shape [2, 4]');
    tf.dispose([input, reconstruction]);
  });

  it('gradient flows to the reconstruction', () => {
    const input = tf.tensor2d([[1, 0]]);
    const reconstruction = tf.tensor2d([[0.5, 0.5]]);
    const logits = tf.zeros([1, 3]) as tf.Tensor2D;
    const gradientOf = tf.grad((x: tf.Tensor) => proxy.compute({ input, output: { logits, reconstruction: x } }));

    const gradient = gradientOf(reconstruction);

    // d/dr mean((r - x)^2) = 2 (r - x) / n with n = 2.
    expect(Array.from(gradient.dataSync())).toEqual([-0.5, 0.5]);
    tf.dispose([input, reconstruction, logits, gradient]);
  });

  it('leaves only the result tensor', () => {
    const input = tf.randomUniform([4, 8], 0, 1, 'float32', 1);
    const reconstruction = tf.randomUniform([4, 8], 0, 1, 'float32', 2);
    const logits = tf.zeros([4, 3]) as tf.Tensor2D;
    const before = tf.memory().numTensors;

    const metric = proxy.compute({ input, output: { logits, reconstruction } });

    expect(tf.memory().numTensors).toBe(before + 1);
    metric.dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([input, reconstruction, logits]);
  });
});
