import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { adaptersModule } from '@safe-metanet/adapters';
import { createBackbone } from '@safe-metanet/backbones';
import { buildSafeMetaNet, PluginFailureError, resolveConfig, SafeMetaNet, selectBackend, silentLogger, type Backbone, type ProxyMetric, type RunRecord } from '@safe-metanet/core';
import { policiesModule } from '@safe-metanet/policies';
import { proxiesModule } from '@safe-metanet/proxies';

import { adapterBytes, randomBatch, SMALL_MODELS } from './harness.js';

beforeAll(async () => {
  await selectBackend('cpu', silentLogger);
});

// The same backbone without traceFrozen and forwardFrom, so that the loop runs every layer each time.
function withoutTrace(backbone: Backbone): Backbone {
  return {
    kind: backbone.kind,
    layers: backbone.layers,
    inputShape: backbone.inputShape,
    numClasses: backbone.numClasses,
    hasDecoder: backbone.hasDecoder,
    forward: (input, adapters) => backbone.forward(input, adapters),
    weights: () => backbone.weights(),
    dispose: () => backbone.dispose(),
  };
}

function withoutDuration(records: readonly RunRecord[]): Omit<RunRecord, 'duration_ms'>[] {
  return records.map(({ duration_ms: _duration, ...rest }) => rest);
}

const CASES = (['mlp', 'cnn'] as const).flatMap((backbone) =>
  (['lora', 'linear_adapter'] as const).map((adapter) => ({ backbone, adapter })),
);

// Runs 15 batches through a runner whose backbone traces the frozen activations and through one whose
// backbone cannot, and checks that the records and adapter weights are the same.
function expectIdenticalRuns(
  backbone: 'mlp' | 'cnn',
  adapter: 'lora' | 'linear_adapter',
  extra: Record<string, unknown> = {},
  tracesPerBatch: number | null = 1,
): number {
  // Threshold and learning rate chosen to mix accepts, rejects and expansions into lower layers.
  const settings = { ...SMALL_MODELS[backbone], adapter_type: adapter, lr: 0.05, rollback_threshold: 0.002, num_steps: 2, memory_size: 0, ...extra };
  const config = resolveConfig(settings);
  const modules = [adaptersModule, proxiesModule, policiesModule];
  const cachedBackbone = createBackbone(config, { decoder: true });
  const plainBackbone = createBackbone(config, { decoder: true });
  const cached = buildSafeMetaNet({ config, modules, backbone: cachedBackbone });
  const plain = buildSafeMetaNet({ config, modules, backbone: withoutTrace(plainBackbone) });
  let traceCalls = 0;
  const traceFrozen = cachedBackbone.traceFrozen.bind(cachedBackbone);
  cachedBackbone.traceFrozen = (input) => {
    traceCalls++;
    return traceFrozen(input);
  };
  const before = tf.memory().numTensors;

  for (let step = 0; step < 15; step++) {
    const batch = randomBatch(cachedBackbone, 8, 1000 + step);
    const labels = [0, 1, 2, 3, 4, 0, 1, 2];
    cached.step(batch, labels);
    plain.step(batch, labels);
    batch.dispose();
  }

  // The records score the batch, so every step traces it, and a held-out split traces its two parts too.
  if (tracesPerBatch !== null) {
    expect(traceCalls).toBe(15 * tracesPerBatch);
  }
  expect(cached.records.some((record) => record.scope_expanded)).toBe(true);
  expect(cached.records.some((record) => record.action === 'accept')).toBe(true);
  expect(withoutDuration(cached.records)).toEqual(withoutDuration(plain.records));
  expect(adapterBytes(cached)).toEqual(adapterBytes(plain));
  // Adapters injected by expansion and the two runners' memories are the only new tensors.
  const injected = [...cached.adapters.values(), ...plain.adapters.values()].reduce((total, item) => total + item.variables.length, 0);
  const initial = 2 * (cached.adapters.get('layer_2')?.variables.length ?? 0);
  const memories = config.memorySize > 0 ? 2 : 0;
  expect(tf.memory().numTensors - before).toBe(injected - initial + memories);
  cached.dispose();
  plain.dispose();
  cachedBackbone.dispose();
  plainBackbone.dispose();
  return traceCalls;
}

describe('frozen activations computed once per batch', () => {
  it.each(CASES)('$backbone with $adapter gives identical records', ({ backbone, adapter }) => {
    expectIdenticalRuns(backbone, adapter);
  });

  it('held-out split matches too', () => {
    // The train part, the held-out part and the whole batch each get a trace.
    expectIdenticalRuns('cnn', 'lora', { policy: ['held_out', 'source_anchor'], holdout_fraction: 0.25, rollback_threshold: 0 }, 3);
  });

  it.each(['mlp', 'cnn'] as const)('sample memory matches too (%s)', (backbone) => {
    const traceCalls = expectIdenticalRuns(backbone, 'lora', { memory_size: 12 }, null);

    // Every batch is traced. The memory is traced only on the first step and after the scope grows downwards,
    // because otherwise its activations come from the batches' traces.
    expect(traceCalls).toBeGreaterThanOrEqual(16);
    expect(traceCalls).toBeLessThan(30);
  });

  it.each([
    { proxy: 'infomax', decoded: false },
    { proxy: 'reconstruction', decoded: true },
  ])('runs the decoder for $proxy: $decoded', ({ proxy, decoded }) => {
    const config = resolveConfig({ ...SMALL_MODELS.mlp, proxy, lr: 0.05 });
    const backbone = createBackbone(config, { decoder: true });
    const runner = buildSafeMetaNet({ config, modules: [adaptersModule, proxiesModule, policiesModule], backbone });
    const reconstructions: boolean[] = [];
    const forwardFrom = backbone.forwardFrom.bind(backbone);
    backbone.forwardFrom = (...args: Parameters<typeof forwardFrom>) => {
      const output = forwardFrom(...args);
      reconstructions.push(output.reconstruction !== undefined);
      return output;
    };
    const batch = randomBatch(backbone, 8, 1200);

    runner.step(batch, [0, 1, 2, 3, 4, 0, 1, 2]);

    // The proxy's passes decode only when the proxy reads the reconstruction; the passes for logits never do.
    expect(reconstructions.length).toBeGreaterThan(2);
    expect(reconstructions.some((value) => value)).toBe(decoded);
    expect(reconstructions.filter((value) => !value).length).toBeGreaterThan(0);
    batch.dispose();
    runner.dispose();
    backbone.dispose();
  });

  it.each([true, false])('names the fix for an undeclared decoder (backbone decoder: %s)', (decoder) => {
    const config = resolveConfig({ ...SMALL_MODELS.mlp });
    const backbone = createBackbone(config, { decoder });
    const built = buildSafeMetaNet({ config, modules: [adaptersModule, proxiesModule, policiesModule], backbone });
    const proxy: ProxyMetric = {
      name: 'undeclared',
      requiresDecoder: false,
      compute: ({ output }) => tf.mean(tf.square(output.reconstruction as tf.Tensor)),
    };
    const parts = { config, backbone, adapterFactory: built.adapterFactory, policy: built.policy, schedule: built.schedule, logger: silentLogger };
    const runner = new SafeMetaNet({ ...parts, proxy });
    const batch = randomBatch(backbone, 8, 1300);

    expect(() => runner.step(batch)).toThrow(PluginFailureError);
    expect(() => runner.step(batch)).toThrow(
      "The proxy plugin 'undeclared' read output.reconstruction, but it declares requiresDecoder: false, so the loop did not request one; set requiresDecoder to true, which also needs a backbone with a decoder head.",
    );
    batch.dispose();
    runner.dispose();
    built.dispose();
    backbone.dispose();
  });

  it('reconstruction proxy matches too', () => {
    const config = resolveConfig({ ...SMALL_MODELS.cnn, proxy: 'reconstruction', lr: 0.05, rollback_threshold: 1e6 });
    const modules = [adaptersModule, proxiesModule, policiesModule];
    const cachedBackbone = createBackbone(config, { decoder: true });
    const plainBackbone = createBackbone(config, { decoder: true });
    const cached = buildSafeMetaNet({ config, modules, backbone: cachedBackbone });
    const plain = buildSafeMetaNet({ config, modules, backbone: withoutTrace(plainBackbone) });
    const batch = tf.randomUniform([6, ...cachedBackbone.inputShape], 0, 1, 'float32', 5);

    cached.step(batch);
    plain.step(batch);

    expect(withoutDuration(cached.records)).toEqual(withoutDuration(plain.records));
    batch.dispose();
    cached.dispose();
    plain.dispose();
    cachedBackbone.dispose();
    plainBackbone.dispose();
  });
});

describe('frozen activations on wasm', () => {
  beforeAll(async () => {
    await selectBackend('wasm', silentLogger);
  });

  afterAll(async () => {
    await selectBackend('cpu', silentLogger);
  });

  it.each(CASES)('$backbone with $adapter gives identical records', ({ backbone, adapter }) => {
    expect(tf.getBackend()).toBe('wasm');
    expectIdenticalRuns(backbone, adapter);
  });

  it.each(['mlp', 'cnn'] as const)('%s with a sample memory gives identical records', (backbone) => {
    expect(tf.getBackend()).toBe('wasm');
    // The memory's activations, copied from the traces of the batches, equal a forward pass on the memory.
    expectIdenticalRuns(backbone, 'lora', { memory_size: 12 }, null);
  });
});
