import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';

import { InputError, selectBackend, silentLogger } from '@safe-metanet/core';

import { InfoMaxProxy } from './infomax-proxy.js';

const TOLERANCE = 1e-5;

function metricOf(logits: number[][]): number {
  const proxy = new InfoMaxProxy();
  return tf.tidy(() => {
    const tensor = tf.tensor2d(logits);
    return proxy.compute({ input: tensor, output: { logits: tensor } }).dataSync()[0] as number;
  });
}

// Reference from softmax probabilities with plain arithmetic.
function referenceOf(logits: number[][]): number {
  const probabilities = logits.map((row) => {
    const top = Math.max(...row);
    const exps = row.map((value) => Math.exp(value - top));
    const total = exps.reduce((sum, value) => sum + value, 0);
    return exps.map((value) => value / total);
  });
  const sampleEntropy = probabilities.map((row) => -row.reduce((sum, p) => sum + (p > 0 ? p * Math.log(p) : 0), 0));
  const meanEntropy = sampleEntropy.reduce((sum, value) => sum + value, 0) / probabilities.length;
  const classes = probabilities[0]?.length ?? 0;
  let marginal = 0;
  for (let column = 0; column < classes; column++) {
    const mean = probabilities.reduce((sum, row) => sum + (row[column] ?? 0), 0) / probabilities.length;
    marginal -= mean > 0 ? mean * Math.log(mean) : 0;
  }
  return meanEntropy - marginal;
}

beforeAll(async () => {
  await selectBackend('cpu', silentLogger);
});

describe('InfoMaxProxy', () => {
  it('matches a hand computation', () => {
    const logits = [
      [2, -1, 0.5, 0],
      [0.1, 0.2, 3, -2],
      [-1, 4, 0, 1],
    ];

    expect(Math.abs(metricOf(logits) - referenceOf(logits))).toBeLessThan(TOLERANCE);
  });

  it('is lowest for confident balanced predictions', () => {
    const balanced = [
      [20, 0, 0],
      [0, 20, 0],
      [0, 0, 20],
    ];

    expect(Math.abs(metricOf(balanced) + Math.log(3))).toBeLessThan(TOLERANCE);
  });

  it('penalises collapse onto one class', () => {
    const collapsed = [
      [20, 0, 0],
      [20, 0, 0],
      [20, 0, 0],
    ];
    const balanced = [
      [20, 0, 0],
      [0, 20, 0],
      [0, 0, 20],
    ];

    expect(metricOf(collapsed)).toBeGreaterThan(metricOf(balanced) + 1);
    expect(Math.abs(metricOf(collapsed))).toBeLessThan(1e-4);
  });

  it('keeps gradients finite for large logits', () => {
    const proxy = new InfoMaxProxy();
    const logits = tf.tensor2d([
      [1e4, -1e4, 0],
      [-1e4, 1e4, 0],
    ]);
    const gradient = tf.grad((x: tf.Tensor) => proxy.compute({ input: x, output: { logits: x as tf.Tensor2D } }))(logits);

    expect(Array.from(gradient.dataSync()).every(Number.isFinite)).toBe(true);
    tf.dispose([logits, gradient]);
  });

  it('rejects empty logits', () => {
    const proxy = new InfoMaxProxy();
    const logits = tf.zeros([0, 3]) as tf.Tensor2D;

    expect(() => proxy.compute({ input: logits, output: { logits } })).toThrow(InputError);
    logits.dispose();
  });

  it('leaves no tensors behind', () => {
    const before = tf.memory().numTensors;

    metricOf([
      [1, 2],
      [3, 4],
    ]);

    expect(tf.memory().numTensors).toBe(before);
  });
});
