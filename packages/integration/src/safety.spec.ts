import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';

import { ConfigError, describeRecord, selectBackend, silentLogger, type RunRecord } from '@safe-metanet/core';

import { adapterBytes, buildHarness, randomBatch, SMALL_MODELS } from './harness.js';

beforeAll(async () => {
  await selectBackend('cpu', silentLogger);
});

function stepMany(settings: Record<string, unknown>, steps: number) {
  const harness = buildHarness({ ...SMALL_MODELS.mlp, ...settings });
  const records = [];
  for (let step = 0; step < steps; step++) {
    const batch = randomBatch(harness.backbone, 8, 700 + step);
    records.push(harness.runner.step(batch));
    batch.dispose();
  }
  return { harness, records };
}

describe('reset modes', () => {
  it('episodic resets before every later batch', () => {
    const { harness, records } = stepMany({ reset: 'episodic', rollback_threshold: 1e6 }, 4);

    expect(records.map((record) => record.reset)).toEqual([false, true, true, true]);
    expect(records.map((record) => describeRecord(record, 'entropy').startsWith(`step ${record.step} (after a reset) |`))).toEqual([false, true, true, true]);
    // Threshold 1e6 expands the scope to every layer on each batch, and the reset shrinks it back first.
    expect(records.map((record) => record.scope_expanded)).toEqual([true, true, true, true]);
    expect(harness.runner.summary().resets).toBe(3);
    harness.dispose();
  });

  it('periodic resets every reset_every batches', () => {
    const { harness, records } = stepMany({ reset: 'periodic', reset_every: 3, lr: 0.05 }, 7);

    expect(records.map((record) => record.reset)).toEqual([false, false, false, true, false, false, true]);
    harness.dispose();
  });

  it('reset restores zero-delta adapters', () => {
    const { harness } = stepMany({ lr: 0.05, disable_rollback: true }, 3);
    const batch = randomBatch(harness.backbone, 8, 800);
    const trained = harness.runner.predict(batch);
    const frozen = harness.runner.predictSource(batch);
    expect(Array.from(trained.dataSync())).not.toEqual(Array.from(frozen.dataSync()));

    harness.runner.resetAdapters();
    const reset = harness.runner.predict(batch);

    expect(Array.from(reset.dataSync())).toEqual(Array.from(frozen.dataSync()));
    expect(harness.runner.scope).toEqual(['layer_2']);
    tf.dispose([batch, trained, frozen, reset]);
    harness.dispose();
  });

  it.each([
    { threshold: 1, resets: 5 },
    { threshold: 0, resets: 0 },
  ])('on_collapse with threshold $threshold', ({ threshold, resets }) => {
    // A threshold of 1 flags any running mean short of uniform as collapse; 0 flags none.
    const { harness } = stepMany({ reset: 'on_collapse', collapse_threshold: threshold, lr: 0.05 }, 6);

    expect(harness.runner.summary().resets).toBe(resets);
    harness.dispose();
  });

  it.each([
    { maxKl: 0, resets: [false, true, true, true, true] },
    { maxKl: 1e9, resets: [false, false, false, false, false] },
  ])('on_drift with max KL $maxKl', ({ maxKl, resets }) => {
    // Every update is kept, so with a bound of 0 the adapters always drift, and the next batch starts afresh.
    const settings = { reset: 'on_drift', anchor_max_kl: maxKl, anchor_min_agreement: 0, disable_rollback: true, lr: 0.05 };
    const { harness, records } = stepMany(settings, 5);

    expect(records.map((record) => record.reset)).toEqual(resets);
    harness.dispose();
  });

  it('on_drift keeps predictions within bounds', () => {
    const bounds = { anchor_min_agreement: 0.75, anchor_max_kl: 0.05 };
    const settings = { ...bounds, reset: 'on_drift', policy: 'threshold+source_anchor', rollback_threshold: -1e6, lr: 0.2 };
    const harness = buildHarness({ ...SMALL_MODELS.mlp, ...settings });
    const before = tf.memory().numTensors;
    let resets = 0;
    for (let step = 0; step < 12; step++) {
      // Two unlike inputs in turn, so that an update kept on one can drift too far on the other.
      const batch = tf.tidy(() => randomBatch(harness.backbone, 8, 900 + step).mul(step % 2 === 0 ? 1 : 4));
      const record = harness.runner.step(batch);
      resets += record.reset ? 1 : 0;
      const [adapted, frozen] = [harness.runner.predict(batch), harness.runner.predictSource(batch)];
      const kl = tf.tidy(() => {
        const [p, q] = [tf.logSoftmax(frozen), tf.logSoftmax(adapted)];
        return p.exp().mul(p.sub(q)).sum(1).mean().dataSync()[0] as number;
      });
      const agreement = tf.tidy(() => adapted.argMax(1).equal(frozen.argMax(1)).cast('float32').mean().dataSync()[0] as number);
      expect(agreement).toBeGreaterThanOrEqual(bounds.anchor_min_agreement);
      expect(kl).toBeLessThanOrEqual(bounds.anchor_max_kl);
      tf.dispose([batch, adapted, frozen]);
    }
    // The test is only meaningful when updates were kept and later dropped.
    expect(harness.runner.summary().accepted).toBeGreaterThan(0);
    expect(resets).toBeGreaterThan(0);
    expect(tf.memory().numTensors).toBe(before);
    harness.dispose();
  });
});

describe('held-out gate', () => {
  it('records held-out metrics and judges on them', () => {
    const { harness, records } = stepMany({ policy: 'held_out', holdout_fraction: 0.25, lr: 0.05 }, 5);

    for (const record of records) {
      for (const attempt of record.attempt_metrics) {
        expect(typeof attempt.held_out_before).toBe('number');
        expect(typeof attempt.held_out_after).toBe('number');
        const improved = (attempt.held_out_after as number) < (attempt.held_out_before as number);
        expect(attempt.accepted).toBe(improved);
      }
    }
    harness.dispose();
  });

  it('batch of one is judged whole', () => {
    const harness = buildHarness({ ...SMALL_MODELS.mlp, policy: 'held_out', holdout_fraction: 0.25 });
    const batch = randomBatch(harness.backbone, 1, 900);

    const record = harness.runner.step(batch);

    expect(record.attempt_metrics[0]?.held_out_before).toBeUndefined();
    batch.dispose();
    harness.dispose();
  });

  it('needs a holdout fraction', () => {
    expect(() => buildHarness({ ...SMALL_MODELS.mlp, policy: 'held_out' })).toThrow(ConfigError);
  });
});

describe('source-anchored gate', () => {
  it('rejects updates that change predictions', () => {
    // A large step moves predictions on many samples; agreement 1 tolerates none of them.
    const { harness, records } = stepMany(
      { policy: ['threshold', 'source_anchor'], anchor_min_agreement: 1, anchor_max_kl: 1e-9, lr: 1, disable_scope_expansion: true },
      3,
    );
    const start = buildHarness({ ...SMALL_MODELS.mlp });

    expect(harness.runner.policy.name).toBe('threshold+source_anchor');
    expect(records.every((record) => record.reject_reason === 'source_divergence')).toBe(true);
    expect(adapterBytes(harness.runner)).toEqual(adapterBytes(start.runner));
    start.dispose();
    harness.dispose();
  });

  it('accepts small updates', () => {
    const { harness, records } = stepMany({ policy: ['threshold', 'source_anchor'], anchor_min_agreement: 0.5, anchor_max_kl: 10 }, 3);

    expect(records.every((record) => record.action === 'accept')).toBe(true);
    harness.dispose();
  });
});

describe('sample memory', () => {
  const settings = { ...SMALL_MODELS.mlp, proxy: 'infomax', lr: 0.05, rollback_threshold: 0.002 };

  function metricsOf(record: RunRecord): unknown[] {
    return [record.action, record.metric_before, record.metric_after, record.attempts, record.scope];
  }

  it('trains on the memory', () => {
    // With room for both batches, the memory contains the first batch and then the second, so the second step
    // trains on the same samples as a runner without memory stepping on the two batches joined.
    const withMemory = buildHarness({ ...settings, memory_size: 16 });
    const plain = buildHarness(settings);
    const [first, second] = [randomBatch(withMemory.backbone, 8, 710), randomBatch(withMemory.backbone, 8, 711)];
    const joined = tf.concat([first, second]);

    const memoryRecords = [withMemory.runner.step(first), withMemory.runner.step(second)];
    const plainRecords = [plain.runner.step(first), plain.runner.step(joined)];

    expect(memoryRecords.map(metricsOf)).toEqual(plainRecords.map(metricsOf));
    expect(adapterBytes(withMemory.runner)).toEqual(adapterBytes(plain.runner));
    // The record still describes the batch, not the memory.
    expect(memoryRecords[1]?.batch_size).toBe(8);
    tf.dispose([first, second, joined]);
    withMemory.dispose();
    plain.dispose();
  });

  it('keeps live tensors flat once full', () => {
    const harness = buildHarness({ ...settings, memory_size: 12 });
    const sizes: number[] = [];
    for (let step = 0; step < 6; step++) {
      const batch = randomBatch(harness.backbone, 8, 720 + step);
      harness.runner.step(batch, [0, 1, 2, 3, 4, 0, 1, 2]);
      batch.dispose();
      sizes.push(tf.memory().numTensors);
    }

    expect(new Set(sizes.slice(1)).size).toBe(1);
    harness.dispose();
  });

  it('continues from a checkpoint', () => {
    const original = buildHarness({ ...settings, memory_size: 12 });
    const batches = [730, 731, 732, 733].map((seed) => randomBatch(original.backbone, 8, seed));
    for (const batch of batches.slice(0, 3)) {
      original.runner.step(batch);
    }
    const state = original.runner.exportState();
    expect(state.memory?.shape).toEqual([12, 12]);
    const restored = buildHarness({ ...settings, memory_size: 12 });
    restored.runner.importState(state);

    const next = [original.runner.step(batches[3]!), restored.runner.step(batches[3]!)];

    expect(metricsOf(next[1]!)).toEqual(metricsOf(next[0]!));
    expect(adapterBytes(restored.runner)).toEqual(adapterBytes(original.runner));
    tf.dispose(batches);
    original.dispose();
    restored.dispose();
  });

  it.each([
    {
      name: 'an unexpected memory',
      saved: 12,
      current: 0,
      message: 'it contains a sample memory, but this runner has memory_size 0; set memory_size as the checkpointed run did.',
    },
    {
      name: 'a missing memory',
      saved: 0,
      current: 12,
      message: 'it has no sample memory after 1 batches, but this runner has memory_size 12. A run with a memory always saves it, so the checkpoint is damaged or comes from a run with memory_size 0; start again, or set memory_size as that run did.',
    },
  ])('rejects a checkpoint with $name', ({ saved, current, message }) => {
    const original = buildHarness({ ...settings, memory_size: saved });
    const batch = randomBatch(original.backbone, 8, 740);
    original.runner.step(batch);
    const restored = buildHarness({ ...settings, memory_size: current });

    expect(() => restored.runner.importState(original.runner.exportState())).toThrow(`Invalid checkpoint: ${message}`);
    batch.dispose();
    original.dispose();
    restored.dispose();
  });

  it('warns once about a small memory', () => {
    const warnings: string[] = [];
    const logger = { ...silentLogger, warn: (message: string) => warnings.push(message) };
    const harness = buildHarness({ ...settings, memory_size: 4 }, logger);
    for (let step = 0; step < 3; step++) {
      const batch = randomBatch(harness.backbone, 8, 760 + step);
      harness.runner.step(batch);
      batch.dispose();
    }

    expect(warnings).toEqual([
      'memory_size 4 is smaller than the batch of 8 samples, so the adapters train on 4 samples of it; set memory_size to at least the batch size.',
    ]);
    harness.dispose();
  });

  it.each([-1, 1.5, 'many', 5000])('rejects memory_size %s', (value) => {
    expect(() => buildHarness({ ...settings, memory_size: value })).toThrow(ConfigError);
  });
});
