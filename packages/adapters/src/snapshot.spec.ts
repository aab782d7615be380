import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { InputError, resolveConfig, selectBackend, silentLogger, type Adapter } from '@safe-metanet/core';

import { createBottleneckAdapterFactory } from './bottleneck-adapter.js';
import { createLoraAdapterFactory } from './lora-adapter.js';
import { restoreAdapters, snapshotAdapters } from './snapshot.js';
import { bytesOf, DENSE_CASE, FrozenLayer, STRIDED_CONV_CASE, trainAdapter } from './test-support/frozen-layers.js';

const CONFIG = resolveConfig({ lora_rank: 2, adapter_bottleneck: 3 });

beforeAll(async () => {
  await selectBackend('cpu', silentLogger);
});

describe('snapshotAdapters and restoreAdapters', () => {
  let dense: FrozenLayer;
  let conv: FrozenLayer;
  let adapters: Adapter[];

  beforeEach(() => {
    dense = new FrozenLayer(DENSE_CASE);
    conv = new FrozenLayer(STRIDED_CONV_CASE);
    adapters = [
      createLoraAdapterFactory(CONFIG).create(dense.layer, { seed: 1 }),
      createBottleneckAdapterFactory(CONFIG).create(conv.layer, { seed: 2 }),
    ];
  });

  afterEach(() => {
    for (const adapter of adapters) {
      adapter.dispose();
    }
    dense.dispose();
    conv.dispose();
  });

  function trainBoth(steps: number): void {
    trainAdapter(adapters[0] as Adapter, dense, steps);
    trainAdapter(adapters[1] as Adapter, conv, steps);
  }

  function variableBytes(): Uint8Array[] {
    return adapters.flatMap((adapter) => adapter.variables.map((variable) => bytesOf(variable)));
  }

  it('restores trained values bitwise', () => {
    trainBoth(2);
    const saved = variableBytes();
    const snapshot = snapshotAdapters(adapters);

    trainBoth(2);
    const moved = variableBytes();
    restoreAdapters(snapshot);

    expect(moved).not.toEqual(saved);
    expect(variableBytes()).toEqual(saved);
    snapshot.dispose();
  });

  it('restores again after more training', () => {
    trainBoth(1);
    const saved = variableBytes();
    const snapshot = snapshotAdapters(adapters);

    trainBoth(1);
    restoreAdapters(snapshot);
    trainBoth(1);
    restoreAdapters(snapshot);

    expect(variableBytes()).toEqual(saved);
    snapshot.dispose();
  });

  it('copies every adapter variable in order', () => {
    const snapshot = snapshotAdapters(new Map(adapters.map((adapter) => [adapter.layerName, adapter])).values());

    const expected = adapters.flatMap((adapter) => adapter.variables);
    expect(snapshot.variables).toEqual(expected);
    expect(snapshot.values.map((value) => value.shape)).toEqual(expected.map((variable) => variable.shape));
    snapshot.dispose();
  });

  it('owns one tensor per variable until dispose', () => {
    trainBoth(1);
    const before = tf.memory().numTensors;
    const variableCount = adapters.flatMap((adapter) => adapter.variables).length;

    const snapshot = snapshotAdapters(adapters);
    expect(tf.memory().numTensors).toBe(before + variableCount);
    restoreAdapters(snapshot);
    expect(tf.memory().numTensors).toBe(before + variableCount);
    snapshot.dispose();
    snapshot.dispose();

    expect(snapshot.isDisposed).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('keeps restored values after the snapshot is disposed', () => {
    trainBoth(1);
    const saved = variableBytes();
    const snapshot = snapshotAdapters(adapters);
    trainBoth(1);

    restoreAdapters(snapshot);
    snapshot.dispose();

    expect(variableBytes()).toEqual(saved);
  });

  it('rejects a disposed snapshot', () => {
    const snapshot = snapshotAdapters(adapters);
    snapshot.dispose();

    expect(() => restoreAdapters(snapshot)).toThrow(InputError);
    expect(() => restoreAdapters(snapshot)).toThrow('disposed snapshot');
  });

  it('rejects a disposed variable', () => {
    const extra = createLoraAdapterFactory(CONFIG).create(dense.layer, { seed: 5 });
    const snapshot = snapshotAdapters([extra]);
    extra.dispose();

    expect(() => restoreAdapters(snapshot)).toThrow(InputError);
    expect(() => restoreAdapters(snapshot)).toThrow(`'${extra.a.name}'`);
    snapshot.dispose();
  });

  it('accepts no adapters', () => {
    const snapshot = snapshotAdapters([]);

    restoreAdapters(snapshot);

    expect(snapshot.variables).toEqual([]);
    snapshot.dispose();
  });
});
