import 'reflect-metadata';

import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import * as tf from '@tensorflow/tfjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { InputError, selectBackend, silentLogger } from '@safe-metanet/core';

import type { BackboneOptions, CnnSettings, MlpSettings } from './backbone-settings.js';
import { createCnnBackbone } from './cnn-backbone.js';
import type { FrozenBackbone } from './frozen-backbone.js';
import { createMlpBackbone } from './mlp-backbone.js';
import { sameBytes, weightValues } from './test-support/tensors.js';
import { loadBackboneWeights, readBackboneHeader, readBackboneMetadata, saveBackboneWeights } from './weights-file.js';

const MLP: MlpSettings = { hiddenDim: 16, numLayers: 3, inputDim: 8, outputDim: 4, seed: 1 };
const CNN: CnnSettings = { hiddenDim: 4, numLayers: 3, imageSize: 12, imageChannels: 2, outputDim: 5, seed: 1 };

let folder: string;
const created: FrozenBackbone[] = [];

function mlp(settings: Partial<MlpSettings> = {}, options: BackboneOptions = {}): FrozenBackbone {
  const backbone = createMlpBackbone({ ...MLP, ...settings }, options);
  created.push(backbone);
  return backbone;
}

function cnn(settings: Partial<CnnSettings> = {}, options: BackboneOptions = {}): FrozenBackbone {
  const backbone = createCnnBackbone({ ...CNN, ...settings }, options);
  created.push(backbone);
  return backbone;
}

function expectSameWeights(left: FrozenBackbone, right: FrozenBackbone): void {
  const leftValues = weightValues(left.weights());
  const rightValues = weightValues(right.weights());
  expect(leftValues).toHaveLength(rightValues.length);
  leftValues.forEach((values, index) => {
    expect(sameBytes(values, rightValues[index] as Float32Array), `weight ${index}`).toBe(true);
  });
}

function loadError(backbone: FrozenBackbone, filePath: string): InputError {
  try {
    loadBackboneWeights(backbone, filePath);
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    return error as InputError;
  }
  throw new Error(`loadBackboneWeights accepted ${filePath}.`);
}

beforeAll(async () => {
  await selectBackend('cpu', silentLogger);
  folder = mkdtempSync(path.join(tmpdir(), 'backbone-weights-'));
});

afterEach(() => {
  created.splice(0).forEach((backbone) => backbone.dispose());
});

afterAll(() => {
  rmSync(folder, { recursive: true, force: true });
});

describe('saveBackboneWeights and loadBackboneWeights', () => {
  it.each([
    { name: 'mlp', source: () => mlp({ seed: 3 }), target: () => mlp({ seed: 4 }) },
    { name: 'cnn', source: () => cnn({ seed: 3 }), target: () => cnn({ seed: 4 }) },
    { name: 'mlp decoder', source: () => mlp({ seed: 3 }, { decoder: true }), target: () => mlp({ seed: 4 }, { decoder: true }) },
    { name: 'cnn decoder', source: () => cnn({ seed: 3 }, { decoder: true }), target: () => cnn({ seed: 4 }, { decoder: true }) },
  ])('round trip is bitwise for $name', ({ name, source, target }) => {
    const saved = source();
    const loaded = target();
    const filePath = path.join(folder, `${name.replace(' ', '-')}.weights`);

    saveBackboneWeights(saved, filePath);
    const before = tf.memory().numTensors;
    loadBackboneWeights(loaded, filePath);

    expectSameWeights(loaded, saved);
    expect(tf.memory().numTensors).toBe(before);
    expect(loaded.trainable).toBe(false);
  });

  it('loaded backbone gives the same logits', () => {
    const saved = mlp({ seed: 3 });
    const loaded = mlp({ seed: 4 });
    const filePath = path.join(folder, 'logits.weights');
    const input = tf.randomNormal([4, 8], 0, 1, 'float32', 2);

    saveBackboneWeights(saved, filePath);
    loadBackboneWeights(loaded, filePath);
    const same = tf.tidy(() => {
      const expected = saved.forward(input, new Map()).logits.dataSync();
      const actual = loaded.forward(input, new Map()).logits.dataSync();
      return sameBytes(Float32Array.from(expected), Float32Array.from(actual));
    });

    expect(same).toBe(true);
    input.dispose();
  });

  it('stores the header and metadata', () => {
    const filePath = path.join(folder, 'metadata.weights');
    const metadata = { dataset: 'mnist', epochs: 3, config: { hidden_dim: 16 } };

    saveBackboneWeights(mlp(), filePath, metadata);
    const header = readBackboneHeader(filePath);

    expect(readBackboneMetadata(filePath)).toEqual(metadata);
    expect(header.kind).toBe('mlp');
    expect(header.inputShape).toEqual([8]);
    expect(header.numClasses).toBe(4);
    expect(header.hasDecoder).toBe(false);
    expect(header.weights.map((weight) => weight.name)).toEqual([
      'layer_0/kernel',
      'layer_0/bias',
      'layer_1/kernel',
      'layer_1/bias',
      'layer_2/kernel',
      'layer_2/bias',
    ]);
    expect(header.weights[0]).toEqual({ name: 'layer_0/kernel', shape: [8, 16], dtype: 'float32' });
  });

  it('file size is header plus float32 data', () => {
    const backbone = mlp();
    const filePath = path.join(folder, 'size.weights');

    saveBackboneWeights(backbone, filePath);
    const bytes = readFileSync(filePath);
    const headerLength = bytes.readUInt32LE(8);
    const values = backbone.weights().reduce((total, weight) => total + weight.size, 0);

    expect(bytes.toString('ascii', 0, 8)).toBe('SMNWGT01');
    expect(bytes.length).toBe(12 + headerLength + values * 4);
  });

  it('overwrites and leaves no temporary file', () => {
    const subfolder = path.join(folder, 'nested', 'models');
    const filePath = path.join(subfolder, 'model.weights');

    saveBackboneWeights(mlp({ seed: 5 }), filePath, { version: 1 });
    saveBackboneWeights(mlp({ seed: 6 }), filePath, { version: 2 });

    expect(readdirSync(subfolder)).toEqual(['model.weights']);
    expect(readBackboneMetadata(filePath)).toEqual({ version: 2 });
    const loaded = mlp({ seed: 9 });
    loadBackboneWeights(loaded, filePath);
    expectSameWeights(loaded, mlp({ seed: 6 }));
  });

  it('rejects metadata that is not JSON', () => {
    const filePath = path.join(folder, 'bigint.weights');

    expect(() => saveBackboneWeights(mlp(), filePath, { size: 10n })).toThrow(InputError);
    expect(() => saveBackboneWeights(mlp(), filePath, { size: 10n })).toThrow('cannot be serialised as JSON');
    expect(readdirSync(folder).some((name) => name.includes('bigint'))).toBe(false);
  });
});

describe('loadBackboneWeights errors', () => {
  it('missing file', () => {
    const filePath = path.join(folder, 'absent.weights');

    const error = loadError(mlp(), filePath);

    expect(error.message).toContain(`Cannot read backbone weights file ${filePath}: file not found`);
    expect(() => readBackboneMetadata(filePath)).toThrow('file not found');
  });

  it.each([
    { cut: 'the last 4 bytes', length: (bytes: Buffer) => bytes.length - 4 },
    { cut: 'the last 1000 bytes', length: (bytes: Buffer) => bytes.length - 1000 },
    { cut: 'inside the header', length: (bytes: Buffer) => 12 + bytes.readUInt32LE(8) - 5 },
    { cut: 'inside the prefix', length: () => 10 },
  ])('truncated file cut $cut', ({ cut, length }) => {
    const source = path.join(folder, 'whole.weights');
    const filePath = path.join(folder, `cut-${cut.replaceAll(' ', '-')}.weights`);
    saveBackboneWeights(mlp(), source);
    const bytes = readFileSync(source);
    const keptBytes = length(bytes);
    writeFileSync(filePath, bytes.subarray(0, keptBytes));

    const error = loadError(mlp(), filePath);

    expect(error.message).toContain(filePath);
    expect(error.message).toContain('it is truncated');
    expect(error.message).toContain(`(${keptBytes} bytes`);
  });

  it('trailing bytes', () => {
    const source = path.join(folder, 'whole.weights');
    const filePath = path.join(folder, 'trailing.weights');
    saveBackboneWeights(mlp(), source);
    writeFileSync(filePath, Buffer.concat([readFileSync(source), Buffer.alloc(8)]));

    expect(loadError(mlp(), filePath).message).toContain('it has 8 bytes after the last weight');
  });

  it('not a weights file', () => {
    const filePath = path.join(folder, 'notes.txt');
    writeFileSync(filePath, 'hello, these are not weights');

    expect(loadError(mlp(), filePath).message).toContain("does not start with the signature 'SMNWGT01'");
  });

  it('corrupt header', () => {
    const source = path.join(folder, 'whole.weights');
    const filePath = path.join(folder, 'corrupt-header.weights');
    saveBackboneWeights(mlp(), source);
    const bytes = Buffer.from(readFileSync(source));
    bytes.write('#', 12, 'ascii');
    writeFileSync(filePath, bytes);

    expect(loadError(mlp(), filePath).message).toContain('its header is not valid JSON');
  });

  it('wrong shapes', () => {
    const filePath = path.join(folder, 'hidden-16.weights');
    saveBackboneWeights(mlp({ hiddenDim: 16 }), filePath);
    const target = mlp({ hiddenDim: 12, seed: 2 });
    const before = weightValues(target.weights());

    const error = loadError(target, filePath);

    expect(error.message).toContain(`Backbone weights in ${filePath} do not match this mlp backbone`);
    expect(error.message).toContain("weight 'layer_0/kernel' has shape [8, 16] in the file and [8, 12] in the backbone");
    weightValues(target.weights()).forEach((values, index) => {
      expect(sameBytes(values, before[index] as Float32Array)).toBe(true);
    });
  });

  it('different layer count', () => {
    const filePath = path.join(folder, 'four-layers.weights');
    saveBackboneWeights(mlp({ numLayers: 4 }), filePath);

    const message = loadError(mlp({ numLayers: 3 }), filePath).message;

    expect(message).toContain('unexpected weights layer_3/kernel, layer_3/bias');
  });

  it('different kind', () => {
    const filePath = path.join(folder, 'cnn.weights');
    saveBackboneWeights(cnn(), filePath);

    expect(loadError(mlp(), filePath).message).toContain("the file was saved from a 'cnn' backbone");
  });

  it('different image size', () => {
    // 12 and 13 pixels give the same weight shapes (both pool to 6x6), so only the input shape distinguishes them.
    const filePath = path.join(folder, 'image-12.weights');
    saveBackboneWeights(cnn({ imageSize: 12 }), filePath);

    const message = loadError(cnn({ imageSize: 13 }), filePath).message;

    expect(message).toContain("the file's input shape is [12, 12, 2], the backbone's [13, 13, 2]");
  });

  it.each([
    { savedDecoder: true, message: 'the file has decoder weights and the backbone has no decoder' },
    { savedDecoder: false, message: 'the file has no decoder weights and the backbone has a decoder' },
  ])('decoder mismatch saved $savedDecoder', ({ savedDecoder, message }) => {
    const filePath = path.join(folder, `decoder-${savedDecoder}.weights`);
    saveBackboneWeights(mlp({}, { decoder: savedDecoder }), filePath);

    expect(loadError(mlp({}, { decoder: !savedDecoder }), filePath).message).toContain(message);
  });

  it('leaves no tensors after a failed load', () => {
    const filePath = path.join(folder, 'hidden-16.weights');
    saveBackboneWeights(mlp({ hiddenDim: 16 }), filePath);
    const target = mlp({ hiddenDim: 12 });
    const before = tf.memory().numTensors;

    loadError(target, filePath);

    expect(tf.memory().numTensors).toBe(before);
    expect(statSync(filePath).size).toBeGreaterThan(0);
  });
});
