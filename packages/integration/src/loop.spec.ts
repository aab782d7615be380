import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';

import { selectBackend, silentLogger } from '@safe-metanet/core';

import { adapterBytes, buildHarness, bytesOf, randomBatch, SMALL_MODELS } from './harness.js';

const ADAPTER_TYPES = ['lora', 'linear_adapter'] as const;
const BACKBONES = ['mlp', 'cnn'] as const;

const CASES = BACKBONES.flatMap((backbone) => ADAPTER_TYPES.map((adapter) => ({ backbone, adapter })));

beforeAll(async () => {
  await selectBackend('cpu', silentLogger);
});

describe('adapted model at start', () => {
  it.each(CASES)('$backbone with $adapter equals the frozen model', ({ backbone, adapter }) => {
    // Every layer in scope, so that every adapter is injected before the comparison.
    const harness = buildHarness({ ...SMALL_MODELS[backbone], adapter_type: adapter, rollback_threshold: 1e6 });
    const batch = randomBatch(harness.backbone, 6, 1);
    harness.runner.step(batch);
    expect(harness.runner.scope).toHaveLength(harness.backbone.layers.length);

    const adapted = harness.runner.predict(batch);
    const frozen = harness.runner.predictSource(batch);

    expect(bytesOf([adapted])).toEqual(bytesOf([frozen]));
    tf.dispose([batch, adapted, frozen]);
    harness.dispose();
  });
});

describe('trainable parameters', () => {
  it.each(CASES)('$backbone with $adapter trains only adapters', ({ backbone, adapter }) => {
    const harness = buildHarness({ ...SMALL_MODELS[backbone], adapter_type: adapter, rollback_threshold: 1e6 });
    const batch = randomBatch(harness.backbone, 4, 2);
    harness.runner.step(batch);

    const adapterVariables = new Set([...harness.runner.adapters.values()].flatMap((item) => item.variables));
    const trainable = Object.values(tf.engine().registeredVariables).filter((variable) => variable.trainable);
    const backboneWeights = harness.backbone.weights();

    expect(trainable.length).toBeGreaterThan(0);
    for (const variable of trainable) {
      expect(adapterVariables.has(variable)).toBe(true);
    }
    for (const weight of backboneWeights) {
      expect(weight.trainable).toBe(false);
    }
    batch.dispose();
    harness.dispose();
  });

  it.each(CASES)('$backbone with $adapter keeps backbone bitwise over 100 steps', ({ backbone, adapter }) => {
    // The bottleneck adapter starts from a zero up-projection, so a few gradient steps per batch are needed to move it.
    const harness = buildHarness({ ...SMALL_MODELS[backbone], adapter_type: adapter, lr: 0.01, num_steps: 2 });
    const before = bytesOf(harness.backbone.weights());
    const adapterStart = adapterBytes(harness.runner);

    let accepted = 0;
    for (let step = 0; step < 100; step++) {
      const batch = randomBatch(harness.backbone, 8, 100 + step);
      accepted += harness.runner.step(batch).action === 'accept' ? 1 : 0;
      batch.dispose();
    }

    expect(accepted).toBeGreaterThan(0);
    expect(adapterBytes(harness.runner).slice(0, adapterStart.length)).not.toEqual(adapterStart);
    expect(bytesOf(harness.backbone.weights())).toEqual(before);
    harness.dispose();
  });
});

describe('rollback', () => {
  it.each(CASES)('$backbone with $adapter restores bitwise on reject', ({ backbone, adapter }) => {
    const harness = buildHarness({ ...SMALL_MODELS[backbone], adapter_type: adapter, lr: 0.05, disable_scope_expansion: true });
    // Accepted steps first, so that the restored values are not the initial ones.
    for (let step = 0; step < 5; step++) {
      const batch = randomBatch(harness.backbone, 8, 200 + step);
      harness.runner.step(batch);
      batch.dispose();
    }

    const before = adapterBytes(harness.runner);
    const weightsBefore = bytesOf(harness.backbone.weights());
    const reject = buildRejectingStep(harness.runner);
    const batch = randomBatch(harness.backbone, 8, 300);
    const record = reject(batch);

    expect(record.action).toBe('reject');
    expect(record.reject_reason).toBe('no_improvement');
    expect(record.gradient_steps).toBe(1);
    expect(adapterBytes(harness.runner)).toEqual(before);
    expect(bytesOf(harness.backbone.weights())).toEqual(weightsBefore);
    batch.dispose();
    harness.dispose();
  });

  it('threshold 1e6 expands through the whole schedule', () => {
    const harness = buildHarness({ ...SMALL_MODELS.mlp, rollback_threshold: 1e6 });
    const weightsBefore = bytesOf(harness.backbone.weights());
    const batch = randomBatch(harness.backbone, 8, 3);

    const record = harness.runner.step(batch);
    // Adapters injected during the batch start at their initial values, which the restore brings back.
    const adaptersAfterFirst = adapterBytes(harness.runner);
    const second = harness.runner.step(batch);

    expect(record.action).toBe('reject');
    expect(record.reject_reason).toBe('no_improvement');
    expect(record.attempts).toBe(3);
    expect(record.scope).toEqual(['layer_2', 'layer_1', 'layer_0']);
    expect(record.scope_expanded).toBe(true);
    expect(record.attempt_metrics.map((attempt) => attempt.scope.length)).toEqual([1, 2, 3]);
    expect(record.attempt_metrics.every((attempt) => !attempt.accepted)).toBe(true);
    expect(second.scope_expanded).toBe(false);
    expect(second.attempts).toBe(1);
    expect(adapterBytes(harness.runner)).toEqual(adaptersAfterFirst);
    expect(bytesOf(harness.backbone.weights())).toEqual(weightsBefore);
    batch.dispose();
    harness.dispose();
  });
});

describe('ablations', () => {
  it('disable_rollback accepts every batch without expanding', () => {
    const harness = buildHarness({ ...SMALL_MODELS.mlp, rollback_threshold: 1e6, disable_rollback: true });

    for (let step = 0; step < 5; step++) {
      const batch = randomBatch(harness.backbone, 8, 400 + step);
      const record = harness.runner.step(batch);
      batch.dispose();

      expect(record.action).toBe('accept');
      expect(record.attempts).toBe(1);
      expect(record.scope).toEqual(['layer_2']);
      expect(record.scope_expanded).toBe(false);
    }
    expect(harness.runner.policy.name).toBe('always_accept');
    harness.dispose();
  });

  it('disable_scope_expansion rejects without growing', () => {
    const harness = buildHarness({ ...SMALL_MODELS.mlp, rollback_threshold: 1e6, disable_scope_expansion: true });
    const before = adapterBytes(harness.runner);
    const batch = randomBatch(harness.backbone, 8, 5);

    const record = harness.runner.step(batch);

    expect(record.action).toBe('reject');
    expect(record.attempts).toBe(1);
    expect(record.scope).toEqual(['layer_2']);
    expect(record.scope_expanded).toBe(false);
    expect(adapterBytes(harness.runner)).toEqual(before);
    batch.dispose();
    harness.dispose();
  });
});

describe('non-finite input', () => {
  it.each(CASES)('$backbone with $adapter rejects a NaN batch', ({ backbone, adapter }) => {
    const harness = buildHarness({ ...SMALL_MODELS[backbone], adapter_type: adapter });
    const before = adapterBytes(harness.runner);
    const weightsBefore = bytesOf(harness.backbone.weights());
    const clean = randomBatch(harness.backbone, 4, 6);
    const batch = tf.tidy(() => clean.add(tf.scalar(Number.NaN)));

    const record = harness.runner.step(batch);

    expect(record.action).toBe('reject');
    expect(record.reject_reason).toBe('non_finite');
    expect(record.metric_before).toBeNull();
    expect(record.gradient_steps).toBe(0);
    expect(record.scope_expanded).toBe(false);
    expect(adapterBytes(harness.runner)).toEqual(before);
    expect(bytesOf(harness.backbone.weights())).toEqual(weightsBefore);
    tf.dispose([clean, batch]);
    harness.dispose();
  });
});

describe('tensor memory', () => {
  const MEMORY_CASES = CASES.flatMap((item) => [
    // Threshold 1e6 rejects every attempt: the whole schedule, snapshots and restores, every step.
    { ...item, threshold: 1e6, outcome: 'reject' },
    // Threshold -1e6 accepts every attempt: the update path.
    { ...item, threshold: -1e6, outcome: 'accept' },
  ]);

  it.each(MEMORY_CASES)('$backbone with $adapter is flat over 200 steps ($outcome)', ({ backbone, adapter, threshold, outcome }) => {
    const harness = buildHarness({ ...SMALL_MODELS[backbone], adapter_type: adapter, rollback_threshold: threshold });
    const batches = [0, 1, 2, 3].map((index) => randomBatch(harness.backbone, 4, 500 + index));
    const labels = [0, 1, 2, 3];
    // The first step may inject adapters for the whole schedule; count after it.
    harness.runner.step(batches[0] as tf.Tensor, labels);
    const start = tf.memory().numTensors;

    for (let step = 0; step < 200; step++) {
      const record = harness.runner.step(batches[step % batches.length] as tf.Tensor, labels);
      expect(record.action).toBe(outcome);
    }

    expect(tf.memory().numTensors).toBe(start);
    tf.dispose(batches);
    harness.dispose();
  });
});

function buildRejectingStep(runner: ReturnType<typeof buildHarness>['runner']) {
  // A policy that rejects everything, swapped in for one step, shows that a rejected attempt restores.
  const original = runner.policy.decide.bind(runner.policy);
  return (batch: tf.Tensor) => {
    (runner.policy as { decide: typeof original }).decide = () => ({ accept: false, reason: 'no_improvement' });
    try {
      return runner.step(batch);
    } finally {
      (runner.policy as { decide: typeof original }).decide = original;
    }
  };
}
