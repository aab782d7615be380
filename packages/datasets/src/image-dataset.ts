/** Image and label arrays of one part (train or test) of a data set. */
export interface ImageSplit {
  /**
   * Pixels in [0, 1] in NHWC order, flattened: pixel (y, x, c) of image i is at
   * `((i * height + y) * width + x) * channels + c`.
   */
  readonly images: Float32Array;
  /** Class index of each image, in [0, numClasses). */
  readonly labels: Uint8Array;
  /** Number of images. */
  readonly count: number;
}

/** A labelled image classification data set with a fixed train/test split. */
export interface ImageDataset {
  /** Short name for logs and reports, such as `mnist` or `fashion-mnist`. */
  readonly name: string;
  /** Image height in pixels. */
  readonly height: number;
  /** Image width in pixels. */
  readonly width: number;
  /** Channels per pixel: 1 for the grayscale data sets loaded here. */
  readonly channels: number;
  /** Number of classes: labels lie in [0, numClasses). */
  readonly numClasses: number;
  /** Human-readable name of each class, indexed by label, when the data set defines them. */
  readonly classNames?: readonly string[];
  /** Training images. */
  readonly train: ImageSplit;
  /** Test images, disjoint from the training images. */
  readonly test: ImageSplit;
  /**
   * First 16 hex characters of a SHA-256 over the data as read, so that a model trained on
   * the data set can be cached and reused while the data is unchanged.
   */
  readonly fingerprint: string;
}

/** Layout of a batch of images stored as one flat NHWC array. */
export interface ImageShape {
  /** Number of images. */
  readonly count: number;
  /** Image height in pixels. */
  readonly height: number;
  /** Image width in pixels. */
  readonly width: number;
  /** Channels per pixel. */
  readonly channels: number;
}

/** Number of hex characters of the SHA-256 digest kept as a data set fingerprint. */
export const FINGERPRINT_LENGTH = 16;
