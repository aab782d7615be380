import { DatasetError } from './errors.js';
import type { ImageShape } from './image-dataset.js';
import {
  convolveSeparable,
  gaussianKernel,
  motionBlur,
  pixelate,
  samplePoisson,
  warpAffine,
  type ImageGeometry,
} from './image-ops.js';
import { mixSeed, Mulberry32 } from './random.js';

/** Names of the corruptions that {@link corruptImages} applies, in the style of MNIST-C and CIFAR-10-C. */
export const CORRUPTIONS = [
  'gaussian_noise',
  'shot_noise',
  'impulse_noise',
  'speckle_noise',
  'gaussian_blur',
  'motion_blur',
  'contrast',
  'brightness',
  'inverse',
  'rotate',
  'shear',
  'scale',
  'translate',
  'pixelate',
  'stripe',
] as const;

/** Name of one corruption. */
export type CorruptionName = (typeof CORRUPTIONS)[number];

/** Lowest corruption severity (mildest). */
export const MIN_SEVERITY = 1;

/** Highest corruption severity (strongest). */
export const MAX_SEVERITY = 5;

/**
 * The parameter of each corruption at severities 1 to 5, in the unit its description in
 * {@link corruptImages} gives.
 */
export const CORRUPTION_PARAMETERS: Readonly<Record<CorruptionName, readonly number[]>> = {
  gaussian_noise: [0.08, 0.12, 0.18, 0.26, 0.38],
  shot_noise: [60, 25, 12, 5, 3],
  impulse_noise: [0.03, 0.06, 0.09, 0.17, 0.27],
  speckle_noise: [0.15, 0.2, 0.35, 0.45, 0.6],
  gaussian_blur: [0.5, 0.75, 1, 1.25, 1.5],
  motion_blur: [3, 5, 7, 9, 11],
  contrast: [0.6, 0.45, 0.3, 0.2, 0.1],
  brightness: [0.1, 0.2, 0.3, 0.4, 0.5],
  inverse: [0.2, 0.4, 0.6, 0.8, 1],
  rotate: [10, 20, 30, 40, 50],
  shear: [0.1, 0.2, 0.3, 0.4, 0.5],
  scale: [0.9, 0.8, 0.7, 0.6, 0.5],
  translate: [0.03, 0.06, 0.09, 0.12, 0.16],
  pixelate: [2, 3, 4, 5, 6],
  stripe: [0.05, 0.1, 0.15, 0.2, 0.25],
};

/**
 * Corrupts one image: reads `source`, writes `target` (same length, clamped by the caller) and
 * draws any randomness from `random`, the image's own generator.
 */
type ImageCorruption = (
  source: Float32Array,
  target: Float32Array,
  geometry: ImageGeometry,
  parameter: number,
  random: Mulberry32,
  scratch: Float32Array,
) => void;

const APPLY: Readonly<Record<CorruptionName, ImageCorruption>> = {
  gaussian_noise: (source, target, _geometry, sigma, random) => {
    for (let i = 0; i < source.length; i++) {
      target[i] = (source[i] as number) + sigma * random.normal();
    }
  },

  shot_noise: (source, target, _geometry, photons, random) => {
    const uniform = (): number => random.next();
    const normal = (): number => random.normal();
    for (let i = 0; i < source.length; i++) {
      const mean = Math.max(0, source[i] as number) * photons;
      target[i] = samplePoisson(mean, uniform, normal) / photons;
    }
  },

  impulse_noise: (source, target, _geometry, amount, random) => {
    // Both draws happen for every pixel, so a pixel hit at one severity is hit, with the same
    // salt or pepper value, at every higher severity.
    for (let i = 0; i < source.length; i++) {
      const hit = random.next() < amount;
      const impulseValue = random.next() < 0.5 ? 1 : 0; // salt (1) or pepper (0)
      target[i] = hit ? impulseValue : (source[i] as number);
    }
  },

  speckle_noise: (source, target, _geometry, sigma, random) => {
    for (let i = 0; i < source.length; i++) {
      const value = source[i] as number;
      target[i] = value + value * sigma * random.normal();
    }
  },

  gaussian_blur: (source, target, geometry, sigma, _random, scratch) => {
    convolveSeparable(source, target, scratch, geometry, gaussianKernel(sigma));
  },

  motion_blur: (source, target, geometry, taps, random) => {
    const angle = ((random.next() - 0.5) * Math.PI) / 2;
    motionBlur(source, target, geometry, taps, angle);
  },

  contrast: (source, target, _geometry, factor) => {
    let sum = 0;
    for (const value of source) {
      sum += value;
    }
    const mean = sum / source.length;
    for (let i = 0; i < source.length; i++) {
      target[i] = mean + ((source[i] as number) - mean) * factor;
    }
  },

  brightness: (source, target, _geometry, offset) => {
    for (let i = 0; i < source.length; i++) {
      target[i] = (source[i] as number) + offset;
    }
  },

  inverse: (source, target, _geometry, weight) => {
    for (let i = 0; i < source.length; i++) {
      const value = source[i] as number;
      target[i] = (1 - weight) * value + weight * (1 - value);
    }
  },

  rotate: (source, target, geometry, degrees, random) => {
    const angle = (randomSign(random) * degrees * Math.PI) / 180;
    const cos = Math.cos(angle);
    const sin = Math.sin(angle);
    warpAffine(source, target, geometry, [cos, sin, -sin, cos], 0, 0);
  },

  shear: (source, target, geometry, factor, random) => {
    const shear = randomSign(random) * factor;
    warpAffine(source, target, geometry, [1, -shear, 0, 1], 0, 0);
  },

  scale: (source, target, geometry, factor) => {
    warpAffine(source, target, geometry, [1 / factor, 0, 0, 1 / factor], 0, 0);
  },

  translate: (source, target, geometry, fraction, random) => {
    const direction = 2 * Math.PI * random.next();
    const shiftX = fraction * geometry.width * Math.cos(direction);
    const shiftY = fraction * geometry.height * Math.sin(direction);
    warpAffine(source, target, geometry, [1, 0, 0, 1], shiftX, shiftY);
  },

  pixelate: (source, target, geometry, block) => {
    pixelate(source, target, geometry, block);
  },

  stripe: (source, target, geometry, fraction, random) => {
    const { height, width, channels } = geometry;
    const vertical = random.next() < 0.5;
    const length = vertical ? width : height;
    const stripeWidth = Math.max(1, Math.round(fraction * length));
    // The centre is drawn once per image, so stripes of higher severities contain those of
    // lower ones.
    const centre = random.next() * length;
    const start = Math.max(0, Math.floor(centre - stripeWidth / 2));
    const end = Math.min(length, Math.floor(centre - stripeWidth / 2) + stripeWidth);

    target.set(source);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const position = vertical ? x : y;
        if (position < start || position >= end) {
          continue;
        }
        for (let channel = 0; channel < channels; channel++) {
          const index = (y * width + x) * channels + channel;
          target[index] = 1 - (source[index] as number);
        }
      }
    }
  },
};

/**
 * Returns a corrupted copy of a batch of images, in the style of MNIST-C (Mu and Gilmer, 2019)
 * and CIFAR-10-C (Hendrycks and Dietterich, 2019). `images` is not modified.
 *
 * Parameters per severity are in {@link CORRUPTION_PARAMETERS}:
 * - `gaussian_noise`: adds N(0, σ²) per pixel, σ as listed.
 * - `shot_noise`: Poisson noise, Poisson(x λ) / λ with λ photons at full intensity.
 * - `impulse_noise`: salt-and-pepper noise, the listed fraction of pixels set to 0 or 1.
 * - `speckle_noise`: adds x · N(0, σ²) per pixel.
 * - `gaussian_blur`: Gaussian blur with σ in pixels.
 * - `motion_blur`: averages the listed number of samples, one pixel apart, on a line at a
 *   random angle in [−45°, 45°] from horizontal.
 * - `contrast`: scales the distance from the image mean by the listed factor.
 * - `brightness`: adds the listed offset.
 * - `inverse`: blends toward the negative, (1 − w) x + w (1 − x), with weight w.
 * - `rotate`: rotates by the listed degrees, in a random direction.
 * - `shear`: horizontal shear with the listed factor, in a random direction.
 * - `scale`: shrinks about the centre by the listed factor.
 * - `translate`: shifts by the listed fraction of the image size in a random direction.
 * - `pixelate`: replaces each tile of the listed side in pixels by its mean.
 * - `stripe`: inverts a horizontal or vertical band, of the listed fraction of the image size,
 *   at a random position.
 *
 * Geometric corruptions fill pixels from outside the image with black (0); blurs repeat the
 * edge pixels. Every output is clamped to [0, 1].
 *
 * Randomness comes from a Mulberry32 generator per image, seeded from `seed`, the corruption
 * name and the image index, so a result depends only on those and on the image. The draws do
 * not depend on the severity, so each severity applies the same noise pattern, angle or
 * position at a larger strength.
 *
 * @param shape - layout of `images`: `count` images of `height` × `width` × `channels`, NHWC.
 * @param severity - integer from 1 (mild) to 5 (strong).
 * @param seed - integer seed; the same seed gives the same output.
 * @throws DatasetError on an unknown name, a severity outside 1 to 5, a seed that is not a
 *   safe integer, or a shape that does not match the length of `images`.
 */
export function corruptImages(
  images: Float32Array,
  shape: ImageShape,
  name: string,
  severity: number,
  seed: number,
): Float32Array {
  checkShape(images, shape);
  const corruption = checkName(name);
  checkSeverity(severity);
  if (!Number.isSafeInteger(seed)) {
    throw new DatasetError(`Corruption seed ${seed} is invalid; use an integer.`);
  }

  const geometry: ImageGeometry = { height: shape.height, width: shape.width, channels: shape.channels };
  const imageLength = shape.height * shape.width * shape.channels;
  const parameter = CORRUPTION_PARAMETERS[corruption][severity - 1] as number;
  const apply = APPLY[corruption];
  const nameSeed = hashName(corruption);
  const output = new Float32Array(images.length);
  const scratch = new Float32Array(imageLength);

  for (let image = 0; image < shape.count; image++) {
    const start = image * imageLength;
    const random = new Mulberry32(mixSeed(seed, nameSeed, image));
    apply(images.subarray(start, start + imageLength), output.subarray(start, start + imageLength), geometry, parameter, random, scratch);
  }

  for (let i = 0; i < output.length; i++) {
    output[i] = Math.min(Math.max(output[i] as number, 0), 1);
  }
  return output;
}

/** Returns whether `name` is one of {@link CORRUPTIONS}. */
export function isCorruptionName(name: string): name is CorruptionName {
  return (CORRUPTIONS as readonly string[]).includes(name);
}

function checkName(name: string): CorruptionName {
  if (!isCorruptionName(name)) {
    throw new DatasetError(`Unknown corruption '${name}'; valid corruptions are ${CORRUPTIONS.join(', ')}.`);
  }
  return name;
}

function checkSeverity(severity: number): void {
  if (!Number.isInteger(severity) || severity < MIN_SEVERITY || severity > MAX_SEVERITY) {
    throw new DatasetError(
      `Corruption severity ${severity} is invalid; use an integer from ${MIN_SEVERITY} to ${MAX_SEVERITY}.`,
    );
  }
}

function checkShape(images: Float32Array, shape: ImageShape): void {
  const sizes = { count: shape.count, height: shape.height, width: shape.width, channels: shape.channels };
  for (const [key, size] of Object.entries(sizes)) {
    const minimum = key === 'count' ? 0 : 1;
    if (!Number.isInteger(size) || size < minimum) {
      throw new DatasetError(`Image shape ${key} ${size} is invalid; use an integer of at least ${minimum}.`);
    }
  }

  const expected = shape.count * shape.height * shape.width * shape.channels;
  if (images.length !== expected) {
    throw new DatasetError(
      `Image array has ${images.length} values, but shape ${shape.count} × ${shape.height} × ` +
        `${shape.width} × ${shape.channels} needs ${expected}; pass the shape of the images.`,
    );
  }
}

function randomSign(random: Mulberry32): number {
  return random.next() < 0.5 ? -1 : 1;
}

/** FNV-1a hash of the name, so that each corruption draws its own random stream. */
function hashName(name: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    hash = Math.imul(hash ^ name.charCodeAt(i), 0x01000193);
  }
  return hash >>> 0;
}
