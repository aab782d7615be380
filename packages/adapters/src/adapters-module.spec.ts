import 'reflect-metadata';

import * as tf from '@tensorflow/tfjs';
import { Container } from 'inversify';
import { beforeAll, describe, expect, it } from 'vitest';

import {
  AdapterFactoryId,
  ConfigId,
  defaultConfig,
  PluginError,
  PluginRegistrationId,
  resolveConfig,
  resolvePlugin,
  selectBackend,
  silentLogger,
  type SafeMetaNetConfig,
} from '@safe-metanet/core';

import { adaptersModule } from './adapters-module.js';
import { BottleneckAdapterFactory } from './bottleneck-adapter.js';
import { LoraAdapterFactory } from './lora-adapter.js';

function containerFor(config: SafeMetaNetConfig): Container {
  const container = new Container();
  container.bind(ConfigId).toConstantValue(config);
  container.load(adaptersModule);
  return container;
}

beforeAll(async () => {
  await selectBackend('cpu', silentLogger);
});

describe('adaptersModule', () => {
  it('binds lora', () => {
    const container = containerFor(defaultConfig());

    const factory = container.get(AdapterFactoryId, { name: 'lora' });

    expect(factory).toBeInstanceOf(LoraAdapterFactory);
    expect(factory.name).toBe('lora');
    expect((factory as LoraAdapterFactory).rank).toBe(4);
    expect((factory as LoraAdapterFactory).alpha).toBe(4);
  });

  it('binds linear_adapter', () => {
    const container = containerFor(defaultConfig());

    const factory = container.get(AdapterFactoryId, { name: 'linear_adapter' });

    expect(factory).toBeInstanceOf(BottleneckAdapterFactory);
    expect(factory.name).toBe('linear_adapter');
    expect((factory as BottleneckAdapterFactory).bottleneck).toBe(8);
  });

  it('injects the config values', () => {
    const container = containerFor(resolveConfig({ lora_rank: 2, lora_alpha: 6, adapter_bottleneck: 3 }));

    const lora = container.get(AdapterFactoryId, { name: 'lora' }) as LoraAdapterFactory;
    const bottleneck = container.get(AdapterFactoryId, { name: 'linear_adapter' }) as BottleneckAdapterFactory;

    expect(lora.rank).toBe(2);
    expect(lora.alpha).toBe(6);
    expect(bottleneck.bottleneck).toBe(3);
  });

  it('registers both names', () => {
    const container = containerFor(defaultConfig());

    const registrations = container.getAll(PluginRegistrationId);

    expect(registrations).toEqual([
      { kind: 'adapter', name: 'lora' },
      { kind: 'adapter', name: 'linear_adapter' },
    ]);
  });

  it('resolves one instance per name', () => {
    const container = containerFor(defaultConfig());

    const first = resolvePlugin(container, 'adapter', 'lora');
    const second = resolvePlugin(container, 'adapter', 'lora');

    expect(second).toBe(first);
  });

  it('lists both names for an unknown one', () => {
    const container = containerFor(defaultConfig());

    expect(() => resolvePlugin(container, 'adapter', 'prefix')).toThrow(PluginError);
    expect(() => resolvePlugin(container, 'adapter', 'prefix')).toThrow('lora, linear_adapter');
  });

  it('builds working adapters from resolved factories', () => {
    const container = containerFor(defaultConfig());
    const layer = { name: 'layer_2', kind: 'dense', inputSize: 8, outputSize: 10, kernelSize: 1, strides: 1, padding: 'valid' } as const;
    const input = tf.ones([2, 8]);
    const frozen = tf.ones([2, 10]);
    const before = tf.memory().numTensors;

    for (const name of ['lora', 'linear_adapter']) {
      const adapter = container.get(AdapterFactoryId, { name }).create(layer, { seed: 0 });
      const adapted = adapter.apply(input, frozen);

      expect(adapter.type).toBe(name);
      expect(adapter.layerName).toBe('layer_2');
      expect(Array.from(adapted.dataSync())).toEqual(Array.from(frozen.dataSync()));
      adapted.dispose();
      adapter.dispose();
    }

    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([input, frozen]);
  });
});
