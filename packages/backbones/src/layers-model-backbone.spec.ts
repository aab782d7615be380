import 'reflect-metadata';

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import * as tf from '@tensorflow/tfjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { adaptersModule } from '@safe-metanet/adapters';
import { buildSafeMetaNet, ConfigError, InputError, resolveConfig, selectBackend, silentLogger } from '@safe-metanet/core';
import { policiesModule } from '@safe-metanet/policies';
import { proxiesModule } from '@safe-metanet/proxies';

import { defaultLayersModelSchedule, loadLayersModelBackbone, type LayersModelBackbone } from './layers-model-backbone.js';
import { layersModelFiles } from './layers-model-files.js';
import { maxAbsDifference, sameBytes, ShiftAdapter, weightValues } from './test-support/tensors.js';

const TOLERANCE = 1e-6;

let root: string;
const loaded: LayersModelBackbone[] = [];

beforeAll(async () => {
  await selectBackend('cpu', silentLogger);
  root = mkdtempSync(path.join(tmpdir(), 'layers-model-backbone-'));
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

afterEach(() => {
  loaded.splice(0).forEach((backbone) => backbone.dispose());
});

interface Variant {
  readonly name: string;
  readonly inputShape: readonly number[];
  readonly classes: number;
  readonly build: () => tf.Sequential;
  /** Whether the model ends in a softmax that the backbone leaves off. */
  readonly softmax: boolean;
}

const VARIANTS: readonly Variant[] = [
  {
    name: 'dense',
    inputShape: [6],
    classes: 4,
    softmax: false,
    build: () =>
      tf.sequential({
        layers: [
          tf.layers.dense({ name: 'hidden', units: 8, activation: 'relu', inputShape: [6] }),
          tf.layers.dropout({ rate: 0.5 }),
          tf.layers.dense({ name: 'logits', units: 4 }),
        ],
      }),
  },
  {
    name: 'conv',
    inputShape: [8, 8, 2],
    classes: 5,
    softmax: true,
    build: () =>
      tf.sequential({
        layers: [
          tf.layers.conv2d({ name: 'conv_a', filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', inputShape: [8, 8, 2] }),
          tf.layers.maxPooling2d({ poolSize: 2 }),
          tf.layers.conv2d({ name: 'conv_b', filters: 3, kernelSize: [2, 2], strides: 2, padding: 'valid', activation: 'tanh' }),
          tf.layers.flatten(),
          tf.layers.dense({ name: 'head', units: 5, activation: 'softmax' }),
        ],
      }),
  },
  {
    name: 'conv with softmax layer',
    inputShape: [6, 6, 1],
    classes: 3,
    softmax: true,
    build: () =>
      tf.sequential({
        layers: [
          tf.layers.conv2d({ name: 'conv', filters: 2, kernelSize: 3, useBias: false, inputShape: [6, 6, 1] }),
          tf.layers.averagePooling2d({ poolSize: 2 }),
          tf.layers.reshape({ targetShape: [8] }),
          tf.layers.dense({ name: 'out', units: 3 }),
          tf.layers.activation({ activation: 'softmax' }),
        ],
      }),
  },
];

/** Trains the model for a few steps on random data so that its weights differ from the initial ones, then saves it. */
async function trainAndSave(variant: Variant, folder: string): Promise<tf.Sequential> {
  const model = variant.build();
  model.compile({ optimizer: tf.train.adam(0.01), loss: variant.softmax ? 'categoricalCrossentropy' : 'meanSquaredError' });
  const inputs = tf.randomUniform([16, ...variant.inputShape], 0, 1, 'float32', 3);
  const labels = tf.oneHot(tf.tensor1d([0, 1, 2, 1, 0, 2, 1, 0, 2, 2, 1, 0, 1, 2, 0, 1], 'int32'), variant.classes);
  await model.fit(inputs, labels, { epochs: 3, batchSize: 8, verbose: 0 });
  tf.dispose([inputs, labels]);
  await model.save(layersModelFiles(folder));
  return model;
}

async function load(location: string, schedule?: readonly string[]): Promise<LayersModelBackbone> {
  const backbone = await loadLayersModelBackbone(location, schedule === undefined ? {} : { schedule });
  loaded.push(backbone);
  return backbone;
}

function folderFor(name: string): string {
  return path.join(root, name.replaceAll(' ', '-'));
}

describe.each(VARIANTS)('$name model loaded from files', (variant) => {
  let original: tf.Sequential;
  let folder: string;

  beforeAll(async () => {
    folder = folderFor(variant.name);
    original = await trainAndSave(variant, folder);
  });

  afterAll(() => {
    original.dispose();
  });

  it('lists Dense and Conv2D layers under their names', async () => {
    const backbone = await load(folder);
    const expected = original.layers.filter((layer) => ['Dense', 'Conv2D'].includes(layer.getClassName())).map((layer) => layer.name);

    expect(backbone.layers.map((layer) => layer.name)).toEqual(expected);
    expect(backbone.inputShape).toEqual(variant.inputShape);
    expect(backbone.numClasses).toBe(variant.classes);
    expect(backbone.dropsFinalSoftmax).toBe(variant.softmax);
    expect(defaultLayersModelSchedule(backbone)).toEqual([...expected].reverse());
  });

  it('frozen forward matches model.predict', async () => {
    const backbone = await load(folder);
    const batch = tf.randomUniform([5, ...variant.inputShape], 0, 1, 'float32', 9);
    const before = tf.memory().numTensors;

    const logits = backbone.forward(batch, new Map()).logits;
    const expected = original.predict(batch) as tf.Tensor;
    const actual = variant.softmax ? tf.softmax(logits) : logits;

    expect(actual.shape).toEqual([5, variant.classes]);
    expect(maxAbsDifference(actual, expected)).toBeLessThanOrEqual(TOLERANCE);
    tf.dispose([logits, expected, actual]);
    expect(tf.memory().numTensors).toBe(before);
    batch.dispose();
  });

  it('loads every weight bitwise and frozen', async () => {
    const backbone = await load(folder);
    const loadedValues = weightValues(backbone.weights());
    const originalValues = original.weights.map((weight) => Float32Array.from(weight.read().dataSync()));

    expect(loadedValues).toHaveLength(originalValues.length);
    loadedValues.forEach((values, index) => {
      expect(sameBytes(values, originalValues[index] as Float32Array)).toBe(true);
    });
    expect(backbone.weights().every((variable) => !variable.trainable)).toBe(true);
    expect(backbone.trainable).toBe(false);
  });

  it('adapted runner starts equal and keeps weights', async () => {
    const backbone = await load(folder);
    const schedule = defaultLayersModelSchedule(backbone);
    const config = resolveConfig({
      output_dim: variant.classes,
      expansion_schedule: schedule,
      rollback_threshold: 1e6,
      lora_rank: 1,
      lr: 0.01,
      seed: 4,
    });
    const runner = buildSafeMetaNet({ config, modules: [adaptersModule, proxiesModule, policiesModule], backbone });
    const batch = tf.randomUniform([6, ...variant.inputShape], 0, 1, 'float32', 21);
    const weightsBefore = weightValues(backbone.weights());

    const adapted = runner.predict(batch);
    const frozen = runner.predictSource(batch);
    const predicted = original.predict(batch) as tf.Tensor;
    const adaptedOutput = variant.softmax ? tf.softmax(adapted) : adapted;
    expect(maxAbsDifference(adapted, frozen)).toBeLessThanOrEqual(TOLERANCE);
    expect(maxAbsDifference(adaptedOutput, predicted)).toBeLessThanOrEqual(TOLERANCE);
    tf.dispose([adapted, frozen, predicted, adaptedOutput]);

    const tensorsBefore = tf.memory().numTensors;
    let record = runner.step(batch);
    // Threshold 1e6 rejects every attempt, so the first batch already grows the scope through the whole schedule.
    expect(record.action).toBe('reject');
    expect(record.scope).toEqual(schedule);
    expect(record.attempts).toBe(schedule.length);
    // The only new tensors are the variables of the adapters injected as the scope grew, and the sample memory.
    const injected = schedule.slice(1).flatMap((layer) => runner.adapters.get(layer)?.variables ?? []);
    expect(tf.memory().numTensors).toBe(tensorsBefore + injected.length + 1);

    const tensorsAfterFirst = tf.memory().numTensors;
    for (let step = 1; step < 20; step++) {
      record = runner.step(batch);
    }
    expect(record.scope).toEqual(schedule);
    expect(runner.records).toHaveLength(20);
    expect(tf.memory().numTensors).toBe(tensorsAfterFirst);

    const weightsAfter = weightValues(backbone.weights());
    weightsAfter.forEach((values, index) => {
      expect(sameBytes(values, weightsBefore[index] as Float32Array)).toBe(true);
    });
    runner.dispose();
    batch.dispose();
  });

  it('adapters replace pre-activation outputs', async () => {
    const backbone = await load(folder);
    const first = backbone.layers[0]?.name as string;
    const adapter = new ShiftAdapter(first, 0.5);
    const batch = tf.randomUniform([3, ...variant.inputShape], 0, 1, 'float32', 5);

    const shifted = backbone.forward(batch, new Map([[first, adapter]])).logits;
    const plain = backbone.forward(batch, new Map()).logits;

    expect(adapter.seen).toHaveLength(1);
    expect(maxAbsDifference(shifted, plain)).toBeGreaterThan(1e-4);
    tf.dispose([shifted, plain, batch]);
  });
});

describe('unsupported layers', () => {
  it('layer with weights names the layer and type', async () => {
    const folder = folderFor('batch-norm');
    const model = tf.sequential({
      layers: [
        tf.layers.dense({ name: 'first', units: 4, inputShape: [3] }),
        tf.layers.batchNormalization({ name: 'norm' }),
        tf.layers.dense({ name: 'last', units: 2 }),
      ],
    });
    await model.save(layersModelFiles(folder));
    model.dispose();

    const before = tf.memory().numTensors;
    await expect(loadLayersModelBackbone(folder)).rejects.toThrow(InputError);
    await expect(loadLayersModelBackbone(folder)).rejects.toThrow(/layer 'norm' of type BatchNormalization/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('weightless layer of another type runs', async () => {
    const folder = folderFor('zero-padding');
    const model = tf.sequential({
      layers: [
        tf.layers.zeroPadding2d({ name: 'pad', padding: 1, inputShape: [4, 4, 1] }),
        tf.layers.conv2d({ name: 'conv', filters: 2, kernelSize: 3 }),
        tf.layers.globalAveragePooling2d({ name: 'pool' }),
        tf.layers.dense({ name: 'out', units: 2 }),
      ],
    });
    await model.save(layersModelFiles(folder));
    const backbone = await load(folder);
    const batch = tf.randomUniform([2, 4, 4, 1], 0, 1, 'float32', 1);

    const logits = backbone.forward(batch, new Map()).logits;
    const expected = model.predict(batch) as tf.Tensor;

    expect(maxAbsDifference(logits, expected)).toBeLessThanOrEqual(TOLERANCE);
    tf.dispose([logits, expected, batch]);
    model.dispose();
  });

  it('schedule naming a non-adaptable layer names its type', async () => {
    const folder = folderFor('schedule');
    const model = tf.sequential({
      layers: [tf.layers.dense({ name: 'a', units: 3, inputShape: [2] }), tf.layers.dropout({ name: 'drop', rate: 0.1 }), tf.layers.dense({ name: 'b', units: 2 })],
    });
    await model.save(layersModelFiles(folder));
    model.dispose();

    await expect(loadLayersModelBackbone(folder, { schedule: ['b', 'drop'] })).rejects.toThrow(ConfigError);
    await expect(loadLayersModelBackbone(folder, { schedule: ['b', 'drop'] })).rejects.toThrow(/layer 'drop' is a Dropout layer/);
    await expect(loadLayersModelBackbone(folder, { schedule: ['c'] })).rejects.toThrow(/no layer 'c'\. Adaptable layers: a, b/);
    const backbone = await load(folder, ['b', 'a']);
    expect(backbone.layers.map((layer) => layer.name)).toEqual(['a', 'b']);
  });

  it('dilated convolution is rejected by name', async () => {
    const folder = folderFor('dilated');
    const model = tf.sequential({
      layers: [tf.layers.conv2d({ name: 'wide', filters: 2, kernelSize: 3, dilationRate: 2, inputShape: [8, 8, 1] }), tf.layers.flatten(), tf.layers.dense({ units: 2 })],
    });
    await model.save(layersModelFiles(folder));
    model.dispose();

    await expect(loadLayersModelBackbone(folder)).rejects.toThrow(/layer 'wide' of type Conv2D.*dilationRate/);
  });
});

describe('model files', () => {
  it('missing folder names model.json', async () => {
    const missing = path.join(root, 'absent');
    await expect(loadLayersModelBackbone(missing)).rejects.toThrow(InputError);
    await expect(loadLayersModelBackbone(missing)).rejects.toThrow(path.join(missing, 'model.json'));
  });

  it('corrupt model.json is named', async () => {
    const folder = folderFor('corrupt');
    const model = VARIANTS[0]?.build() as tf.Sequential;
    await model.save(layersModelFiles(folder));
    model.dispose();
    const modelPath = path.join(folder, 'model.json');
    const valid = readFileSync(modelPath, 'utf8');

    writeFileSync(modelPath, valid.slice(0, valid.length / 2));
    await expect(loadLayersModelBackbone(modelPath)).rejects.toThrow(InputError);
    await expect(loadLayersModelBackbone(modelPath)).rejects.toThrow(`Invalid model file ${modelPath}: it is not valid JSON`);

    writeFileSync(modelPath, JSON.stringify({ weightsManifest: [] }));
    await expect(loadLayersModelBackbone(folder)).rejects.toThrow(/has no 'modelTopology' object/);
  });

  it('missing or short weight file is named', async () => {
    const folder = folderFor('weights');
    const model = VARIANTS[0]?.build() as tf.Sequential;
    await model.save(layersModelFiles(folder));
    model.dispose();
    const weightsPath = path.join(folder, 'weights.bin');
    const bytes = readFileSync(weightsPath);

    writeFileSync(weightsPath, bytes.subarray(0, 8));
    await expect(loadLayersModelBackbone(folder)).rejects.toThrow(InputError);
    await expect(loadLayersModelBackbone(folder)).rejects.toThrow(`Cannot load the Layers model in ${path.join(folder, 'model.json')}`);

    rmSync(weightsPath);
    await expect(loadLayersModelBackbone(folder)).rejects.toThrow(`Cannot read the weight file ${weightsPath}`);
  });

  it('weight path outside the folder is rejected', async () => {
    const folder = folderFor('escape');
    const model = VARIANTS[0]?.build() as tf.Sequential;
    await model.save(layersModelFiles(folder));
    model.dispose();
    const modelPath = path.join(folder, 'model.json');
    const json = JSON.parse(readFileSync(modelPath, 'utf8')) as tf.io.ModelJSON;
    writeFileSync(modelPath, JSON.stringify({ ...json, weightsManifest: [{ paths: ['../weights.bin'], weights: json.weightsManifest[0]?.weights }] }));

    await expect(loadLayersModelBackbone(folder)).rejects.toThrow(/weight path '\.\.\/weights\.bin' leaves the model's folder/);
  });

  it('forward rejects a wrong input shape', async () => {
    const backbone = await load(folderFor('dense'));
    const batch = tf.zeros([2, 5]);
    expect(() => backbone.forward(batch, new Map())).toThrow(/expected shape \[batch, 6\], got \[2, 5\]/);
    batch.dispose();
  });
});
