import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';

import { BalancedMemory } from './balanced-memory.js';
import { selectBackend } from './backend.js';
import { InputError } from './errors.js';
import { silentLogger } from './logger.js';

beforeAll(async () => {
  await selectBackend('cpu', silentLogger);
});

/** Returns a batch of samples of shape [2] whose values are their ids, so that stored rows read back as ids. */
function batchOf(ids: readonly number[]): tf.Tensor2D {
  return tf.tensor2d(ids.map((id) => [id, -id]));
}

/** Returns the ids of the stored samples, oldest first. */
function storedIds(memory: BalancedMemory): number[] {
  const samples = memory.samples;
  if (samples === undefined) {
    return [];
  }
  return (samples.arraySync() as number[][]).map((row) => {
    expect(row[1]).toBe(-(row[0] as number));
    return row[0] as number;
  });
}

function add(memory: BalancedMemory, ids: readonly number[], labels: readonly number[]): void {
  const batch = batchOf(ids);
  memory.add(batch, labels);
  batch.dispose();
}

describe('BalancedMemory', () => {
  it('keeps every sample until full', () => {
    const memory = new BalancedMemory(5);
    add(memory, [1, 2], [0, 0]);
    add(memory, [3, 4, 5], [1, 0, 2]);

    expect(storedIds(memory)).toEqual([1, 2, 3, 4, 5]);
    expect(memory.labels).toEqual([0, 0, 1, 0, 2]);
    expect(memory.size).toBe(5);
    memory.dispose();
  });

  it('evicts from the largest class', () => {
    const memory = new BalancedMemory(6);
    add(memory, [1, 2, 3, 4, 5, 6], [0, 0, 1, 1, 2, 2]);
    // Sample 7 (class 3) drops the oldest of classes 0, 1 and 2, which have two each: sample 1. Sample 8 drops
    // the oldest of classes 1 and 2: sample 3. Class 3 then has two, as many as class 2, so samples 9 and 10
    // replace the oldest of class 3.
    add(memory, [7, 8, 9, 10], [3, 3, 3, 3]);

    expect(storedIds(memory)).toEqual([2, 4, 5, 6, 9, 10]);
    expect(memory.labels).toEqual([0, 1, 2, 2, 3, 3]);
    memory.dispose();
  });

  it('spans classes of one-class batches', () => {
    const memory = new BalancedMemory(8);
    for (let label = 0; label < 4; label++) {
      const ids = Array.from({ length: 8 }, (_, index) => label * 8 + index);
      add(memory, ids, ids.map(() => label));
    }

    // Each class keeps its two newest samples.
    expect(storedIds(memory)).toEqual([6, 7, 14, 15, 22, 23, 30, 31]);
    memory.dispose();
  });

  it('owns one tensor until disposed', () => {
    const before = tf.memory().numTensors;
    const memory = new BalancedMemory(4);
    for (let step = 0; step < 5; step++) {
      add(memory, [step * 3, step * 3 + 1, step * 3 + 2], [step % 2, 1, 2]);
      expect(tf.memory().numTensors).toBe(before + 1);
    }
    memory.dispose();

    expect(tf.memory().numTensors).toBe(before);
    expect(memory.samples).toBeUndefined();
  });

  it('continues from an exported state', () => {
    const original = new BalancedMemory(4);
    add(original, [1, 2, 3, 4, 5], [0, 1, 1, 2, 1]);
    const restored = new BalancedMemory(4);
    const state = original.exportState();
    expect(state).toBeDefined();
    restored.importState(state!, [2], 3);

    add(original, [6, 7], [2, 0]);
    add(restored, [6, 7], [2, 0]);

    expect(storedIds(restored)).toEqual(storedIds(original));
    expect(restored.labels).toEqual(original.labels);
    original.dispose();
    restored.dispose();
  });

  it('exports nothing while empty', () => {
    expect(new BalancedMemory(3).exportState()).toBeUndefined();
  });

  it.each([
    { name: 'another sample shape', change: { shape: [2, 3] }, message: 'stores samples of shape [3], expected [2]' },
    { name: 'too many samples', change: {}, capacity: 1, message: 'has 2 samples, expected 1 to 1 (memory_size)' },
    { name: 'too few values', change: { values: [1, -1, 2] }, message: 'has 3 values, expected 4 for shape [2, 2]' },
    { name: 'too few labels', change: { labels: [0] }, message: 'has 1 labels and 2 arrivals, expected 2 of each' },
    { name: 'too few arrivals', change: { arrivals: [0] }, message: 'has 2 labels and 1 arrivals, expected 2 of each' },
    { name: 'a label out of range', change: { labels: [0, 99] }, message: 'has label 99 at index 1, expected a class index from 0 to 2' },
    { name: 'a fractional label', change: { labels: [0.5, 1] }, message: 'has label 0.5 at index 0, expected a class index from 0 to 2' },
    { name: 'repeated arrivals', change: { arrivals: [0, 0] }, message: 'has arrival 0 at index 1, expected integers of at least 0 in increasing order' },
  ])('rejects a state with $name', ({ change, capacity, message }) => {
    const source = new BalancedMemory(4);
    add(source, [1, 2], [0, 1]);
    const state = { ...source.exportState()!, ...change };
    const target = new BalancedMemory(capacity ?? 4);
    add(target, [7], [2]);
    const before = tf.memory().numTensors;

    expect(() => target.importState(state, [2], 3)).toThrow(InputError);
    expect(() => target.importState(state, [2], 3)).toThrow(`Invalid checkpoint: its sample memory ${message}.`);
    // A rejected state leaves the contents as they were.
    expect(storedIds(target)).toEqual([7]);
    expect(tf.memory().numTensors).toBe(before);
    source.dispose();
    target.dispose();
  });

  it('rejects a wrong label count', () => {
    const memory = new BalancedMemory(4);
    const batch = batchOf([1, 2, 3]);

    expect(() => memory.add(batch, [0, 1])).toThrow('Invalid memory input: 2 labels for a batch of 3 samples; pass one label per sample.');
    expect(memory.size).toBe(0);
    batch.dispose();
  });

  it.each([Number.NaN, 1.5, -3])('rejects the label %s', (label) => {
    const memory = new BalancedMemory(4);
    const batch = batchOf([1, 2]);

    expect(() => memory.add(batch, [0, label])).toThrow(
      `Invalid memory input: label ${label} at index 1; pass class indices, integers of at least 0.`,
    );
    expect(memory.size).toBe(0);
    batch.dispose();
  });

  it('rejects another sample shape', () => {
    const memory = new BalancedMemory(4);
    add(memory, [1], [0]);
    const wide = tf.zeros([1, 3]);

    expect(() => memory.add(wide, [0])).toThrow(
      'Invalid memory input: samples of shape [3], but the memory stores samples of shape [2]; pass batches of one sample shape.',
    );
    expect(storedIds(memory)).toEqual([1]);
    wide.dispose();
    memory.dispose();
  });

  it.each([0, -1, 2.5])('rejects a capacity of %s', (capacity) => {
    expect(() => new BalancedMemory(capacity)).toThrow(`Invalid memory capacity: ${capacity}; pass a positive integer.`);
  });
});
