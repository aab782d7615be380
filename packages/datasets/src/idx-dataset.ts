import { createHash, type Hash } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';

import { DatasetError } from './errors.js';
import { parseIdx, readIdxBytes, type IdxArray } from './idx.js';
import { FINGERPRINT_LENGTH, type ImageDataset, type ImageSplit } from './image-dataset.js';

/** Options of {@link loadIdxFolder}. */
export interface IdxFolderOptions {
  /**
   * EMNIST split to load (`balanced`, `byclass`, `digits`, `letters`, `mnist`, …) from a folder
   * that contains several. A folder with exactly one split needs no option.
   */
  readonly emnistSplit?: string;
  /**
   * Class names indexed by label. When given, `numClasses` is their count and a label outside
   * it is an error; otherwise `numClasses` is the largest label plus one.
   */
  readonly classNames?: readonly string[];
}

/** File names of the MNIST layout, shared by MNIST, Fashion-MNIST and KMNIST. */
const IDX_FILE_NAMES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

/** EMNIST names its files `emnist-<split>-train-images-idx3-ubyte` and so on. */
const EMNIST_TRAIN_IMAGES = /^emnist-([a-z0-9]+)-train-images-idx3-ubyte(\.gz)?$/;

type FileRole = keyof typeof IDX_FILE_NAMES;

interface FolderLayout {
  /** Prefix before the MNIST file names: empty, or `emnist-<split>-`. */
  readonly prefix: string;
  /** EMNIST stores each image transposed (column-major); it is transposed back on load. */
  readonly transposed: boolean;
  readonly defaultName: string;
}

/**
 * Loads a folder of IDX files in the MNIST layout (`train-images-idx3-ubyte`,
 * `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each
 * optionally gzipped as `.gz`), as shipped by MNIST, Fashion-MNIST and KMNIST, or in the EMNIST
 * layout (the same names prefixed by `emnist-<split>-`).
 *
 * EMNIST images are stored transposed and are transposed back, so that every data set loaded
 * here is upright. When a file exists both plain and gzipped, the plain one is read. The
 * fingerprint is a SHA-256 over the four files' uncompressed content, so gzipping a file does
 * not change it.
 *
 * @param name - data set name; defaults to `emnist-<split>` for EMNIST and to the folder's
 *   base name otherwise.
 * @throws DatasetError when the folder or one of its four files is missing, and the message
 *   then lists the file names looked for. Also when a file is not a valid IDX file, image and
 *   label counts differ, or train and test images differ in size.
 */
export function loadIdxFolder(
  folder: string,
  name?: string,
  options: IdxFolderOptions = {},
): ImageDataset {
  const entries = listFolder(folder);
  const layout = findLayout(folder, entries, options.emnistSplit);
  const paths = findFiles(folder, entries, layout);

  const hash = createHash('sha256');
  hash.update(layout.transposed ? 'idx-folder transposed\n' : 'idx-folder\n');
  const trainImages = readHashed(paths.trainImages, hash);
  const trainLabels = readHashed(paths.trainLabels, hash);
  const testImages = readHashed(paths.testImages, hash);
  const testLabels = readHashed(paths.testLabels, hash);

  const trainShape = checkImagesAndLabels(trainImages, paths.trainImages, trainLabels, paths.trainLabels);
  const testShape = checkImagesAndLabels(testImages, paths.testImages, testLabels, paths.testLabels);
  const trainSize = `${trainShape.rows} × ${trainShape.columns} × ${trainShape.channels}`;
  const testSize = `${testShape.rows} × ${testShape.columns} × ${testShape.channels}`;
  if (trainSize !== testSize) {
    throw new DatasetError(
      `IDX folder ${folder} has training images of ${trainSize} but test images of ` +
        `${testSize}; both parts of a data set must have the same image size.`,
    );
  }

  const numClasses = countClasses(folder, [trainLabels.data, testLabels.data], options.classNames);
  const train = toSplit(trainImages, trainLabels, layout.transposed);
  const test = toSplit(testImages, testLabels, layout.transposed);

  return {
    name: name ?? layout.defaultName,
    height: layout.transposed ? trainShape.columns : trainShape.rows,
    width: layout.transposed ? trainShape.rows : trainShape.columns,
    channels: trainShape.channels,
    numClasses,
    ...(options.classNames === undefined ? {} : { classNames: [...options.classNames] }),
    train,
    test,
    fingerprint: hash.digest('hex').slice(0, FINGERPRINT_LENGTH),
  };
}

/** Lists the names that {@link loadIdxFolder} looks for, for error messages. */
function describeExpectedFiles(): string {
  const mnistNames = Object.values(IDX_FILE_NAMES).map((fileName) => `${fileName}[.gz]`);
  return (
    `${mnistNames.join(', ')} (MNIST, Fashion-MNIST, KMNIST), or the same names prefixed by ` +
    'emnist-<split>- (EMNIST)'
  );
}

function listFolder(folder: string): string[] {
  try {
    if (!statSync(folder).isDirectory()) {
      throw new DatasetError(
        `IDX folder ${folder} is a file, not a folder; pass a folder that contains ` +
          `${describeExpectedFiles()}.`,
      );
    }
    return readdirSync(folder);
  } catch (error) {
    if (error instanceof DatasetError) {
      throw error;
    }
    const code = (error as NodeJS.ErrnoException).code;
    const problem = code === 'ENOENT' ? 'not found' : `cannot be read (${(error as Error).message})`;
    throw new DatasetError(
      `IDX folder ${folder} ${problem}; pass a folder that contains ${describeExpectedFiles()}.`,
      { cause: error },
    );
  }
}

function findLayout(folder: string, entries: string[], emnistSplit: string | undefined): FolderLayout {
  if (emnistSplit !== undefined) {
    return { prefix: `emnist-${emnistSplit}-`, transposed: true, defaultName: `emnist-${emnistSplit}` };
  }

  const hasMnistFile = Object.values(IDX_FILE_NAMES).some(
    (fileName) => entries.includes(fileName) || entries.includes(`${fileName}.gz`),
  );
  const splits = [...new Set(entries.flatMap((entry) => EMNIST_TRAIN_IMAGES.exec(entry)?.[1] ?? []))].sort();

  if (hasMnistFile || splits.length === 0) {
    return { prefix: '', transposed: false, defaultName: basename(resolve(folder)) };
  }
  if (splits.length > 1) {
    throw new DatasetError(
      `IDX folder ${folder} contains several EMNIST splits (${splits.join(', ')}); choose one ` +
        'with the emnistSplit option.',
    );
  }

  const split = splits[0] as string;
  return { prefix: `emnist-${split}-`, transposed: true, defaultName: `emnist-${split}` };
}

function findFiles(folder: string, entries: string[], layout: FolderLayout): Record<FileRole, string> {
  const found: Partial<Record<FileRole, string>> = {};
  const missing: string[] = [];

  for (const [role, fileName] of Object.entries(IDX_FILE_NAMES) as [FileRole, string][]) {
    const plain = `${layout.prefix}${fileName}`;
    const match = [plain, `${plain}.gz`].find((candidate) => entries.includes(candidate));
    if (match === undefined) {
      missing.push(`${plain}[.gz]`);
    } else {
      found[role] = join(folder, match);
    }
  }

  if (missing.length > 0) {
    throw new DatasetError(
      `IDX folder ${folder} is missing ${missing.join(', ')}; it must contain ` +
        `${describeExpectedFiles()}.`,
    );
  }
  return found as Record<FileRole, string>;
}

function readHashed(path: string, hash: Hash): IdxArray {
  const bytes = readIdxBytes(path);
  hash.update(bytes);
  return parseIdx(bytes, path);
}

interface StoredImageShape {
  readonly count: number;
  readonly rows: number;
  readonly columns: number;
  readonly channels: number;
}

function checkImagesAndLabels(
  images: IdxArray,
  imagesPath: string,
  labels: IdxArray,
  labelsPath: string,
): StoredImageShape {
  if (images.dims.length !== 3 && images.dims.length !== 4) {
    throw new DatasetError(
      `IDX image file ${imagesPath} has ${images.dims.length} dimensions (${images.dims.join(' × ')}); ` +
        'image files have 3 (count × rows × columns) or 4 (count × rows × columns × channels).',
    );
  }
  if (labels.dims.length !== 1) {
    throw new DatasetError(
      `IDX label file ${labelsPath} has ${labels.dims.length} dimensions (${labels.dims.join(' × ')}); ` +
        'label files have 1 (count).',
    );
  }

  const [count, rows, columns, channels = 1] = images.dims as [number, number, number, number?];
  const labelCount = labels.dims[0] as number;
  if (count !== labelCount) {
    throw new DatasetError(
      `IDX image file ${imagesPath} contains ${count} images but label file ${labelsPath} contains ` +
        `${labelCount} labels; the counts must be equal.`,
    );
  }
  if (count === 0 || rows === 0 || columns === 0 || channels === 0) {
    throw new DatasetError(
      `IDX image file ${imagesPath} is empty (dimensions ${images.dims.join(' × ')}); each part ` +
        'of a data set needs at least one image.',
    );
  }

  return { count, rows, columns, channels };
}

function countClasses(
  folder: string,
  labelArrays: readonly Uint8Array[],
  classNames: readonly string[] | undefined,
): number {
  let maxLabel = 0;
  for (const labels of labelArrays) {
    for (const label of labels) {
      if (label > maxLabel) {
        maxLabel = label;
      }
    }
  }

  if (classNames === undefined) {
    return maxLabel + 1;
  }
  if (maxLabel >= classNames.length) {
    throw new DatasetError(
      `IDX folder ${folder} has label ${maxLabel}, but the data set defines ${classNames.length} ` +
        `classes (labels 0 to ${classNames.length - 1}); check that the folder contains the expected data set.`,
    );
  }
  return classNames.length;
}

function toSplit(images: IdxArray, labels: IdxArray, transposed: boolean): ImageSplit {
  const [count, rows, columns, channels = 1] = images.dims as [number, number, number, number?];
  const pixels = new Float32Array(images.data.length);
  const source = images.data;

  if (!transposed) {
    for (let i = 0; i < source.length; i++) {
      pixels[i] = (source[i] as number) / 255;
    }
  } else {
    // Stored pixel (row r, column c) is pixel (y = c, x = r) of the upright image, whose
    // height is the stored column count and width the stored row count.
    const imageSize = rows * columns * channels;
    for (let image = 0; image < count; image++) {
      const base = image * imageSize;
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < columns; c++) {
          const from = base + (r * columns + c) * channels;
          const to = base + (c * rows + r) * channels;
          for (let channel = 0; channel < channels; channel++) {
            pixels[to + channel] = (source[from + channel] as number) / 255;
          }
        }
      }
    }
  }

  return { images: pixels, labels: Uint8Array.from(labels.data), count };
}
