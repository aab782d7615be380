import 'reflect-metadata';

import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';

import { ConfigError, InputError, selectBackend, silentLogger } from '@safe-metanet/core';

import type { MlpSettings } from './backbone-settings.js';
import { createMlpBackbone, MlpBackbone } from './mlp-backbone.js';
import { maxAbsDifference, weightByName } from './test-support/tensors.js';

const SETTINGS: MlpSettings = { hiddenDim: 16, numLayers: 3, inputDim: 8, outputDim: 4, seed: 1 };

const created: MlpBackbone[] = [];
function mlp(settings: Partial<MlpSettings> = {}): MlpBackbone {
  const backbone = createMlpBackbone({ ...SETTINGS, ...settings });
  created.push(backbone);
  return backbone;
}

beforeAll(async () => {
  await selectBackend('cpu', silentLogger);
});

afterEach(() => {
  created.splice(0).forEach((backbone) => backbone.dispose());
});

describe('MlpBackbone layers', () => {
  it('names layer_0 to layer_2 with dense specs', () => {
    const backbone = mlp();

    expect(backbone.kind).toBe('mlp');
    expect(backbone.inputShape).toEqual([8]);
    expect(backbone.numClasses).toBe(4);
    expect(backbone.hasDecoder).toBe(false);
    expect(backbone.layers).toEqual([
      { name: 'layer_0', kind: 'dense', inputSize: 8, outputSize: 16, kernelSize: 1, strides: 1, padding: 'valid' },
      { name: 'layer_1', kind: 'dense', inputSize: 16, outputSize: 16, kernelSize: 1, strides: 1, padding: 'valid' },
      { name: 'layer_2', kind: 'dense', inputSize: 16, outputSize: 4, kernelSize: 1, strides: 1, padding: 'valid' },
    ]);
  });

  it('two layers go straight to the classes', () => {
    const backbone = mlp({ numLayers: 2 });

    expect(backbone.layers.map((layer) => [layer.name, layer.inputSize, layer.outputSize])).toEqual([
      ['layer_0', 8, 16],
      ['layer_1', 16, 4],
    ]);
  });

  it('weights are kernel and bias per layer', () => {
    const backbone = mlp();

    const shapes = backbone.namedWeights().map((weight) => [weight.name, weight.variable.shape]);

    expect(shapes).toEqual([
      ['layer_0/kernel', [8, 16]],
      ['layer_0/bias', [16]],
      ['layer_1/kernel', [16, 16]],
      ['layer_1/bias', [16]],
      ['layer_2/kernel', [16, 4]],
      ['layer_2/bias', [4]],
    ]);
    expect(backbone.weights()).toEqual(backbone.namedWeights().map((weight) => weight.variable));
  });

  it('kernels stay within the He and Glorot bounds', () => {
    const backbone = mlp();
    const bounds = [
      { name: 'layer_0/kernel', limit: Math.sqrt(6 / 8) },
      { name: 'layer_1/kernel', limit: Math.sqrt(6 / 16) },
      { name: 'layer_2/kernel', limit: Math.sqrt(6 / (16 + 4)) },
    ];

    for (const { name, limit } of bounds) {
      const values = weightByName(backbone, name).dataSync();
      const largest = Math.max(...Array.from(values, Math.abs));
      expect(largest, name).toBeLessThanOrEqual(limit);
      // 128 or more uniform draws almost surely reach half the bound; all-zero kernels would not.
      expect(largest, name).toBeGreaterThan(limit / 2);
    }
    const bias = weightByName(backbone, 'layer_0/bias').dataSync();
    expect(Array.from(bias)).toEqual(new Array(16).fill(0));
  });
});

describe('MlpBackbone forward', () => {
  it.each([{ batchSize: 1 }, { batchSize: 8 }])('logits shape for batch $batchSize', ({ batchSize }) => {
    const backbone = mlp();
    const input = tf.randomNormal([batchSize, 8], 0, 1, 'float32', 3);

    const output = backbone.forward(input, new Map());

    expect(output.logits.shape).toEqual([batchSize, 4]);
    expect(output.reconstruction).toBeUndefined();
    tf.dispose([input, output.logits]);
  });

  it('equals a hand-written computation', () => {
    const backbone = mlp();
    const input = tf.randomNormal([5, 8], 0, 1, 'float32', 4);
    const weight = (name: string): tf.Tensor2D => weightByName(backbone, name) as tf.Tensor2D;

    const expected = tf.tidy(() => {
      const h0 = tf.relu(tf.add(tf.matMul(input, weight('layer_0/kernel')), weight('layer_0/bias')));
      const h1 = tf.relu(tf.add(tf.matMul(h0, weight('layer_1/kernel')), weight('layer_1/bias')));
      return tf.add(tf.matMul(h1, weight('layer_2/kernel')), weight('layer_2/bias'));
    });
    const output = backbone.forward(input, new Map());

    expect(maxAbsDifference(output.logits, expected)).toBeLessThan(1e-6);
    tf.dispose([input, expected, output.logits]);
  });

  it('accepts int32 input as float', () => {
    const backbone = mlp();
    const input = tf.ones([2, 8], 'int32');
    const floatInput = tf.ones([2, 8], 'float32');

    const fromInt = backbone.forward(input, new Map());
    const fromFloat = backbone.forward(floatInput, new Map());

    expect(maxAbsDifference(fromInt.logits, fromFloat.logits)).toBe(0);
    tf.dispose([input, floatInput, fromInt.logits, fromFloat.logits]);
  });

  it.each([
    { shape: [8], fragment: 'got rank 1 with shape [8]' },
    { shape: [2, 7], fragment: 'got [2, 7]; axis 1 differs' },
    { shape: [2, 8, 1], fragment: 'got rank 3' },
    { shape: [0, 8], fragment: 'the batch is empty' },
  ])('rejects input of shape $shape', ({ shape, fragment }) => {
    const backbone = mlp();
    const input = tf.zeros(shape);
    const before = tf.memory().numTensors;

    expect(() => backbone.forward(input, new Map())).toThrow(InputError);
    expect(() => backbone.forward(input, new Map())).toThrow(fragment);
    expect(tf.memory().numTensors).toBe(before);
    input.dispose();
  });
});

describe('MlpBackbone settings', () => {
  it.each([
    { settings: { numLayers: 1 }, key: 'num_layers' },
    { settings: { numLayers: 2.5 }, key: 'num_layers' },
    { settings: { hiddenDim: 0 }, key: 'hidden_dim' },
    { settings: { inputDim: -1 }, key: 'input_dim' },
    { settings: { outputDim: 1 }, key: 'output_dim' },
    { settings: { seed: -1 }, key: 'seed' },
  ])('rejects invalid $key', ({ settings, key }) => {
    const before = tf.memory().numTensors;
    let caught: unknown;
    try {
      createMlpBackbone({ ...SETTINGS, ...settings });
    } catch (error) {
      caught = error;
    }

    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).key).toBe(key);
    expect((caught as ConfigError).message).toContain(`Invalid value for '${key}'`);
    expect(tf.memory().numTensors).toBe(before);
  });
});
