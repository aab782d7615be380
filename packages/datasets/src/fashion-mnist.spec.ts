import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { DatasetError } from './errors.js';
import { FASHION_MNIST_CLASS_NAMES, FASHION_MNIST_DIR, loadFashionMnist } from './fashion-mnist.js';
import { makeTempFolder, removeFolder, syntheticPart, writeIdxFolder } from './test-support/idx-files.js';

describe('loadFashionMnist', () => {
  let folder: string;

  beforeEach(() => {
    folder = makeTempFolder();
  });

  afterEach(() => {
    removeFolder(folder);
  });

  it.skipIf(!existsSync(FASHION_MNIST_DIR))('loads the Debian folder', { timeout: 30_000 }, () => {
    const dataset = loadFashionMnist();

    expect(dataset.name).toBe('fashion-mnist');
    expect(dataset.train.count).toBe(60_000);
    expect(dataset.test.count).toBe(10_000);
    expect(dataset.height).toBe(28);
    expect(dataset.width).toBe(28);
    expect(dataset.channels).toBe(1);
    expect(dataset.numClasses).toBe(10);
    expect(dataset.classNames).toEqual(FASHION_MNIST_CLASS_NAMES);
    expect(dataset.train.images).toHaveLength(60_000 * 28 * 28);

    // Fashion-MNIST is balanced: 6,000 training and 1,000 test images per class.
    for (const [split, perClass] of [
      [dataset.train, 6_000],
      [dataset.test, 1_000],
    ] as const) {
      const counts = new Array<number>(10).fill(0);
      for (const label of split.labels) {
        counts[label] = (counts[label] as number) + 1;
      }
      expect(counts).toEqual(new Array<number>(10).fill(perClass));
    }

    let min = Infinity;
    let max = -Infinity;
    for (const value of dataset.test.images) {
      min = Math.min(min, value);
      max = Math.max(max, value);
    }
    expect(min).toBe(0);
    expect(max).toBe(1);
  });

  it('explains how to install a missing folder', () => {
    const missing = join(folder, 'fashion-mnist');

    let caught: unknown;
    try {
      loadFashionMnist(missing);
    } catch (error) {
      caught = error;
    }

    expect(caught).toBeInstanceOf(DatasetError);
    const message = (caught as DatasetError).message;
    expect(message).toContain(`Fashion-MNIST folder ${missing} not found`);
    expect(message).toContain('apt-get install dataset-fashion-mnist');
    expect(message).toContain('pass a folder containing the four IDX files');
    expect((caught as DatasetError).exitStatus).toBe(2);
  });

  it('loads another folder with class names', () => {
    writeIdxFolder(folder, { train: syntheticPart(4, 3, 3, 2, 10), test: syntheticPart(2, 3, 3, 7, 10) }, { gzip: true });

    const dataset = loadFashionMnist(folder);

    expect(dataset.name).toBe('fashion-mnist');
    expect(dataset.numClasses).toBe(10);
    expect(dataset.classNames?.[9]).toBe('Ankle boot');
    expect(dataset.train.count).toBe(4);
  });

  it('rejects labels beyond ten classes', () => {
    writeIdxFolder(folder, { train: syntheticPart(12, 3, 3, 0, 12), test: syntheticPart(2, 3, 3, 0, 12) });

    expect(() => loadFashionMnist(folder)).toThrow(/has label 11, but the data set defines 10 classes/);
  });
});
