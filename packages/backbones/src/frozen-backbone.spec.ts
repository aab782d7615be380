import 'reflect-metadata';

import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';

import { PluginFailureError, selectBackend, silentLogger, type Adapter } from '@safe-metanet/core';

import type { BackboneOptions } from './backbone-settings.js';
import { createCnnBackbone } from './cnn-backbone.js';
import type { FrozenBackbone } from './frozen-backbone.js';
import { createMlpBackbone } from './mlp-backbone.js';
import { maxAbsDifference, sameBytes, ShiftAdapter, weightValues, WrongShapeAdapter } from './test-support/tensors.js';

interface Kind {
  readonly kind: 'mlp' | 'cnn';
  readonly create: (seed: number, options?: BackboneOptions) => FrozenBackbone;
  readonly inputShape: readonly number[];
}

const KINDS: readonly Kind[] = [
  {
    kind: 'mlp',
    create: (seed, options) => createMlpBackbone({ hiddenDim: 16, numLayers: 3, inputDim: 8, outputDim: 4, seed }, options),
    inputShape: [8],
  },
  {
    kind: 'cnn',
    create: (seed, options) =>
      createCnnBackbone({ hiddenDim: 4, numLayers: 3, imageSize: 12, imageChannels: 2, outputDim: 5, seed }, options),
    inputShape: [12, 12, 2],
  },
];

const created: FrozenBackbone[] = [];
function build(kind: Kind, seed = 1, options: BackboneOptions = {}): FrozenBackbone {
  const backbone = kind.create(seed, options);
  created.push(backbone);
  return backbone;
}

function batch(kind: Kind, batchSize: number, seed = 11): tf.Tensor {
  return tf.randomUniform([batchSize, ...kind.inputShape], 0, 1, 'float32', seed);
}

function adapterMap(...adapters: Adapter[]): Map<string, Adapter> {
  return new Map(adapters.map((adapter) => [adapter.layerName, adapter]));
}

beforeAll(async () => {
  await selectBackend('cpu', silentLogger);
});

afterEach(() => {
  created.splice(0).forEach((backbone) => backbone.dispose());
});

describe.each(KINDS)('$kind backbone weights', (kind) => {
  it('same seed gives bitwise-identical weights', () => {
    const first = weightValues(build(kind, 7).weights());
    const second = weightValues(build(kind, 7).weights());

    expect(first).toHaveLength(second.length);
    first.forEach((values, index) => {
      expect(sameBytes(values, second[index] as Float32Array), `weight ${index}`).toBe(true);
    });
  });

  it('different seeds give different kernels', () => {
    const first = weightValues(build(kind, 7).weights());
    const second = weightValues(build(kind, 8).weights());

    expect(sameBytes(first[0] as Float32Array, second[0] as Float32Array)).toBe(false);
    expect(sameBytes(first.at(-2) as Float32Array, second.at(-2) as Float32Array)).toBe(false);
  });

  it('are untrainable after build', () => {
    const backbone = build(kind);

    expect(backbone.trainable).toBe(false);
    expect(backbone.weights().every((weight) => !weight.trainable)).toBe(true);
  });

  it('get no gradient from minimize while frozen', () => {
    const backbone = build(kind);
    const input = batch(kind, 2);
    const before = weightValues(backbone.weights());
    const optimizer = tf.train.sgd(0.1);
    const loss = (): tf.Scalar => tf.tidy(() => backbone.forward(input, new Map()).logits.square().mean());

    // tfjs 4.22 drops variables whose trainable flag is false from varList and throws when none is left.
    expect(() => optimizer.minimize(loss, false, [...backbone.weights()])).toThrow('expects at least one of the input variables to be trainable');

    const after = weightValues(backbone.weights());
    after.forEach((values, index) => expect(sameBytes(values, before[index] as Float32Array)).toBe(true));
    optimizer.dispose();
    input.dispose();
  });

  it('train after setTrainable(true)', () => {
    const backbone = build(kind);
    const input = batch(kind, 2);
    const before = weightValues(backbone.weights());
    const optimizer = tf.train.sgd(0.1);
    const loss = (): tf.Scalar => tf.tidy(() => backbone.forward(input, new Map()).logits.square().mean());

    backbone.setTrainable(true);
    optimizer.minimize(loss, false, [...backbone.weights()]);
    backbone.setTrainable(false);

    const lastKernel = backbone.weights().length - 2;
    expect(sameBytes(weightValues(backbone.weights())[lastKernel] as Float32Array, before[lastKernel] as Float32Array)).toBe(false);
    expect(backbone.trainable).toBe(false);
    optimizer.dispose();
    input.dispose();
  });
});

describe.each(KINDS)('$kind backbone adapters', (kind) => {
  it('each layer spec describes its adapter inputs', () => {
    const backbone = build(kind);
    const adapters = backbone.layers.map((layer) => new ShiftAdapter(layer.name, 0));
    const input = batch(kind, 3);

    tf.tidy(() => {
      backbone.forward(input, adapterMap(...adapters));
    });

    backbone.layers.forEach((layer, index) => {
      const seen = adapters[index]?.seen ?? [];
      expect(seen, layer.name).toHaveLength(1);
      const shapes = seen[0];
      expect(shapes?.input[0], layer.name).toBe(3);
      expect(shapes?.input.at(-1), layer.name).toBe(layer.inputSize);
      expect(shapes?.frozenOutput.at(-1), layer.name).toBe(layer.outputSize);
      expect(shapes?.input.length, layer.name).toBe(layer.kind === 'dense' ? 2 : 4);
      if (layer.kind === 'conv2d') {
        // 'same' padding with stride 1 keeps height and width.
        expect(shapes?.frozenOutput.slice(1, 3), layer.name).toEqual(shapes?.input.slice(1, 3));
      }
    });
    input.dispose();
  });

  it('zero-shift adapters leave logits unchanged', () => {
    const backbone = build(kind);
    const adapters = adapterMap(...backbone.layers.map((layer) => new ShiftAdapter(layer.name, 0)));
    const input = batch(kind, 4);

    const difference = tf.tidy(() =>
      maxAbsDifference(backbone.forward(input, adapters).logits, backbone.forward(input, new Map()).logits),
    );

    expect(difference).toBe(0);
    input.dispose();
  });

  it('last-layer adapter shifts the logits', () => {
    const backbone = build(kind);
    const last = backbone.layers.at(-1)?.name ?? '';
    const input = batch(kind, 4);

    const shifted = tf.tidy(() => {
      const adapted = backbone.forward(input, adapterMap(new ShiftAdapter(last, 0.5))).logits;
      const frozen = backbone.forward(input, new Map()).logits;
      return tf.sub(adapted, frozen).dataSync();
    });

    for (const value of shifted) {
      expect(value).toBeCloseTo(0.5, 6);
    }
    input.dispose();
  });

  it('adapters of other layers are ignored', () => {
    const backbone = build(kind);
    const input = batch(kind, 2);

    const difference = tf.tidy(() =>
      maxAbsDifference(
        backbone.forward(input, adapterMap(new ShiftAdapter('not_a_layer', 3))).logits,
        backbone.forward(input, new Map()).logits,
      ),
    );

    expect(difference).toBe(0);
    input.dispose();
  });

  it('rejects an adapter output of the wrong shape', () => {
    const backbone = build(kind);
    const input = batch(kind, 2);
    const before = tf.memory().numTensors;

    const run = (): unknown => backbone.forward(input, adapterMap(new WrongShapeAdapter('layer_0')));

    expect(run).toThrow(PluginFailureError);
    expect(run).toThrow("The 'wrong_shape' adapter of layer_0 returned shape");
    expect(tf.memory().numTensors).toBe(before);
    input.dispose();
  });
});

describe.each(KINDS)('$kind backbone decoder', (kind) => {
  it('reconstructs the input shape within [0, 1]', () => {
    const backbone = build(kind, 1, { decoder: true });
    const input = batch(kind, 8);

    const output = backbone.forward(input, new Map());
    const values = output.reconstruction?.dataSync() ?? new Float32Array();

    expect(backbone.hasDecoder).toBe(true);
    expect(output.reconstruction?.shape).toEqual([8, ...kind.inputShape]);
    expect(Math.min(...values)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...values)).toBeLessThanOrEqual(1);
    expect(Math.max(...values) - Math.min(...values)).toBeGreaterThan(0);
    tf.dispose([input, output.logits, output.reconstruction as tf.Tensor]);
  });

  it('adds four weights after the layers', () => {
    const plain = build(kind);
    const withDecoder = build(kind, 1, { decoder: true });
    const features = withDecoder.layers.at(-1)?.inputSize ?? 0;
    const size = kind.inputShape.reduce((total, side) => total * side, 1);

    const added = withDecoder.namedWeights().slice(plain.weights().length);

    expect(added.map((weight) => [weight.name, weight.variable.shape])).toEqual([
      ['decoder_0/kernel', [features, kind.kind === 'mlp' ? 16 : 4]],
      ['decoder_0/bias', [kind.kind === 'mlp' ? 16 : 4]],
      ['decoder_1/kernel', [kind.kind === 'mlp' ? 16 : 4, size]],
      ['decoder_1/bias', [size]],
    ]);
    expect(added.every((weight) => !weight.variable.trainable)).toBe(true);
  });

  it('does not change the classifier weights', () => {
    const plain = weightValues(build(kind).weights());
    const withDecoder = weightValues(build(kind, 1, { decoder: true }).weights());

    plain.forEach((values, index) => expect(sameBytes(values, withDecoder[index] as Float32Array)).toBe(true));
  });

  it('follows lower-layer adapters only', () => {
    const backbone = build(kind, 1, { decoder: true });
    const last = backbone.layers.at(-1)?.name ?? '';
    const input = batch(kind, 2);

    const [lastLayerChange, firstLayerChange] = tf.tidy(() => {
      const frozen = backbone.forward(input, new Map()).reconstruction as tf.Tensor;
      const lastAdapted = backbone.forward(input, adapterMap(new ShiftAdapter(last, 1))).reconstruction as tf.Tensor;
      const firstAdapted = backbone.forward(input, adapterMap(new ShiftAdapter('layer_0', 1))).reconstruction as tf.Tensor;
      return [maxAbsDifference(lastAdapted, frozen), maxAbsDifference(firstAdapted, frozen)];
    });

    expect(lastLayerChange).toBe(0);
    expect(firstLayerChange).toBeGreaterThan(1e-4);
    input.dispose();
  });
});

describe.each(KINDS)('$kind backbone memory', (kind) => {
  it('forward in tidy leaves no tensors', () => {
    const backbone = build(kind, 1, { decoder: true });
    const input = batch(kind, 4);
    const adapters = adapterMap(new ShiftAdapter('layer_1', 0.1));
    const before = tf.memory().numTensors;

    tf.tidy(() => {
      backbone.forward(input, adapters);
    });

    expect(tf.memory().numTensors).toBe(before);
    input.dispose();
  });

  it('forward returns only its outputs', () => {
    const backbone = build(kind, 1, { decoder: true });
    const input = batch(kind, 4);
    const before = tf.memory().numTensors;

    const output = backbone.forward(input, new Map());

    expect(tf.memory().numTensors).toBe(before + 2);
    tf.dispose([output.logits, output.reconstruction as tf.Tensor]);
    expect(tf.memory().numTensors).toBe(before);
    input.dispose();
  });

  it('dispose releases every weight', () => {
    const before = tf.memory().numTensors;
    const backbone = kind.create(1, { decoder: true });
    const count = backbone.weights().length;

    expect(tf.memory().numTensors).toBe(before + count);
    backbone.dispose();
    backbone.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('disposed backbone rejects calls', () => {
    const backbone = kind.create(1);
    const input = batch(kind, 1);
    backbone.dispose();

    expect(() => backbone.forward(input, new Map())).toThrow(`Cannot call forward() on a disposed ${kind.kind} backbone`);
    expect(() => backbone.weights()).toThrow('disposed');
    expect(() => backbone.setTrainable(true)).toThrow('disposed');
    input.dispose();
  });
});

describe.each(KINDS)('$kind frozen trace', (kind) => {
  it('runs from every layer like forward', () => {
    const backbone = build(kind, 1, { decoder: true });
    const input = batch(kind, 3);
    const trace = backbone.traceFrozen(input);

    for (let layerIndex = 0; layerIndex < backbone.layers.length; layerIndex++) {
      // forwardFrom skips the layers below its start, so the reference has adapters from that layer upwards only.
      const fromHere = adapterMap(...backbone.layers.slice(layerIndex).map((layer, offset) => new ShiftAdapter(layer.name, 0.1 * (layerIndex + offset + 1))));
      const { input: activation, frozenOutput } = trace.layer(layerIndex);
      const reference = backbone.forward(input, fromHere);
      const traced = backbone.forwardFrom(activation, layerIndex, fromHere, frozenOutput);

      expect(sameBytes(traced.logits.dataSync() as Float32Array, reference.logits.dataSync() as Float32Array), `logits from layer ${layerIndex}`).toBe(true);
      expect(
        sameBytes(traced.reconstruction?.dataSync() as Float32Array, reference.reconstruction?.dataSync() as Float32Array),
        `reconstruction from layer ${layerIndex}`,
      ).toBe(true);
      tf.dispose([traced.logits, traced.reconstruction as tf.Tensor, reference.logits, reference.reconstruction as tf.Tensor]);
    }
    const frozen = backbone.forward(input, new Map());
    expect(sameBytes(trace.logits().dataSync() as Float32Array, frozen.logits.dataSync() as Float32Array)).toBe(true);
    tf.dispose([frozen.logits, frozen.reconstruction as tf.Tensor]);
    trace.dispose();
    input.dispose();
  });

  it('computes layers only when asked', () => {
    const backbone = build(kind);
    const input = batch(kind, 2);
    const before = tf.memory().numTensors;

    const trace = backbone.traceFrozen(input);
    expect(tf.memory().numTensors).toBe(before);
    trace.layer(0);
    const afterFirst = tf.memory().numTensors;
    trace.logits();

    expect(afterFirst).toBeGreaterThan(before);
    expect(tf.memory().numTensors).toBeGreaterThan(afterFirst);
    trace.dispose();
    trace.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(input.isDisposed).toBe(false);
    input.dispose();
  });

  it('hands out logits the caller may dispose', () => {
    const backbone = build(kind);
    const input = batch(kind, 2);
    const trace = backbone.traceFrozen(input);
    const lastIndex = backbone.layers.length - 1;
    const { input: features, frozenOutput } = trace.layer(lastIndex);

    const output = backbone.forwardFrom(features, lastIndex, new Map(), frozenOutput);
    output.logits.dispose();

    expect(frozenOutput.isDisposed).toBe(false);
    expect(trace.logits().shape).toEqual([2, backbone.numClasses]);
    trace.dispose();
    input.dispose();
  });

  it('rejects use after dispose', () => {
    const backbone = build(kind);
    const input = batch(kind, 2);
    const trace = backbone.traceFrozen(input);
    trace.dispose();

    expect(() => trace.layer(0)).toThrow('Cannot call layer() or logits() on a disposed FrozenTrace. Call traceFrozen again.');
    expect(() => trace.logits()).toThrow('disposed FrozenTrace');
    input.dispose();
  });

  it('rejects a disposed batch', () => {
    const backbone = build(kind);
    const input = batch(kind, 2);
    const trace = backbone.traceFrozen(input);
    trace.layer(0);
    input.dispose();

    expect(() => trace.layer(1)).toThrow('The batch of this FrozenTrace was disposed. Keep the batch until the trace is disposed.');
    expect(() => trace.layer(0)).toThrow('The batch of this FrozenTrace was disposed.');
    trace.dispose();
  });

  it.each([-1, 3, 1.5])('rejects layer index %s', (layerIndex) => {
    const backbone = build(kind);
    const input = batch(kind, 2);
    const trace = backbone.traceFrozen(input);

    expect(() => trace.layer(layerIndex)).toThrow(`Invalid layer index ${layerIndex} for the ${kind.kind} backbone; use 0 to 2.`);
    trace.dispose();
    input.dispose();
  });
});
