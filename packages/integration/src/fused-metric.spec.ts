import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';

import { selectBackend, silentLogger } from '@safe-metanet/core';

import { adapterBytes, buildHarness, randomBatch, SMALL_MODELS } from './harness.js';

beforeAll(async () => {
  await selectBackend('cpu', silentLogger);
});

const CASES = (['mlp', 'cnn'] as const).flatMap((backbone) =>
  (['lora', 'linear_adapter'] as const).map((adapter) => ({ backbone, adapter })),
);

describe('metric before from the gradient pass', () => {
  it.each(CASES)('$backbone with $adapter matches a separate forward', ({ backbone, adapter }) => {
    // Two gradient steps, a learning rate and a threshold that mix accepts, rejects and expansions.
    const settings = { ...SMALL_MODELS[backbone], adapter_type: adapter, lr: 0.05, rollback_threshold: 0.002, num_steps: 2 };
    const harness = buildHarness(settings);
    const runner = harness.runner;
    const adapterVariables = (): number => [...runner.adapters.values()].reduce((count, item) => count + item.variables.length, 0);
    const before = tf.memory().numTensors - adapterVariables();
    let expansions = 0;

    for (let step = 0; step < 12; step++) {
      const batch = randomBatch(harness.backbone, 8, 1300 + step);
      // The metric of the whole model at the weights the step starts from, by a forward pass of its own.
      const expected = tf.tidy(() => runner.proxy.compute({ input: batch, output: harness.backbone.forward(batch, runner.adapters) }).dataSync()[0]);
      const record = runner.step(batch);
      expansions += record.scope_expanded ? 1 : 0;

      expect(record.metric_before).toBe(expected);
      // A layer joins the scope with a zero-delta adapter, so every attempt starts from the same metric.
      for (const attempt of record.attempt_metrics) {
        expect(attempt.metric_before).toBe(expected);
      }
      batch.dispose();
    }

    expect(expansions).toBeGreaterThan(0);
    expect(runner.summary().accepted).toBeGreaterThan(0);
    // Only the adapters of layers that joined the scope add tensors.
    expect(tf.memory().numTensors).toBe(before + adapterVariables());
    harness.dispose();
  });

  it.each(CASES)('$backbone with $adapter: NaN batch keeps weights', ({ backbone, adapter }) => {
    const harness = buildHarness({ ...SMALL_MODELS[backbone], adapter_type: adapter, lr: 0.05, disable_rollback: true });
    const good = randomBatch(harness.backbone, 8, 1400);
    harness.runner.step(good);
    const weights = adapterBytes(harness.runner);
    const bad = tf.tidy(() => good.where(tf.randomUniform(good.shape, 0, 1, 'float32', 5).greater(0.5), Number.NaN));

    const record = harness.runner.step(bad);

    expect(record.reject_reason).toBe('non_finite');
    expect(record.gradient_steps).toBe(0);
    expect(record.metric_before).toBeNull();
    expect(adapterBytes(harness.runner)).toEqual(weights);
    tf.dispose([good, bad]);
    harness.dispose();
  });
});
