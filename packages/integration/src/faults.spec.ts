import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';

import { PluginFailureError, selectBackend, silentLogger, type ProxyInputs, type SafeMetaNet } from '@safe-metanet/core';

import { adapterBytes, buildHarness, randomBatch, SMALL_MODELS, type Harness } from './harness.js';

/*
 * Faults in the middle of an attempt: a plugin that throws after the gradient step, and metrics or
 * weights that become non-finite. The adapters must end bitwise as they were before the attempt.
 */

const ADAPTER_TYPES = ['lora', 'linear_adapter'] as const;
const BACKBONES = ['mlp', 'cnn'] as const;

const CASES = BACKBONES.flatMap((backbone) => ADAPTER_TYPES.map((adapter) => ({ backbone, adapter })));

// Proxy calls in the first attempt of a batch with num_steps 1: the loss of the gradient step, which
// also gives the metric before, then the metric after. The second call therefore runs on the updated adapters.
const CALL_AFTER_UPDATE = 2;

beforeAll(async () => {
  await selectBackend('cpu', silentLogger);
});

/** Builds a runner and streams a few batches, so that the adapters hold trained values, not their initial ones. */
function warmedUp(backbone: 'mlp' | 'cnn', adapter: string, settings: Record<string, unknown> = {}): Harness {
  const harness = buildHarness({ ...SMALL_MODELS[backbone], adapter_type: adapter, lr: 0.05, ...settings });
  for (let step = 0; step < 3; step++) {
    const batch = randomBatch(harness.backbone, 8, 300 + step);
    harness.runner.step(batch);
    batch.dispose();
  }
  return harness;
}

/** Replaces the runner's proxy `compute` so that its `failingCall`-th call (counted from 1) runs `fault` instead. */
function injectProxyFault(runner: SafeMetaNet, failingCall: number, fault: (inputs: ProxyInputs) => tf.Scalar): () => void {
  const proxy = runner.proxy;
  const original = proxy.compute.bind(proxy);
  let calls = 0;
  proxy.compute = (inputs: ProxyInputs): tf.Scalar => {
    calls++;
    return calls === failingCall ? fault(inputs) : original(inputs);
  };
  return () => {
    proxy.compute = original;
  };
}

function catchError(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error('expected the action to throw, but it returned');
}

describe('plugin failing mid-attempt', () => {
  it.each(CASES)('$backbone with $adapter: proxy error restores', ({ backbone, adapter }) => {
    const harness = warmedUp(backbone, adapter);
    const batch = randomBatch(harness.backbone, 8, 400);
    const before = adapterBytes(harness.runner);
    const tensorsBefore = tf.memory().numTensors;
    let duringFault: Uint8Array[] = [];
    injectProxyFault(harness.runner, CALL_AFTER_UPDATE, () => {
      duringFault = adapterBytes(harness.runner);
      throw new Error('proxy failed on purpose');
    });

    const error = catchError(() => harness.runner.step(batch));

    expect(error).toBeInstanceOf(PluginFailureError);
    expect((error as PluginFailureError).plugin).toBe('entropy');
    expect((error as Error).message).toBe("The proxy plugin 'entropy' failed: proxy failed on purpose");
    // The gradient step had changed the adapters when the proxy threw, and the runner put them back.
    expect(duringFault).not.toEqual(before);
    expect(adapterBytes(harness.runner)).toEqual(before);
    expect(harness.runner.records).toHaveLength(3);
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    batch.dispose();
    harness.dispose();
  });

  it.each(CASES)('$backbone with $adapter: policy error restores', ({ backbone, adapter }) => {
    const harness = warmedUp(backbone, adapter);
    const batch = randomBatch(harness.backbone, 8, 401);
    const before = adapterBytes(harness.runner);
    const tensorsBefore = tf.memory().numTensors;
    let duringFault: Uint8Array[] = [];
    const policy = harness.runner.policy;
    policy.decide = () => {
      duringFault = adapterBytes(harness.runner);
      throw new Error('policy failed on purpose');
    };

    const error = catchError(() => harness.runner.step(batch));

    expect(error).toBeInstanceOf(PluginFailureError);
    expect((error as PluginFailureError).plugin).toBe('threshold');
    expect((error as Error).message).toBe("The policy plugin 'threshold' failed: policy failed on purpose");
    expect(duringFault).not.toEqual(before);
    expect(adapterBytes(harness.runner)).toEqual(before);
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    batch.dispose();
    harness.dispose();
  });
});

describe('non-finite values mid-attempt', () => {
  it.each(CASES)('$backbone with $adapter: NaN metric after update', ({ backbone, adapter }) => {
    // A smaller step than in the other tests, so that the batch after the fault improves the metric on every model.
    const harness = warmedUp(backbone, adapter, { lr: 0.01 });
    const batch = randomBatch(harness.backbone, 8, 402);
    const before = adapterBytes(harness.runner);
    const scopeBefore = harness.runner.scope;
    const tensorsBefore = tf.memory().numTensors;
    const removeFault = injectProxyFault(harness.runner, CALL_AFTER_UPDATE, () => tf.scalar(Number.NaN));

    const record = harness.runner.step(batch);

    expect(record.action).toBe('reject');
    expect(record.reject_reason).toBe('non_finite');
    expect(record.metric_before).not.toBeNull();
    expect(record.metric_after).toBeNull();
    expect(record.attempts).toBe(1);
    expect(record.gradient_steps).toBe(1);
    expect(record.scope_expanded).toBe(false);
    expect(harness.runner.scope).toEqual(scopeBefore);
    expect(adapterBytes(harness.runner)).toEqual(before);
    expect(tf.memory().numTensors).toBe(tensorsBefore);

    // The next batch runs normally: its update is kept and changes the adapters.
    removeFault();
    const next = harness.runner.step(batch);
    expect(next.action).toBe('accept');
    expect(next.reject_reason).toBeNull();
    expect(next.attempts).toBe(1);
    expect(adapterBytes(harness.runner)).not.toEqual(before);
    batch.dispose();
    harness.dispose();
  });

  it.each(CASES)('$backbone with $adapter: lr 1e30 rejects as non_finite', ({ backbone, adapter }) => {
    // Adam moves each parameter by about lr per step, so after the first step the adapters hold values
    // near 1e30. The second step's trust-region term sums their squares, which overflows float32.
    const harness = buildHarness({ ...SMALL_MODELS[backbone], adapter_type: adapter, lr: 1e30, num_steps: 2 });
    const before = adapterBytes(harness.runner);
    const tensorsBefore = tf.memory().numTensors;

    for (let step = 0; step < 3; step++) {
      const batch = randomBatch(harness.backbone, 8, 500 + step);
      const record = harness.runner.step(batch);
      batch.dispose();

      expect(record.action, `step ${step}`).toBe('reject');
      expect(record.reject_reason, `step ${step}`).toBe('non_finite');
      expect(record.metric_before, `step ${step}`).not.toBeNull();
      expect(record.scope_expanded, `step ${step}`).toBe(false);
      expect(adapterBytes(harness.runner), `step ${step}`).toEqual(before);
    }
    expect(harness.runner.summary().non_finite).toBe(3);
    expect(harness.runner.scope).toEqual([harness.runner.schedule.order[0]]);
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    harness.dispose();
  });
});
