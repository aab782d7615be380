import 'reflect-metadata';

import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';

import { InputError, selectBackend, silentLogger } from '@safe-metanet/core';

import { EntropyProxy } from './entropy-proxy.js';

const proxy = new EntropyProxy();

function entropyOf(logits: tf.Tensor): number {
  const metric = proxy.compute({ input: logits, output: { logits: logits as tf.Tensor2D } });
  const value = metric.dataSync()[0] ?? Number.NaN;
  metric.dispose();
  return value;
}

/** Mean entropy in float64 from softmax probabilities, with the row maximum subtracted first. */
function referenceEntropy(rows: readonly (readonly number[])[]): number {
  let total = 0;
  for (const row of rows) {
    const largest = Math.max(...row);
    const exponentials = row.map((value) => Math.exp(value - largest));
    const sum = exponentials.reduce((left, right) => left + right, 0);
    const probabilities = exponentials.map((value) => value / sum);
    total -= probabilities.reduce((entropy, p) => (p > 0 ? entropy + p * Math.log(p) : entropy), 0);
  }
  return total / rows.length;
}

beforeAll(async () => {
  await selectBackend('cpu', silentLogger);
});

describe('EntropyProxy', () => {
  it('has the config name and needs no decoder', () => {
    expect(proxy.name).toBe('entropy');
    expect(proxy.requiresDecoder).toBe(false);
  });

  it.each([{ classes: 2 }, { classes: 10 }, { classes: 1000 }])('uniform logits over $classes classes give ln(classes)', ({ classes }) => {
    const logits = tf.fill([4, classes], 3.5);

    expect(Math.abs(entropyOf(logits) - Math.log(classes))).toBeLessThan(1e-5);
    logits.dispose();
  });

  it('one-hot-like logits give about zero', () => {
    const logits = tf.tensor2d([
      [100, 0, 0, 0],
      [0, 0, -50, 60],
    ]);

    const value = entropyOf(logits);

    expect(value).toBeGreaterThanOrEqual(0);
    expect(value).toBeLessThan(1e-5);
    logits.dispose();
  });

  it('matches softmax probabilities on random logits', () => {
    const logits = tf.randomNormal([16, 7], 0, 3, 'float32', 42);
    const rows = logits.arraySync() as number[][];

    expect(Math.abs(entropyOf(logits) - referenceEntropy(rows))).toBeLessThan(1e-5);
    logits.dispose();
  });

  it('averages over the batch', () => {
    const rows = [
      [0, 0, 0],
      [10, 0, 0],
    ];
    const logits = tf.tensor2d(rows);

    expect(Math.abs(entropyOf(logits) - (Math.log(3) + referenceEntropy([rows[1] as number[]])) / 2)).toBeLessThan(1e-5);
    logits.dispose();
  });

  it('accepts int32 logits', () => {
    const logits = tf.zeros([2, 5], 'int32');

    expect(Math.abs(entropyOf(logits) - Math.log(5))).toBeLessThan(1e-5);
    logits.dispose();
  });

  it('large logits keep value and gradient finite', () => {
    const logits = tf.tensor2d([
      [1e4, -1e4, 0],
      [-1e4, 1e4, 1e4 - 1],
      [1e4, 1e4, -1e4],
    ]);
    const gradientOf = tf.grad((x: tf.Tensor) => proxy.compute({ input: x, output: { logits: x as tf.Tensor2D } }));

    const value = entropyOf(logits);
    const gradient = gradientOf(logits);
    const gradientValues = Array.from(gradient.dataSync());

    expect(Number.isFinite(value)).toBe(true);
    // Rows: one-hot (0), two classes one logit apart, an even split of two classes (ln 2).
    expect(Math.abs(value - referenceEntropy(logits.arraySync()))).toBeLessThan(1e-5);
    expect(gradientValues.every(Number.isFinite)).toBe(true);
    expect(gradientValues.some((entry) => entry !== 0)).toBe(true);
    tf.dispose([logits, gradient]);
  });

  it('gradient matches a finite difference', () => {
    const logits = tf.tensor2d([[0.3, -1.2, 2.0, 0.5]]);
    const gradientOf = tf.grad((x: tf.Tensor) => proxy.compute({ input: x, output: { logits: x as tf.Tensor2D } }));
    const step = 1e-2;

    const gradient = gradientOf(logits);
    const analytic = gradient.dataSync()[2] ?? Number.NaN;
    const row = [0.3, -1.2, 2.0, 0.5];
    const plus = referenceEntropy([row.map((value, index) => (index === 2 ? value + step : value))]);
    const minus = referenceEntropy([row.map((value, index) => (index === 2 ? value - step : value))]);

    expect(Math.abs(analytic - (plus - minus) / (2 * step))).toBeLessThan(1e-3);
    tf.dispose([logits, gradient]);
  });

  it('leaves only the result tensor', () => {
    const logits = tf.randomNormal([8, 10], 0, 1, 'float32', 1);
    const before = tf.memory().numTensors;

    const metric = proxy.compute({ input: logits, output: { logits: logits as tf.Tensor2D } });

    expect(tf.memory().numTensors).toBe(before + 1);
    metric.dispose();
    expect(tf.memory().numTensors).toBe(before);
    logits.dispose();
  });

  it.each([
    { shape: [10], fragment: 'got rank 1 with shape [10]' },
    { shape: [2, 3, 4], fragment: 'got rank 3' },
    { shape: [0, 10], fragment: 'shape [0, 10] is empty' },
    { shape: [3, 0], fragment: 'shape [3, 0] is empty' },
  ])('rejects logits of shape $shape', ({ shape, fragment }) => {
    const logits = tf.zeros(shape);
    const before = tf.memory().numTensors;

    const run = (): unknown => proxy.compute({ input: logits, output: { logits: logits as tf.Tensor2D } });

    expect(run).toThrow(InputError);
    expect(run).toThrow(fragment);
    expect(tf.memory().numTensors).toBe(before);
    logits.dispose();
  });
});
