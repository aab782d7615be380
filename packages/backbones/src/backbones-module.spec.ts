import 'reflect-metadata';

import * as tf from '@tensorflow/tfjs';
import { Container, ContainerModule } from 'inversify';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';

import {
  BackboneId,
  ConfigError,
  ConfigId,
  PluginRegistrationId,
  resolveConfig,
  selectBackend,
  silentLogger,
  type Backbone,
} from '@safe-metanet/core';

import { BackboneOptionsId } from './backbone-settings.js';
import { backbonesModule } from './backbones-module.js';
import { CnnBackbone } from './cnn-backbone.js';
import { createBackbone } from './create-backbone.js';
import { MlpBackbone } from './mlp-backbone.js';

const created: Backbone[] = [];
function keep<T extends Backbone>(backbone: T): T {
  created.push(backbone);
  return backbone;
}

function containerFor(config: Record<string, unknown>, ...modules: ContainerModule[]): Container {
  const container = new Container();
  container.bind(ConfigId).toConstantValue(resolveConfig(config));
  container.load(backbonesModule, ...modules);
  return container;
}

beforeAll(async () => {
  await selectBackend('cpu', silentLogger);
});

afterEach(() => {
  created.splice(0).forEach((backbone) => backbone.dispose());
});

describe('backbonesModule', () => {
  it('registers mlp and cnn', () => {
    const container = containerFor({});

    const registrations = container.getAll(PluginRegistrationId);

    expect(registrations).toEqual([
      { kind: 'backbone', name: 'mlp' },
      { kind: 'backbone', name: 'cnn' },
    ]);
  });

  it('builds mlp from the config', () => {
    const container = containerFor({ hidden_dim: 12, num_layers: 4, input_dim: 6, output_dim: 3 });

    const backbone = keep(container.get(BackboneId, { name: 'mlp' }));

    expect(backbone).toBeInstanceOf(MlpBackbone);
    expect(backbone.layers.map((layer) => [layer.name, layer.inputSize, layer.outputSize])).toEqual([
      ['layer_0', 6, 12],
      ['layer_1', 12, 12],
      ['layer_2', 12, 12],
      ['layer_3', 12, 3],
    ]);
    expect(backbone.hasDecoder).toBe(false);
  });

  it('builds cnn from the config', () => {
    const container = containerFor({ backbone: 'cnn', hidden_dim: 8, image_size: 28, image_channels: 1 });

    const backbone = keep(container.get(BackboneId, { name: 'cnn' }));

    expect(backbone).toBeInstanceOf(CnnBackbone);
    expect(backbone.inputShape).toEqual([28, 28, 1]);
    expect(backbone.layers.at(-1)?.inputSize).toBe(7 * 7 * 8);
  });

  it('bound options add a decoder', () => {
    const decoderOptions = new ContainerModule((options) => {
      options.bind(BackboneOptionsId).toConstantValue({ decoder: true });
    });
    const container = containerFor({}, decoderOptions);

    const backbone = keep(container.get(BackboneId, { name: 'mlp' }));

    expect(backbone.hasDecoder).toBe(true);
  });

  it('uses the config seed', () => {
    const first = keep(containerFor({ seed: 5 }).get(BackboneId, { name: 'mlp' }));
    const second = keep(createBackbone(resolveConfig({ seed: 5 })));
    const third = keep(createBackbone(resolveConfig({ seed: 6 })));

    const difference = (left: Backbone, right: Backbone): number =>
      tf.tidy(() => tf.sub(left.weights()[0] as tf.Tensor, right.weights()[0] as tf.Tensor).abs().max().dataSync()[0] ?? Number.NaN);

    expect(difference(first, second)).toBe(0);
    expect(difference(first, third)).toBeGreaterThan(0);
  });
});

describe('createBackbone', () => {
  it.each([
    { backbone: 'mlp', type: MlpBackbone },
    { backbone: 'cnn', type: CnnBackbone },
  ])('builds $backbone', ({ backbone, type }) => {
    const built = keep(createBackbone(resolveConfig({ backbone }), { decoder: true }));

    expect(built).toBeInstanceOf(type);
    expect(built.kind).toBe(backbone);
    expect(built.hasDecoder).toBe(true);
  });

  it('rejects an unknown kind', () => {
    const run = (): unknown => createBackbone(resolveConfig({ backbone: 'resnet' }));

    expect(run).toThrow(ConfigError);
    expect(run).toThrow("Invalid value for 'backbone': 'resnet'; allowed: mlp, cnn.");
  });
});
