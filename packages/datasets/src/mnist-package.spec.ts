import { createRequire } from 'node:module';

import { beforeAll, describe, expect, it } from 'vitest';

import type { ImageDataset, ImageSplit } from './image-dataset.js';
import { loadMnistPackage } from './mnist-package.js';

/** The public API of the `mnist` package, used here only as an independent reference. */
interface MnistDigit {
  readonly length: number;
  get(index: number): number[];
}

const PIXELS = 28 * 28;
const mnist = createRequire(import.meta.url)('mnist') as MnistDigit[];

let dataset: ImageDataset;

beforeAll(() => {
  dataset = loadMnistPackage();
});

/** Identifies an image by its float32 bytes. */
function bytesKey(pixels: Float32Array): string {
  return Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength).toString('base64');
}

function imageKey(split: ImageSplit, index: number): string {
  return bytesKey(split.images.subarray(index * PIXELS, (index + 1) * PIXELS));
}

/** Compares typed arrays byte for byte; `toEqual` is too slow for millions of elements. */
function sameBytes(left: ArrayBufferView, right: ArrayBufferView): boolean {
  return Buffer.from(left.buffer, left.byteOffset, left.byteLength).equals(
    Buffer.from(right.buffer, right.byteOffset, right.byteLength),
  );
}

function classCounts(split: ImageSplit): number[] {
  const counts = new Array<number>(10).fill(0);
  for (const label of split.labels) {
    counts[label] = (counts[label] as number) + 1;
  }
  return counts;
}

describe('loadMnistPackage', () => {
  it('describes 28 × 28 grayscale digits', () => {
    expect(dataset.name).toBe('mnist');
    expect(dataset.height).toBe(28);
    expect(dataset.width).toBe(28);
    expect(dataset.channels).toBe(1);
    expect(dataset.numClasses).toBe(10);
    expect(dataset.classNames).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect(dataset.fingerprint).toMatch(/^[0-9a-f]{16}$/);
  });

  it('splits 80% of each class to train', () => {
    const packageCounts = mnist.slice(0, 10).map((digit) => digit.length);
    const expectedTrain = packageCounts.map((count) => Math.floor(count * 0.8));
    const expectedTest = packageCounts.map((count, label) => count - (expectedTrain[label] as number));

    expect(packageCounts.reduce((sum, count) => sum + count, 0)).toBe(10_000);
    expect(dataset.train.count).toBe(7_996);
    expect(dataset.test.count).toBe(2_004);
    expect(classCounts(dataset.train)).toEqual(expectedTrain);
    expect(classCounts(dataset.test)).toEqual(expectedTest);
    expect(dataset.train.images).toHaveLength(7_996 * PIXELS);
    expect(dataset.test.images).toHaveLength(2_004 * PIXELS);
  });

  it('covers every class in both parts', () => {
    for (const split of [dataset.train, dataset.test]) {
      for (const count of classCounts(split)) {
        expect(count).toBeGreaterThan(0);
      }
    }
  });

  it('puts the first digits of each class in train', () => {
    const trainKeys = new Set(Array.from({ length: dataset.train.count }, (_, i) => imageKey(dataset.train, i)));
    const testKeys = new Set(Array.from({ length: dataset.test.count }, (_, i) => imageKey(dataset.test, i)));

    for (let label = 0; label < 10; label++) {
      const digit = mnist[label] as MnistDigit;
      const trainCount = Math.floor(digit.length * 0.8);
      for (const index of [0, trainCount - 1, trainCount, digit.length - 1]) {
        const key = bytesKey(Float32Array.from(digit.get(index)));
        const inTrain = index < trainCount;
        expect(trainKeys.has(key), `digit ${label} #${index} in train`).toBe(inTrain);
        expect(testKeys.has(key), `digit ${label} #${index} in test`).toBe(!inTrain);
      }
    }
  });

  it('keeps train and test disjoint', () => {
    const trainKeys = new Set(Array.from({ length: dataset.train.count }, (_, i) => imageKey(dataset.train, i)));
    const overlap = Array.from({ length: dataset.test.count }, (_, i) => imageKey(dataset.test, i)).filter((key) =>
      trainKeys.has(key),
    );

    expect(trainKeys.size).toBe(dataset.train.count);
    expect(overlap).toHaveLength(0);
  });

  it('mixes classes within each part', () => {
    const firstBatch = new Set(dataset.test.labels.subarray(0, 64));

    expect(firstBatch.size).toBeGreaterThanOrEqual(8);
  });

  it('returns the same split on every call', () => {
    const again = loadMnistPackage();

    expect(again.fingerprint).toBe(dataset.fingerprint);
    expect(sameBytes(again.train.labels, dataset.train.labels)).toBe(true);
    expect(sameBytes(again.test.labels, dataset.test.labels)).toBe(true);
    expect(sameBytes(again.train.images, dataset.train.images)).toBe(true);
    expect(sameBytes(again.test.images, dataset.test.images)).toBe(true);
  });

  it('keeps pixels within [0, 1]', () => {
    for (const split of [dataset.train, dataset.test]) {
      let min = Infinity;
      let max = -Infinity;
      for (const value of split.images) {
        min = Math.min(min, value);
        max = Math.max(max, value);
      }
      expect(min).toBe(0);
      expect(max).toBeCloseTo(1, 2);
    }
  });

  it('stores the digit 1 as a vertical stroke', () => {
    // Ink-weighted spread of the rows and columns over all training 1s: an upright 1 is tall
    // and narrow, a transposed one would be wide and flat.
    let mass = 0;
    let sumY = 0;
    let sumX = 0;
    let sumYY = 0;
    let sumXX = 0;
    for (let i = 0; i < dataset.train.count; i++) {
      if (dataset.train.labels[i] !== 1) {
        continue;
      }
      for (let y = 0; y < 28; y++) {
        for (let x = 0; x < 28; x++) {
          const ink = dataset.train.images[i * PIXELS + y * 28 + x] as number;
          mass += ink;
          sumY += ink * y;
          sumX += ink * x;
          sumYY += ink * y * y;
          sumXX += ink * x * x;
        }
      }
    }
    const spreadY = Math.sqrt(sumYY / mass - (sumY / mass) ** 2);
    const spreadX = Math.sqrt(sumXX / mass - (sumX / mass) ** 2);

    expect(spreadY).toBeGreaterThan(2 * spreadX);
  });
});
