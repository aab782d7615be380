import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { ConfigError, InputError, resolveConfig, selectBackend, silentLogger, type LayerSpec } from '@safe-metanet/core';

import { BottleneckAdapterFactory, createBottleneckAdapterFactory } from './bottleneck-adapter.js';
import { bytesOf, deltaOf, FrozenLayer, LAYER_CASES, maxAbs, trainAdapter } from './test-support/frozen-layers.js';

const DENSE: LayerSpec = { name: 'layer_1', kind: 'dense', inputSize: 6, outputSize: 5, kernelSize: 1, strides: 1, padding: 'valid' };
const CONV: LayerSpec = { name: 'layer_0', kind: 'conv2d', inputSize: 3, outputSize: 5, kernelSize: 3, strides: 2, padding: 'same' };

function bottleneckFactory(settings: Record<string, unknown> = { adapter_bottleneck: 3 }): BottleneckAdapterFactory {
  return createBottleneckAdapterFactory(resolveConfig(settings));
}

beforeAll(async () => {
  await selectBackend('cpu', silentLogger);
});

describe.each(LAYER_CASES)('BottleneckAdapter on $label', (testCase) => {
  let frozen: FrozenLayer;

  beforeEach(() => {
    frozen = new FrozenLayer(testCase);
  });

  afterEach(() => {
    frozen.dispose();
  });

  it('starts equal to the frozen output bitwise', () => {
    const adapter = bottleneckFactory().create(frozen.layer, { seed: 1 });

    const adapted = adapter.apply(frozen.input, frozen.output);

    expect(adapted.shape).toEqual(frozen.output.shape);
    expect(bytesOf(adapted)).toEqual(bytesOf(frozen.output));
    adapted.dispose();
    adapter.dispose();
  });

  it('trains only its own variables', () => {
    const adapter = bottleneckFactory().create(frozen.layer, { seed: 1 });
    const target = tf.randomNormal(frozen.output.shape, 0, 1, 'float32', 5);

    expect(adapter.variables.map((variable) => variable.trainable)).toEqual([true, true, true, true]);
    expect(frozen.kernel.trainable).toBe(false);

    // Without a variable list, variableGrads differentiates every registered trainable variable.
    const { value, grads } = tf.variableGrads(
      () => tf.losses.meanSquaredError(target, adapter.apply(frozen.input, frozen.forward(frozen.input))) as tf.Scalar,
    );

    const names = adapter.variables.map((variable) => variable.name);
    expect(Object.keys(grads).sort()).toEqual([...names].sort());
    const gradUp = grads[adapter.up.name];
    const gradUpBias = grads[adapter.upBias.name];
    const gradDown = grads[adapter.down.name];
    expect(gradUp).toBeDefined();
    expect(gradUpBias).toBeDefined();
    expect(gradDown).toBeDefined();
    // `up` gets a gradient only through active ReLU units, and a single row can leave all of them inactive.
    // The zero-initialised up bias gets a gradient either way.
    const hidden = tf.tidy(() =>
      tf.relu(tf.matMul(frozen.output.reshape([-1, frozen.layer.outputSize]) as tf.Tensor2D, adapter.down as tf.Tensor2D)),
    );
    expect(maxAbs(gradUp as tf.Tensor) > 0).toBe(maxAbs(hidden) > 0);
    expect(maxAbs(gradUpBias as tf.Tensor)).toBeGreaterThan(0);
    // While `up` is zero, the gradient of `down` is exactly zero.
    expect(maxAbs(gradDown as tf.Tensor)).toBe(0);

    tf.dispose([value, target, hidden]);
    tf.dispose(Object.values(grads));
    adapter.dispose();
  });

  it('moves off zero after Adam steps', () => {
    const adapter = bottleneckFactory().create(frozen.layer, { seed: 1 });

    const losses = trainAdapter(adapter, frozen, 3);
    const delta = deltaOf(adapter, frozen);

    expect(maxAbs(delta)).toBeGreaterThan(1e-3);
    expect(losses[losses.length - 1]).toBeLessThan(losses[0] ?? Number.NaN);
    delta.dispose();
    adapter.dispose();
  });

  it('matches the bottleneck formula on every position', () => {
    const adapter = bottleneckFactory().create(frozen.layer, { seed: 1 });
    trainAdapter(adapter, frozen, 3);

    const actual = adapter.apply(frozen.input, frozen.output);
    // Reference: each output position's channel vector goes through relu(x · down + b1) · up + b2 on its own.
    const expected = tf.tidy(() => {
      const channels = frozen.layer.outputSize;
      const positions = tf.unstack(frozen.output.reshape([-1, channels]));
      const adapted = positions.map((position) => {
        const row = position.reshape([1, channels]) as tf.Tensor2D;
        const hidden = tf.relu(tf.matMul(row, adapter.down as tf.Tensor2D).add(adapter.downBias));
        return row.add(tf.matMul(hidden as tf.Tensor2D, adapter.up as tf.Tensor2D).add(adapter.upBias));
      });
      return tf.concat(adapted).reshape(frozen.output.shape);
    });

    // float32 results of the same sums: 1e-6 absolute on outputs of magnitude about 1.
    const difference = tf.tidy(() => actual.sub(expected));
    expect(maxAbs(difference)).toBeLessThan(1e-6);
    tf.dispose([actual, expected, difference]);
    adapter.dispose();
  });

  it('leaves the tensor count unchanged after dispose', () => {
    const before = tf.memory().numTensors;

    const adapter = bottleneckFactory().create(frozen.layer, { seed: 1 });
    expect(tf.memory().numTensors).toBe(before + 4);
    const adapted = adapter.apply(frozen.input, frozen.output);
    expect(tf.memory().numTensors).toBe(before + 5);
    adapted.dispose();
    adapter.dispose();

    expect(tf.memory().numTensors).toBe(before);
  });

  it('keeps its inputs alive', () => {
    const adapter = bottleneckFactory().create(frozen.layer, { seed: 1 });

    tf.tidy(() => adapter.apply(frozen.input, frozen.output));

    expect(frozen.input.isDisposed).toBe(false);
    expect(frozen.output.isDisposed).toBe(false);
    adapter.dispose();
  });
});

describe('BottleneckAdapter initial values', () => {
  it.each([DENSE, CONV])('same seed gives identical values on $kind', (layer) => {
    const first = bottleneckFactory().create(layer, { seed: 3 });
    const second = bottleneckFactory().create(layer, { seed: 3 });

    first.variables.forEach((variable, index) => {
      expect(bytesOf(variable)).toEqual(bytesOf(second.variables[index] as tf.Variable));
    });
    expect(maxAbs(first.up)).toBe(0);
    expect(maxAbs(first.downBias)).toBe(0);
    expect(maxAbs(first.upBias)).toBe(0);
    first.dispose();
    second.dispose();
  });

  it.each([DENSE, CONV])('different seeds give different values on $kind', (layer) => {
    const first = bottleneckFactory().create(layer, { seed: 3 });
    const second = bottleneckFactory().create(layer, { seed: 4 });

    expect(bytesOf(first.down)).not.toEqual(bytesOf(second.down));
    first.dispose();
    second.dispose();
  });

  it('has shapes from the output channels and bottleneck', () => {
    const adapter = bottleneckFactory({ adapter_bottleneck: 7 }).create(CONV, { seed: 0 });

    expect(adapter.variables.map((variable) => variable.shape)).toEqual([[5, 7], [7], [7, 5], [5]]);
    expect(maxAbs(adapter.down)).toBeLessThanOrEqual(1 / Math.sqrt(5));
    adapter.dispose();
  });
});

describe('BottleneckAdapter guards', () => {
  it.each([0, -1, 2.5])('factory rejects bottleneck %d', (bottleneck) => {
    expect(() => new BottleneckAdapterFactory({ adapterBottleneck: bottleneck })).toThrow(ConfigError);
    expect(() => new BottleneckAdapterFactory({ adapterBottleneck: bottleneck })).toThrow(
      `'adapter_bottleneck': ${bottleneck}`,
    );
  });

  it('factory defaults to the default config', () => {
    const factory = createBottleneckAdapterFactory();

    expect(factory.name).toBe('linear_adapter');
    expect(factory.bottleneck).toBe(8);
  });

  it('rejects an unsupported layer kind', () => {
    const layer = { ...DENSE, kind: 'lstm' } as unknown as LayerSpec;

    expect(() => bottleneckFactory().create(layer, { seed: 0 })).toThrow(ConfigError);
  });

  it('rejects a malformed layer spec', () => {
    expect(() => bottleneckFactory().create({ ...CONV, strides: 0 }, { seed: 0 })).toThrow(InputError);
  });

  it.each([
    { label: 'dense width', layer: DENSE, output: [2, 4], message: 'expected shape [batch, 5], got [2, 4]' },
    { label: 'dense rank', layer: DENSE, output: [2, 1, 5], message: 'got [2, 1, 5]' },
    { label: 'conv channels', layer: CONV, output: [1, 4, 4, 6], message: 'expected shape [batch, height, width, 5]' },
  ])('rejects a wrong $label', ({ layer, output, message }) => {
    const adapter = bottleneckFactory().create(layer, { seed: 0 });
    const outputTensor = tf.zeros(output);
    const before = tf.memory().numTensors;

    expect(() => adapter.apply(outputTensor, outputTensor)).toThrow(InputError);
    expect(() => adapter.apply(outputTensor, outputTensor)).toThrow(message);
    expect(tf.memory().numTensors).toBe(before);
    outputTensor.dispose();
    adapter.dispose();
  });
});
