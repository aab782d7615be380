import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { ConfigError, InputError, resolveConfig, selectBackend, silentLogger, type LayerSpec } from '@safe-metanet/core';

import { createLoraAdapterFactory, LoraAdapter, LoraAdapterFactory, maxLoraRank } from './lora-adapter.js';
import {
  bytesOf,
  deltaOf,
  DENSE_CASE,
  FrozenLayer,
  LAYER_CASES,
  maxAbs,
  STRIDED_CONV_CASE,
  trainAdapter,
} from './test-support/frozen-layers.js';

const DENSE: LayerSpec = { name: 'layer_1', kind: 'dense', inputSize: 6, outputSize: 5, kernelSize: 1, strides: 1, padding: 'valid' };
const CONV: LayerSpec = { name: 'layer_0', kind: 'conv2d', inputSize: 3, outputSize: 5, kernelSize: 3, strides: 2, padding: 'same' };

function loraFactory(settings: Record<string, unknown> = { lora_rank: 2 }): LoraAdapterFactory {
  return createLoraAdapterFactory(resolveConfig(settings));
}

/** Returns scale · A · B as a kernel of the layer's shape: `[inputSize, outputSize]` or `[k, k, inputSize, outputSize]`. */
function mergedKernel(adapter: LoraAdapter): tf.Tensor {
  return tf.tidy(() => {
    const { layer, rank } = adapter;
    const a = adapter.a.reshape([-1, rank]) as tf.Tensor2D;
    const b = adapter.b.reshape([rank, layer.outputSize]) as tf.Tensor2D;
    const merged = tf.matMul(a, b).mul(adapter.scale);
    if (layer.kind === 'dense') {
      return merged;
    }
    return merged.reshape([layer.kernelSize, layer.kernelSize, layer.inputSize, layer.outputSize]);
  });
}

beforeAll(async () => {
  await selectBackend('cpu', silentLogger);
});

describe.each(LAYER_CASES)('LoraAdapter on $label', (testCase) => {
  let frozen: FrozenLayer;

  beforeEach(() => {
    frozen = new FrozenLayer(testCase);
  });

  afterEach(() => {
    frozen.dispose();
  });

  it('starts equal to the frozen output bitwise', () => {
    const adapter = loraFactory().create(frozen.layer, { seed: 1 });

    const adapted = adapter.apply(frozen.input, frozen.output);

    expect(adapted.shape).toEqual(frozen.output.shape);
    expect(bytesOf(adapted)).toEqual(bytesOf(frozen.output));
    adapted.dispose();
    adapter.dispose();
  });

  it('trains only its own variables', () => {
    const adapter = loraFactory().create(frozen.layer, { seed: 1 });
    const target = tf.randomNormal(frozen.output.shape, 0, 1, 'float32', 5);

    expect(adapter.variables.map((variable) => variable.trainable)).toEqual([true, true]);
    expect(frozen.kernel.trainable).toBe(false);

    // Without a variable list, variableGrads differentiates every registered trainable variable.
    const { value, grads } = tf.variableGrads(
      () => tf.losses.meanSquaredError(target, adapter.apply(frozen.input, frozen.forward(frozen.input))) as tf.Scalar,
    );

    const names = adapter.variables.map((variable) => variable.name);
    expect(Object.keys(grads).sort()).toEqual([...names].sort());
    const gradB = grads[adapter.b.name];
    const gradA = grads[adapter.a.name];
    expect(gradB).toBeDefined();
    expect(gradA).toBeDefined();
    expect(maxAbs(gradB as tf.Tensor)).toBeGreaterThan(0);
    // While B is zero, the gradient of A is exactly zero: A only learns once B has moved.
    expect(maxAbs(gradA as tf.Tensor)).toBe(0);

    tf.dispose([value, target]);
    tf.dispose(Object.values(grads));
    adapter.dispose();
  });

  it('moves off zero after Adam steps', () => {
    const adapter = loraFactory().create(frozen.layer, { seed: 1 });

    const losses = trainAdapter(adapter, frozen, 3);
    const delta = deltaOf(adapter, frozen);

    expect(maxAbs(delta)).toBeGreaterThan(1e-3);
    expect(losses[losses.length - 1]).toBeLessThan(losses[0] ?? Number.NaN);
    delta.dispose();
    adapter.dispose();
  });

  it('matches the layer op with the merged kernel', () => {
    const adapter = loraFactory({ lora_rank: 2, lora_alpha: 3 }).create(frozen.layer, { seed: 1 });
    trainAdapter(adapter, frozen, 3);

    const actual = adapter.apply(frozen.input, frozen.output);
    const expected = tf.tidy(() => {
      const kernel = mergedKernel(adapter);
      const { layer } = adapter;
      const delta =
        layer.kind === 'dense'
          ? tf.matMul(frozen.input as tf.Tensor2D, kernel as tf.Tensor2D)
          : tf.conv2d(frozen.input as tf.Tensor4D, kernel as tf.Tensor4D, layer.strides, layer.padding);
      return frozen.output.add(delta);
    });

    // float32 sums in a different order: 1e-5 absolute on outputs of magnitude about 1.
    const difference = tf.tidy(() => actual.sub(expected));
    expect(actual.shape).toEqual(expected.shape);
    expect(maxAbs(difference)).toBeLessThan(1e-5);
    tf.dispose([actual, expected, difference]);
    adapter.dispose();
  });

  it('leaves the tensor count unchanged after dispose', () => {
    const before = tf.memory().numTensors;

    const adapter = loraFactory().create(frozen.layer, { seed: 1 });
    expect(tf.memory().numTensors).toBe(before + 2);
    const adapted = adapter.apply(frozen.input, frozen.output);
    expect(tf.memory().numTensors).toBe(before + 3);
    adapted.dispose();
    adapter.dispose();

    expect(tf.memory().numTensors).toBe(before);
  });

  it('keeps its inputs alive', () => {
    const adapter = loraFactory().create(frozen.layer, { seed: 1 });

    tf.tidy(() => adapter.apply(frozen.input, frozen.output));

    expect(frozen.input.isDisposed).toBe(false);
    expect(frozen.output.isDisposed).toBe(false);
    adapter.dispose();
  });
});

describe('LoraAdapter initial values', () => {
  it.each([DENSE, CONV])('same seed gives identical values on $kind', (layer) => {
    const first = loraFactory().create(layer, { seed: 3 });
    const second = loraFactory().create(layer, { seed: 3 });

    expect(bytesOf(first.a)).toEqual(bytesOf(second.a));
    expect(bytesOf(first.b)).toEqual(bytesOf(second.b));
    expect(maxAbs(first.b)).toBe(0);
    expect(first.a.name).not.toBe(second.a.name);
    first.dispose();
    second.dispose();
  });

  it.each([DENSE, CONV])('different seeds give different values on $kind', (layer) => {
    const first = loraFactory().create(layer, { seed: 3 });
    const second = loraFactory().create(layer, { seed: 4 });

    expect(bytesOf(first.a)).not.toEqual(bytesOf(second.a));
    first.dispose();
    second.dispose();
  });

  it.each([DENSE, CONV])('A stays within 1/sqrt(fan-in) on $kind', (layer) => {
    const adapter = loraFactory({ lora_rank: 4 }).create(layer, { seed: 3 });
    const fanIn = layer.inputSize * (layer.kind === 'dense' ? 1 : layer.kernelSize * layer.kernelSize);

    expect(adapter.a.shape).toEqual(layer.kind === 'dense' ? [6, 4] : [3, 3, 3, 4]);
    expect(adapter.b.shape).toEqual(layer.kind === 'dense' ? [4, 5] : [1, 1, 4, 5]);
    expect(maxAbs(adapter.a)).toBeLessThanOrEqual(1 / Math.sqrt(fanIn));
    expect(maxAbs(adapter.a)).toBeGreaterThan(0);
    adapter.dispose();
  });
});

describe('LoraAdapter scale', () => {
  it.each([DENSE_CASE, STRIDED_CONV_CASE])('alpha 2 * rank doubles the delta on $label', (testCase) => {
    const frozen = new FrozenLayer(testCase);
    const unit = loraFactory({ lora_rank: 2 }).create(frozen.layer, { seed: 1 });
    const doubled = loraFactory({ lora_rank: 2, lora_alpha: 4 }).create(frozen.layer, { seed: 1 });
    trainAdapter(unit, frozen, 3);
    doubled.variables.forEach((variable, index) => {
      variable.assign(unit.variables[index] as tf.Variable);
    });

    // A zero frozen output makes apply return the delta itself, free of the rounding of the addition.
    const zeros = tf.zerosLike(frozen.output);
    const unitDelta = unit.apply(frozen.input, zeros);
    const doubledDelta = doubled.apply(frozen.input, zeros);
    const difference = tf.tidy(() => doubledDelta.sub(unitDelta.mul(2)));

    expect(unit.scale).toBe(1);
    expect(doubled.scale).toBe(2);
    expect(maxAbs(unitDelta)).toBeGreaterThan(1e-3);
    expect(maxAbs(difference)).toBeLessThan(1e-6);
    tf.dispose([zeros, unitDelta, doubledDelta, difference]);
    unit.dispose();
    doubled.dispose();
    frozen.dispose();
  });

  it('defaults alpha to the rank', () => {
    const factory = loraFactory({ lora_rank: 3 });

    expect(factory.rank).toBe(3);
    expect(factory.alpha).toBe(3);
  });
});

describe('LoraAdapter rank limit', () => {
  it.each([
    { layer: DENSE, rank: 6, max: 5, dimensions: 'dense, 6 inputs, 5 outputs' },
    {
      layer: { ...CONV, inputSize: 2, outputSize: 32 },
      rank: 19,
      max: 18,
      dimensions: 'conv2d, 3x3 kernel, 2 input channels, 32 filters',
    },
    {
      layer: { ...CONV, kernelSize: 1, inputSize: 4, outputSize: 16 },
      rank: 5,
      max: 4,
      dimensions: 'conv2d, 1x1 kernel, 4 input channels, 16 filters',
    },
  ])('rejects rank $rank above $max', ({ layer, rank, max, dimensions }) => {
    const factory = loraFactory({ lora_rank: rank });
    const before = tf.memory().numTensors;

    let error: unknown;
    try {
      factory.create(layer, { seed: 0 });
    } catch (caught) {
      error = caught;
    }

    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).key).toBe('lora_rank');
    const message = (error as ConfigError).message;
    expect(message).toContain(`'lora_rank': ${rank}`);
    expect(message).toContain(`'${layer.name}'`);
    expect(message).toContain(dimensions);
    expect(message).toContain(`at most ${max}`);
    expect(maxLoraRank(layer)).toBe(max);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('accepts the maximum rank', () => {
    const layer = { ...CONV, inputSize: 2, outputSize: 32 };

    const adapter = loraFactory({ lora_rank: 18 }).create(layer, { seed: 0 });

    expect(adapter.rank).toBe(18);
    adapter.dispose();
  });
});

describe('LoraAdapter guards', () => {
  it.each([
    { settings: { loraRank: 0, loraAlpha: 1 }, key: 'lora_rank' },
    { settings: { loraRank: 2.5, loraAlpha: 1 }, key: 'lora_rank' },
    { settings: { loraRank: 2, loraAlpha: 0 }, key: 'lora_alpha' },
    { settings: { loraRank: 2, loraAlpha: Number.NaN }, key: 'lora_alpha' },
  ])('factory rejects $settings', ({ settings, key }) => {
    expect(() => new LoraAdapterFactory(settings)).toThrow(ConfigError);
    expect(() => new LoraAdapterFactory(settings)).toThrow(`'${key}'`);
  });

  it('factory defaults to the default config', () => {
    const factory = createLoraAdapterFactory();

    expect(factory.name).toBe('lora');
    expect(factory.rank).toBe(4);
    expect(factory.alpha).toBe(4);
  });

  it('rejects a non-finite seed', () => {
    expect(() => loraFactory().create(DENSE, { seed: Number.NaN })).toThrow(ConfigError);
  });

  it('rejects an unsupported layer kind', () => {
    const layer = { ...DENSE, kind: 'lstm' } as unknown as LayerSpec;

    expect(() => loraFactory().create(layer, { seed: 0 })).toThrow(ConfigError);
    expect(() => loraFactory().create(layer, { seed: 0 })).toThrow("kind 'lstm'");
  });

  it.each([
    { layer: { ...DENSE, outputSize: 0 }, field: 'outputSize is 0' },
    { layer: { ...CONV, kernelSize: 1.5 }, field: 'kernelSize is 1.5' },
    { layer: { ...CONV, padding: 'causal' } as unknown as LayerSpec, field: 'padding is "causal"' },
  ])('rejects a malformed layer spec: $field', ({ layer, field }) => {
    expect(() => loraFactory().create(layer, { seed: 0 })).toThrow(InputError);
    expect(() => loraFactory().create(layer, { seed: 0 })).toThrow(field);
  });

  it.each([
    { label: 'dense input width', layer: DENSE, input: [2, 7], output: [2, 5], message: 'expected shape [batch, 6], got [2, 7]' },
    { label: 'dense input rank', layer: DENSE, input: [2, 1, 6], output: [2, 5], message: 'got [2, 1, 6]' },
    { label: 'dense output width', layer: DENSE, input: [2, 6], output: [2, 4], message: 'expected shape [2, 5], got [2, 4]' },
    { label: 'dense output batch', layer: DENSE, input: [2, 6], output: [3, 5], message: 'expected shape [2, 5], got [3, 5]' },
    { label: 'conv channels', layer: CONV, input: [1, 7, 7, 2], output: [1, 4, 4, 5], message: '[batch, height, width, 3]' },
    { label: 'conv output size', layer: CONV, input: [1, 7, 7, 3], output: [1, 7, 7, 5], message: 'expected shape [1, 4, 4, 5]' },
    {
      label: 'image below kernel',
      layer: { ...CONV, padding: 'valid' as const },
      input: [1, 2, 2, 3],
      output: [1, 1, 1, 5],
      message: 'smaller than the 3x3 kernel',
    },
  ])('rejects a wrong $label', ({ layer, input, output, message }) => {
    const adapter = loraFactory().create(layer, { seed: 0 });
    const inputTensor = tf.zeros(input);
    const outputTensor = tf.zeros(output);
    const before = tf.memory().numTensors;

    expect(() => adapter.apply(inputTensor, outputTensor)).toThrow(InputError);
    expect(() => adapter.apply(inputTensor, outputTensor)).toThrow(message);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([inputTensor, outputTensor]);
    adapter.dispose();
  });
});
