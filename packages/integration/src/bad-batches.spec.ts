import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';

import { InputError, selectBackend, silentLogger } from '@safe-metanet/core';

import { adapterBytes, buildHarness, SMALL_MODELS } from './harness.js';

beforeAll(async () => {
  await selectBackend('cpu', silentLogger);
});

describe('runner.step input checks', () => {
  it.each([
    { backbone: 'mlp' as const, shape: [4, 12, 1], labels: undefined, message: 'expected rank 2 with shape [batch, 12] for the mlp backbone, got rank 3' },
    { backbone: 'mlp' as const, shape: [4, 11], labels: undefined, message: 'expected shape [batch, 12], got [4, 11]; axis 1 differs' },
    { backbone: 'cnn' as const, shape: [4, 8, 8], labels: undefined, message: 'expected rank 4 with shape [batch, 8, 8, 1] for the cnn backbone' },
    { backbone: 'cnn' as const, shape: [4, 8, 8, 3], labels: undefined, message: 'axis 3 differs' },
    { backbone: 'mlp' as const, shape: [0, 12], labels: undefined, message: 'it is empty (shape [0, 12]); pass at least one sample' },
    { backbone: 'mlp' as const, shape: [4, 12], labels: [1, 2, 3], message: '3 labels for a batch of 4 samples; pass one label per sample' },
  ])('$backbone rejects shape $shape', ({ backbone, shape, labels, message }) => {
    const harness = buildHarness({ ...SMALL_MODELS[backbone] });
    const before = adapterBytes(harness.runner);
    const batch = tf.zeros(shape);
    const tensorsBefore = tf.memory().numTensors;

    expect(() => harness.runner.step(batch, labels)).toThrow(InputError);
    expect(() => harness.runner.step(batch, labels)).toThrow(message);
    expect(harness.runner.records).toHaveLength(0);
    expect(adapterBytes(harness.runner)).toEqual(before);
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    batch.dispose();
    harness.dispose();
  });

  it.each([
    { value: Number.POSITIVE_INFINITY, label: 'infinite' },
    { value: Number.NaN, label: 'NaN' },
  ])('$label input is a non_finite rejection', ({ value }) => {
    const harness = buildHarness({ ...SMALL_MODELS.mlp });
    const before = adapterBytes(harness.runner);
    const batch = tf.fill([4, 12], value);

    const record = harness.runner.step(batch);

    expect(record.reject_reason).toBe('non_finite');
    expect(adapterBytes(harness.runner)).toEqual(before);
    batch.dispose();
    harness.dispose();
  });
});
