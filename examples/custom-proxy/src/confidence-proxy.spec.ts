import 'reflect-metadata';

import * as tf from '@tensorflow/tfjs';
import { Container } from 'inversify';
import { beforeAll, describe, expect, it } from 'vitest';

import { InputError, ProxyMetricId, selectBackend, silentLogger } from '@safe-metanet/core';

import { ConfidenceProxy } from './confidence-proxy.js';
import plugin, { containerModule } from './index.js';

const TOLERANCE = 1e-6;

function confidenceOf(logits: number[][]): number {
  const proxy = new ConfidenceProxy();
  const input = tf.tensor2d(logits);
  const metric = proxy.compute({ input, output: { logits: input } });
  const value = metric.dataSync()[0] ?? Number.NaN;
  tf.dispose([input, metric]);
  return value;
}

beforeAll(async () => {
  await selectBackend('cpu', silentLogger);
});

describe('ConfidenceProxy', () => {
  it('uniform logits give 1 - 1/classes', () => {
    expect(confidenceOf([[0, 0, 0, 0]])).toBeCloseTo(0.75, 6);
  });

  it('confident logits give about 0', () => {
    expect(confidenceOf([[50, 0, 0], [0, 0, 50]])).toBeLessThan(TOLERANCE);
  });

  it('matches softmax by hand', () => {
    const rows = [[1, 2, 3], [0.5, -1, 0]];
    const expected =
      1 -
      rows
        .map((row) => {
          const exps = row.map(Math.exp);
          const total = exps.reduce((sum, value) => sum + value, 0);
          return Math.max(...exps) / total;
        })
        .reduce((sum, value) => sum + value, 0) /
        rows.length;
    expect(Math.abs(confidenceOf(rows) - expected)).toBeLessThan(TOLERANCE);
  });

  it('gradient is finite and tensors are freed', () => {
    const proxy = new ConfidenceProxy();
    const logits = tf.variable(tf.tensor2d([[1e4, -1e4, 0], [0.1, 0.2, 0.3]]));
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() => proxy.compute({ input: logits, output: { logits } }), [logits]);
    const gradient = grads[logits.name] as tf.Tensor;
    expect(Array.from(gradient.dataSync()).every(Number.isFinite)).toBe(true);
    expect(Number.isFinite(value.dataSync()[0])).toBe(true);
    tf.dispose([value, gradient]);
    expect(tf.memory().numTensors).toBe(before);
    logits.dispose();
  });

  it('rejects logits that are not [batch, classes]', () => {
    const proxy = new ConfidenceProxy();
    const flat = tf.zeros([4]);
    expect(() => proxy.compute({ input: flat, output: { logits: flat as tf.Tensor2D } })).toThrow(InputError);
    expect(() => proxy.compute({ input: flat, output: { logits: flat as tf.Tensor2D } })).toThrow(
      'Invalid logits for the confidence proxy: expected a non-empty shape [batch, classes], got [4].',
    );
    flat.dispose();
  });
});

describe('containerModule', () => {
  it('binds confidence as a proxy', () => {
    expect(plugin).toBe(containerModule);
    const container = new Container();
    container.load(containerModule);
    const proxy = container.get(ProxyMetricId, { name: 'confidence' });
    expect(proxy).toBeInstanceOf(ConfidenceProxy);
  });
});
