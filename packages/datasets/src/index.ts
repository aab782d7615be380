export { DatasetError } from './errors.js';
export { parseIdx, readIdxFile, type IdxArray } from './idx.js';
export { loadIdxFolder, type IdxFolderOptions } from './idx-dataset.js';
export { FINGERPRINT_LENGTH, type ImageDataset, type ImageShape, type ImageSplit } from './image-dataset.js';
export { loadMnistPackage, MNIST_PACKAGE_SHUFFLE_SEED, MNIST_PACKAGE_TRAIN_FRACTION } from './mnist-package.js';
export { FASHION_MNIST_CLASS_NAMES, FASHION_MNIST_DIR, loadFashionMnist } from './fashion-mnist.js';
export { loadDataset } from './load-dataset.js';
export {
  CORRUPTION_PARAMETERS,
  CORRUPTIONS,
  corruptImages,
  isCorruptionName,
  MAX_SEVERITY,
  MIN_SEVERITY,
  type CorruptionName,
} from './corruptions.js';
