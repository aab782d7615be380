import 'reflect-metadata';

import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';

import { ConfigError, InputError, selectBackend, silentLogger } from '@safe-metanet/core';

import type { CnnSettings } from './backbone-settings.js';
import { CnnBackbone, createCnnBackbone } from './cnn-backbone.js';
import { maxAbsDifference, weightByName } from './test-support/tensors.js';

// 12x12 images: layer_0 pools to 6x6, layer_1 does not pool (3x3 would be below 4), so both paths run.
const SETTINGS: CnnSettings = { hiddenDim: 4, numLayers: 3, imageSize: 12, imageChannels: 2, outputDim: 5, seed: 1 };

const created: CnnBackbone[] = [];
function cnn(settings: Partial<CnnSettings> = {}): CnnBackbone {
  const backbone = createCnnBackbone({ ...SETTINGS, ...settings });
  created.push(backbone);
  return backbone;
}

beforeAll(async () => {
  await selectBackend('cpu', silentLogger);
});

afterEach(() => {
  created.splice(0).forEach((backbone) => backbone.dispose());
});

describe('CnnBackbone layers', () => {
  it('names conv layers then a dense layer', () => {
    const backbone = cnn();

    expect(backbone.kind).toBe('cnn');
    expect(backbone.inputShape).toEqual([12, 12, 2]);
    expect(backbone.numClasses).toBe(5);
    expect(backbone.layers).toEqual([
      { name: 'layer_0', kind: 'conv2d', inputSize: 2, outputSize: 4, kernelSize: 3, strides: 1, padding: 'same' },
      { name: 'layer_1', kind: 'conv2d', inputSize: 4, outputSize: 4, kernelSize: 3, strides: 1, padding: 'same' },
      { name: 'layer_2', kind: 'dense', inputSize: 6 * 6 * 4, outputSize: 5, kernelSize: 1, strides: 1, padding: 'valid' },
    ]);
  });

  it.each([
    { imageSize: 28, numLayers: 3, features: 7 * 7 * 4 },
    { imageSize: 28, numLayers: 4, features: 7 * 7 * 4 },
    { imageSize: 28, numLayers: 2, features: 14 * 14 * 4 },
    { imageSize: 8, numLayers: 3, features: 4 * 4 * 4 },
    { imageSize: 7, numLayers: 3, features: 7 * 7 * 4 },
    { imageSize: 9, numLayers: 2, features: 4 * 4 * 4 },
  ])('image $imageSize with $numLayers layers flattens $features features', ({ imageSize, numLayers, features }) => {
    const backbone = cnn({ imageSize, numLayers });

    expect(backbone.layers.at(-1)?.inputSize).toBe(features);
    expect(backbone.layers.map((layer) => layer.name)).toEqual(
      Array.from({ length: numLayers }, (_, index) => `layer_${index}`),
    );
  });

  it('weights have conv and dense shapes', () => {
    const backbone = cnn();

    const shapes = backbone.namedWeights().map((weight) => [weight.name, weight.variable.shape]);

    expect(shapes).toEqual([
      ['layer_0/kernel', [3, 3, 2, 4]],
      ['layer_0/bias', [4]],
      ['layer_1/kernel', [3, 3, 4, 4]],
      ['layer_1/bias', [4]],
      ['layer_2/kernel', [144, 5]],
      ['layer_2/bias', [5]],
    ]);
  });

  it('conv kernels stay within the He bound', () => {
    const backbone = cnn();
    const limit = Math.sqrt(6 / (3 * 3 * 4));

    const values = weightByName(backbone, 'layer_1/kernel').dataSync();
    const largest = Math.max(...Array.from(values, Math.abs));

    expect(largest).toBeLessThanOrEqual(limit);
    expect(largest).toBeGreaterThan(limit / 2);
  });
});

describe('CnnBackbone forward', () => {
  it.each([{ batchSize: 1 }, { batchSize: 8 }])('logits shape for batch $batchSize', ({ batchSize }) => {
    const backbone = cnn();
    const input = tf.randomUniform([batchSize, 12, 12, 2], 0, 1, 'float32', 5);

    const output = backbone.forward(input, new Map());

    expect(output.logits.shape).toEqual([batchSize, 5]);
    tf.dispose([input, output.logits]);
  });

  it('equals a tf.layers model with the same weights', () => {
    const backbone = cnn();
    const input = tf.randomUniform([3, 12, 12, 2], -1, 1, 'float32', 6);
    const model = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [12, 12, 2], filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }),
        tf.layers.maxPooling2d({ poolSize: 2, strides: 2 }),
        tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 5 }),
      ],
    });
    model.setWeights([...backbone.weights()]);

    const expected = model.predict(input) as tf.Tensor;
    const output = backbone.forward(input, new Map());

    expect(maxAbsDifference(output.logits, expected)).toBeLessThan(1e-5);
    tf.dispose([input, expected, output.logits]);
    model.dispose();
  });

  it('equals a hand-written computation', () => {
    const backbone = cnn();
    const input = tf.randomUniform([2, 12, 12, 2], -1, 1, 'float32', 7);
    const weight = (name: string): tf.Tensor => weightByName(backbone, name);

    const expected = tf.tidy(() => {
      const conv0 = tf.relu(tf.add(tf.conv2d(input as tf.Tensor4D, weight('layer_0/kernel') as tf.Tensor4D, 1, 'same'), weight('layer_0/bias')));
      const pooled = tf.maxPool(conv0 as tf.Tensor4D, 2, 2, 'valid');
      const conv1 = tf.relu(tf.add(tf.conv2d(pooled, weight('layer_1/kernel') as tf.Tensor4D, 1, 'same'), weight('layer_1/bias')));
      const flat = conv1.reshape([2, 144]) as tf.Tensor2D;
      return tf.add(tf.matMul(flat, weight('layer_2/kernel') as tf.Tensor2D), weight('layer_2/bias'));
    });
    const output = backbone.forward(input, new Map());

    expect(maxAbsDifference(output.logits, expected)).toBeLessThan(1e-6);
    tf.dispose([input, expected, output.logits]);
  });

  it.each([
    { shape: [2, 12, 12], fragment: 'got rank 3 with shape [2, 12, 12]' },
    { shape: [2, 12, 12, 3], fragment: 'axis 3 differs' },
    { shape: [2, 11, 12, 2], fragment: 'axis 1 differs' },
  ])('rejects input of shape $shape', ({ shape, fragment }) => {
    const backbone = cnn();
    const input = tf.zeros(shape);

    expect(() => backbone.forward(input, new Map())).toThrow(InputError);
    expect(() => backbone.forward(input, new Map())).toThrow(fragment);
    expect(() => backbone.forward(input, new Map())).toThrow('expected shape [batch, 12, 12, 2]');
    input.dispose();
  });
});

describe('CnnBackbone settings', () => {
  it.each([
    { settings: { numLayers: 1 }, key: 'num_layers' },
    { settings: { imageSize: 0 }, key: 'image_size' },
    { settings: { imageChannels: 0 }, key: 'image_channels' },
    { settings: { hiddenDim: 1.5 }, key: 'hidden_dim' },
  ])('rejects invalid $key', ({ settings, key }) => {
    expect(() => createCnnBackbone({ ...SETTINGS, ...settings })).toThrow(ConfigError);
    expect(() => createCnnBackbone({ ...SETTINGS, ...settings })).toThrow(`Invalid value for '${key}'`);
  });
});
