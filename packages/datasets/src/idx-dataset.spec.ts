import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { DatasetError } from './errors.js';
import { loadIdxFolder } from './idx-dataset.js';
import {
  encodeIdx,
  makeTempFolder,
  removeFolder,
  syntheticPart,
  writeIdxFolder,
  type IdxPart,
} from './test-support/idx-files.js';

const TRAIN = syntheticPart(5, 4, 4, 11);
const TEST = syntheticPart(3, 4, 4, 90);

let folder: string;

beforeEach(() => {
  folder = makeTempFolder();
});

afterEach(() => {
  removeFolder(folder);
});

function loadError(load: () => unknown): DatasetError {
  try {
    load();
  } catch (error) {
    expect(error).toBeInstanceOf(DatasetError);
    return error as DatasetError;
  }
  throw new Error('the load did not throw');
}

describe('loadIdxFolder', () => {
  it('loads the MNIST layout', () => {
    writeIdxFolder(folder, { train: TRAIN, test: TEST });

    const dataset = loadIdxFolder(folder);

    expect(dataset.name).toBe(basename(folder));
    expect(dataset.height).toBe(4);
    expect(dataset.width).toBe(4);
    expect(dataset.channels).toBe(1);
    expect(dataset.numClasses).toBe(3);
    expect(dataset.classNames).toBeUndefined();
    expect(dataset.train.count).toBe(5);
    expect(dataset.test.count).toBe(3);
    expect(Array.from(dataset.train.labels)).toEqual(TRAIN.labels);
    expect(Array.from(dataset.test.labels)).toEqual(TEST.labels);
    expect(dataset.fingerprint).toMatch(/^[0-9a-f]{16}$/);
  });

  it('scales bytes to [0, 1]', () => {
    writeIdxFolder(folder, { train: TRAIN, test: TEST });

    const dataset = loadIdxFolder(folder);

    expect(dataset.train.images).toHaveLength(TRAIN.images.length);
    TRAIN.images.forEach((byte, i) => {
      expect(dataset.train.images[i]).toBeCloseTo(byte / 255, 6);
    });
  });

  it('uses the given name', () => {
    writeIdxFolder(folder, { train: TRAIN, test: TEST });

    expect(loadIdxFolder(folder, 'kmnist').name).toBe('kmnist');
  });

  it('gives gzipped and plain files one fingerprint', () => {
    const gzipFolder = makeTempFolder();
    try {
      writeIdxFolder(folder, { train: TRAIN, test: TEST });
      writeIdxFolder(gzipFolder, { train: TRAIN, test: TEST }, { gzip: true });

      const plain = loadIdxFolder(folder);
      const gzipped = loadIdxFolder(gzipFolder);

      expect(gzipped.fingerprint).toBe(plain.fingerprint);
      expect(gzipped.train.images).toEqual(plain.train.images);
    } finally {
      removeFolder(gzipFolder);
    }
  });

  it('changes the fingerprint with the data', () => {
    writeIdxFolder(folder, { train: TRAIN, test: TEST });
    const before = loadIdxFolder(folder).fingerprint;

    writeIdxFolder(folder, { train: TRAIN, test: syntheticPart(3, 4, 4, 91) });
    const after = loadIdxFolder(folder).fingerprint;

    expect(after).not.toBe(before);
  });

  it('transposes EMNIST images back upright', () => {
    // Upright image: 2 rows × 3 columns, pixel (y, x) = 10 (3 y + x) + 10.
    const upright = [10, 20, 30, 40, 50, 60];
    // EMNIST stores the transpose: 3 rows × 2 columns.
    const stored = [10, 40, 20, 50, 30, 60];
    const part: IdxPart = { rows: 3, columns: 2, images: stored, labels: [4] };
    writeIdxFolder(folder, { train: part, test: part }, { prefix: 'emnist-digits-', gzip: true });

    const dataset = loadIdxFolder(folder);

    expect(dataset.name).toBe('emnist-digits');
    expect(dataset.height).toBe(2);
    expect(dataset.width).toBe(3);
    expect(Array.from(dataset.train.images, (value) => Math.round(value * 255))).toEqual(upright);
    expect(Array.from(dataset.test.images, (value) => Math.round(value * 255))).toEqual(upright);
    expect(dataset.numClasses).toBe(5);
  });

  it('asks for a split among several EMNIST splits', () => {
    writeIdxFolder(folder, { train: TRAIN, test: TEST }, { prefix: 'emnist-letters-' });
    writeIdxFolder(folder, { train: TRAIN, test: TEST }, { prefix: 'emnist-balanced-' });

    const error = loadError(() => loadIdxFolder(folder));

    expect(error.message).toContain('several EMNIST splits (balanced, letters)');
    expect(error.message).toContain('emnistSplit');
  });

  it('loads the requested EMNIST split', () => {
    writeIdxFolder(folder, { train: TRAIN, test: TEST }, { prefix: 'emnist-letters-' });
    writeIdxFolder(folder, { train: TRAIN, test: syntheticPart(2, 4, 4, 5) }, { prefix: 'emnist-balanced-' });

    const dataset = loadIdxFolder(folder, undefined, { emnistSplit: 'balanced' });

    expect(dataset.name).toBe('emnist-balanced');
    expect(dataset.test.count).toBe(2);
  });

  it('prefers the plain file over the gzipped one', () => {
    writeIdxFolder(folder, { train: TRAIN, test: TEST });
    writeFileSync(join(folder, 'train-labels-idx1-ubyte.gz'), 'not gzip');

    expect(loadIdxFolder(folder).train.count).toBe(5);
  });

  it('lists the file names for a missing folder', () => {
    const missing = join(folder, 'absent');

    const error = loadError(() => loadIdxFolder(missing));

    expect(error.message).toContain(`IDX folder ${missing} not found`);
    for (const name of ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte']) {
      expect(error.message).toContain(name);
    }
    expect(error.message).toContain('emnist-<split>-');
  });

  it('rejects a file passed as the folder', () => {
    const path = join(folder, 'file');
    writeFileSync(path, '');

    expect(loadError(() => loadIdxFolder(path)).message).toContain('is a file, not a folder');
  });

  it('names a missing file', () => {
    writeIdxFolder(folder, { train: TRAIN, test: TEST });
    rmSync(join(folder, 't10k-labels-idx1-ubyte'));

    const error = loadError(() => loadIdxFolder(folder));

    expect(error.message).toContain(`IDX folder ${folder} is missing t10k-labels-idx1-ubyte[.gz];`);
  });

  it('rejects differing image and label counts', () => {
    writeIdxFolder(folder, { train: TRAIN, test: TEST });
    writeFileSync(join(folder, 'train-labels-idx1-ubyte'), encodeIdx([4], [0, 1, 2, 0]));

    const error = loadError(() => loadIdxFolder(folder));

    expect(error.message).toContain('contains 5 images');
    expect(error.message).toContain('contains 4 labels');
  });

  it('rejects differing train and test sizes', () => {
    writeIdxFolder(folder, { train: TRAIN, test: syntheticPart(3, 5, 4, 1) });

    const error = loadError(() => loadIdxFolder(folder));

    expect(error.message).toContain('training images of 4 × 4 × 1 but test images of 5 × 4 × 1');
  });

  it('rejects an image file of rank 2', () => {
    writeIdxFolder(folder, { train: TRAIN, test: TEST });
    writeFileSync(join(folder, 't10k-images-idx3-ubyte'), encodeIdx([3, 16], TEST.images));

    expect(loadError(() => loadIdxFolder(folder)).message).toContain('has 2 dimensions (3 × 16)');
  });

  it('rejects an empty part', () => {
    const empty: IdxPart = { rows: 4, columns: 4, images: [], labels: [] };
    writeIdxFolder(folder, { train: TRAIN, test: empty });

    expect(loadError(() => loadIdxFolder(folder)).message).toContain('is empty');
  });

  it('checks labels against class names', () => {
    writeIdxFolder(folder, { train: TRAIN, test: TEST });

    const named = loadIdxFolder(folder, 'named', { classNames: ['a', 'b', 'c', 'd'] });
    const error = loadError(() => loadIdxFolder(folder, 'named', { classNames: ['a', 'b'] }));

    expect(named.numClasses).toBe(4);
    expect(named.classNames).toEqual(['a', 'b', 'c', 'd']);
    expect(error.message).toContain('has label 2, but the data set defines 2 classes');
  });

  it('reports an invalid file by path', () => {
    mkdirSync(join(folder, 'nested'));
    writeIdxFolder(join(folder, 'nested'), { train: TRAIN, test: TEST });
    const badPath = join(folder, 'nested', 'train-images-idx3-ubyte');
    writeFileSync(badPath, new Uint8Array([0, 0, 8, 3, 0, 0]));

    expect(loadError(() => loadIdxFolder(join(folder, 'nested'))).message).toContain(badPath);
  });
});
