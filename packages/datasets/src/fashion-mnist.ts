import { existsSync } from 'node:fs';

import { DatasetError } from './errors.js';
import { loadIdxFolder } from './idx-dataset.js';
import type { ImageDataset } from './image-dataset.js';

/** Folder where Debian's package `dataset-fashion-mnist` installs the four gzipped IDX files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** Fashion-MNIST class names indexed by label, as listed by Zalando Research. */
export const FASHION_MNIST_CLASS_NAMES: readonly string[] = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

/**
 * Loads Fashion-MNIST (60,000 training and 10,000 test images, 28 × 28 grayscale, 10 classes)
 * from a folder of IDX files in the MNIST layout, with the data set's own train/test split.
 *
 * @throws DatasetError when the folder is missing (the message explains how to install it), a file
 *   is missing or invalid, or a label is outside the 10 classes.
 */
export function loadFashionMnist(folder: string = FASHION_MNIST_DIR): ImageDataset {
  if (!existsSync(folder)) {
    throw new DatasetError(
      `Fashion-MNIST folder ${folder} not found; install Debian's package with ` +
        '`apt-get install dataset-fashion-mnist`, or pass a folder containing the four IDX files ' +
        '(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, ' +
        't10k-labels-idx1-ubyte, each optionally gzipped).',
    );
  }

  return loadIdxFolder(folder, 'fashion-mnist', { classNames: FASHION_MNIST_CLASS_NAMES });
}
