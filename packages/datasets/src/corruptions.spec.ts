import { beforeAll, describe, expect, it } from 'vitest';

import {
  CORRUPTION_PARAMETERS,
  CORRUPTIONS,
  corruptImages,
  isCorruptionName,
  type CorruptionName,
} from './corruptions.js';
import { DatasetError } from './errors.js';
import type { ImageShape } from './image-dataset.js';
import { loadMnistPackage } from './mnist-package.js';

/** Corruptions that draw random numbers; the others ignore the seed. */
const RANDOM_CORRUPTIONS: ReadonlySet<CorruptionName> = new Set([
  'gaussian_noise',
  'shot_noise',
  'impulse_noise',
  'speckle_noise',
  'motion_blur',
  'rotate',
  'shear',
  'translate',
  'stripe',
]);

const SAMPLE_COUNT = 200;
const SEVERITIES = [1, 2, 3, 4, 5] as const;

let digits: Float32Array;
let shape: ImageShape;

beforeAll(() => {
  const dataset = loadMnistPackage();
  shape = { count: SAMPLE_COUNT, height: dataset.height, width: dataset.width, channels: dataset.channels };
  digits = dataset.test.images.slice(0, SAMPLE_COUNT * dataset.height * dataset.width);
});

function meanAbsoluteDifference(left: Float32Array, right: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < left.length; i++) {
    sum += Math.abs((left[i] as number) - (right[i] as number));
  }
  return sum / left.length;
}

function sameValues(left: Float32Array, right: Float32Array): boolean {
  return Buffer.from(left.buffer, left.byteOffset, left.byteLength).equals(
    Buffer.from(right.buffer, right.byteOffset, right.byteLength),
  );
}

function filled(length: number, value: number): Float32Array {
  return new Float32Array(length).fill(value);
}

function captureError(run: () => unknown): DatasetError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(DatasetError);
    return error as DatasetError;
  }
  throw new Error('the call did not throw');
}

describe.each(CORRUPTIONS.map((name) => ({ name })))('corruptImages $name', ({ name }) => {
  it('keeps outputs within [0, 1]', () => {
    for (const severity of [1, 5]) {
      const output = corruptImages(digits, shape, name, severity, 3);

      expect(output).toHaveLength(digits.length);
      let min = Infinity;
      let max = -Infinity;
      for (const value of output) {
        min = Math.min(min, value);
        max = Math.max(max, value);
      }
      expect(min, `severity ${severity} min`).toBeGreaterThanOrEqual(0);
      expect(max, `severity ${severity} max`).toBeLessThanOrEqual(1);
    }
  });

  it('leaves the input untouched', () => {
    const copy = digits.slice();

    const output = corruptImages(digits, shape, name, 4, 3);

    expect(output).not.toBe(digits);
    expect(sameValues(digits, copy)).toBe(true);
  });

  it('repeats exactly for a seed', () => {
    const first = corruptImages(digits, shape, name, 3, 42);
    const second = corruptImages(digits, shape, name, 3, 42);

    expect(sameValues(first, second)).toBe(true);
  });

  it('depends on the seed only if random', () => {
    const first = corruptImages(digits, shape, name, 3, 42);
    const second = corruptImages(digits, shape, name, 3, 43);

    expect(sameValues(first, second)).toBe(!RANDOM_CORRUPTIONS.has(name));
  });

  it('changes digits more at higher severity', () => {
    for (const seed of [1, 2]) {
      const differences = SEVERITIES.map((severity) =>
        meanAbsoluteDifference(corruptImages(digits, shape, name, severity, seed), digits),
      );

      expect(differences[0], `seed ${seed}, severity 1`).toBeGreaterThan(0);
      for (let level = 1; level < differences.length; level++) {
        expect(differences[level], `seed ${seed}, severity ${level + 1} over ${level}`).toBeGreaterThan(
          differences[level - 1] as number,
        );
      }
    }
  });

  it('corrupts each image independently of the batch', () => {
    const imageLength = shape.height * shape.width * shape.channels;
    const firstThree = digits.slice(0, 3 * imageLength);

    const batch = corruptImages(digits, shape, name, 2, 8);
    const part = corruptImages(firstThree, { ...shape, count: 3 }, name, 2, 8);

    expect(sameValues(part, batch.subarray(0, 3 * imageLength))).toBe(true);
  });

  it('treats identical channels alike', () => {
    // With three equal channels, a corruption without per-pixel noise gives three equal
    // channels, each equal to the one-channel result.
    if (name.endsWith('_noise')) {
      return;
    }
    const count = 4;
    const imageLength = shape.height * shape.width;
    const gray = digits.slice(0, count * imageLength);
    const rgb = new Float32Array(gray.length * 3);
    gray.forEach((value, i) => rgb.fill(value, 3 * i, 3 * i + 3));

    const grayOut = corruptImages(gray, { ...shape, count }, name, 3, 5);
    const rgbOut = corruptImages(rgb, { ...shape, count, channels: 3 }, name, 3, 5);

    let maxError = 0;
    for (let i = 0; i < grayOut.length; i++) {
      for (let channel = 0; channel < 3; channel++) {
        maxError = Math.max(maxError, Math.abs((rgbOut[3 * i + channel] as number) - (grayOut[i] as number)));
      }
    }
    expect(maxError).toBeLessThan(1e-6);
  });
});

describe('corruptImages parameters', () => {
  it('lists five increasing-strength parameters each', () => {
    for (const name of CORRUPTIONS) {
      expect(CORRUPTION_PARAMETERS[name], name).toHaveLength(5);
    }
  });

  it('adds gaussian noise of the listed σ', () => {
    const gray = filled(20_000, 0.5);

    const output = corruptImages(gray, { count: 100, height: 10, width: 20, channels: 1 }, 'gaussian_noise', 1, 1);

    let sum = 0;
    let sumSquares = 0;
    for (const value of output) {
      sum += value - 0.5;
      sumSquares += (value - 0.5) ** 2;
    }
    const mean = sum / output.length;
    const sigma = Math.sqrt(sumSquares / output.length - mean * mean);
    expect(Math.abs(mean)).toBeLessThan(0.003);
    expect(sigma).toBeCloseTo(0.08, 2);
  });

  it.each([
    { gray: 0.2, path: 'exact sampling' },
    { gray: 0.6, path: 'normal approximation' },
  ])('gives Poisson shot noise at $gray ($path)', ({ gray }) => {
    // Severity 1 has λ = 60 photons at full intensity, so a pixel of value x counts Poisson(60 x)
    // photons: mean x and standard deviation sqrt(x / 60) after dividing by 60.
    const input = filled(20_000, gray);

    const output = corruptImages(input, { count: 100, height: 10, width: 20, channels: 1 }, 'shot_noise', 1, 1);

    let sum = 0;
    let sumSquares = 0;
    for (const value of output) {
      sum += value;
      sumSquares += value * value;
    }
    const mean = sum / output.length;
    const sigma = Math.sqrt(sumSquares / output.length - mean * mean);
    expect(mean).toBeCloseTo(gray, 2);
    expect(Math.abs(sigma - Math.sqrt(gray / 60))).toBeLessThan(0.003);
  });

  it('hits the listed fraction with impulse noise', () => {
    const gray = filled(20_000, 0.5);

    const output = corruptImages(gray, { count: 100, height: 10, width: 20, channels: 1 }, 'impulse_noise', 5, 1);

    const salt = output.filter((value) => value === 1).length / output.length;
    const pepper = output.filter((value) => value === 0).length / output.length;
    expect(salt + pepper).toBeCloseTo(0.27, 2);
    expect(salt).toBeCloseTo(0.135, 1);
  });

  it('fully inverts at severity 5', () => {
    const output = corruptImages(digits, shape, 'inverse', 5, 0);

    let maxError = 0;
    digits.forEach((value, i) => {
      maxError = Math.max(maxError, Math.abs((output[i] as number) - (1 - value)));
    });
    expect(maxError).toBeLessThan(1e-6);
  });

  it('adds the listed brightness offset', () => {
    const output = corruptImages(digits, shape, 'brightness', 1, 0);

    let maxError = 0;
    digits.forEach((value, i) => {
      maxError = Math.max(maxError, Math.abs((output[i] as number) - Math.min(1, value + 0.1)));
    });
    expect(maxError).toBeLessThan(1e-6);
  });

  it('keeps the image mean under contrast', () => {
    const imageLength = shape.height * shape.width;
    const output = corruptImages(digits, shape, 'contrast', 5, 0);

    for (let image = 0; image < 5; image++) {
      const before = digits.subarray(image * imageLength, (image + 1) * imageLength);
      const after = output.subarray(image * imageLength, (image + 1) * imageLength);
      const meanBefore = before.reduce((sum, value) => sum + value, 0) / imageLength;
      const meanAfter = after.reduce((sum, value) => sum + value, 0) / imageLength;
      expect(meanAfter).toBeCloseTo(meanBefore, 5);
    }
  });

  it('preserves a constant image under blur and pixelate', () => {
    const gray = filled(2 * 28 * 28, 0.3);
    const grayShape = { count: 2, height: 28, width: 28, channels: 1 };

    for (const name of ['gaussian_blur', 'motion_blur', 'pixelate'] as const) {
      const output = corruptImages(gray, grayShape, name, 5, 1);
      let maxError = 0;
      for (const value of output) {
        maxError = Math.max(maxError, Math.abs(value - 0.3));
      }
      expect(maxError, name).toBeLessThan(1e-6);
    }
  });

  it('shrinks the ink under scale', () => {
    const output = corruptImages(digits, shape, 'scale', 5, 0);

    const inkBefore = digits.reduce((sum, value) => sum + value, 0);
    const inkAfter = output.reduce((sum, value) => sum + value, 0);
    // Scaling by 0.5 divides the area, and so the ink, by about 4.
    expect(inkAfter / inkBefore).toBeGreaterThan(0.2);
    expect(inkAfter / inkBefore).toBeLessThan(0.3);
  });

  it('returns an empty array for no images', () => {
    const output = corruptImages(new Float32Array(0), { count: 0, height: 28, width: 28, channels: 1 }, 'rotate', 1, 0);

    expect(output).toHaveLength(0);
  });
});

describe('corruptImages errors', () => {
  it('lists valid names for an unknown one', () => {
    const error = captureError(() => corruptImages(digits, shape, 'fog', 1, 0));

    expect(error.message).toContain("Unknown corruption 'fog'");
    for (const name of CORRUPTIONS) {
      expect(error.message).toContain(name);
    }
    expect(error.exitStatus).toBe(2);
  });

  it.each([{ severity: 0 }, { severity: 6 }, { severity: 2.5 }, { severity: Number.NaN }])(
    'rejects severity $severity',
    ({ severity }) => {
      const error = captureError(() => corruptImages(digits, shape, 'rotate', severity, 0));

      expect(error.message).toBe(`Corruption severity ${severity} is invalid; use an integer from 1 to 5.`);
    },
  );

  it('rejects a non-integer seed', () => {
    expect(captureError(() => corruptImages(digits, shape, 'rotate', 1, 0.5)).message).toContain('seed 0.5 is invalid');
  });

  it('rejects a shape that does not match', () => {
    const error = captureError(() => corruptImages(digits, { ...shape, count: SAMPLE_COUNT + 1 }, 'rotate', 1, 0));

    expect(error.message).toContain(`Image array has ${digits.length} values`);
    expect(error.message).toContain(`needs ${(SAMPLE_COUNT + 1) * 784}`);
  });

  it('rejects a zero height', () => {
    expect(captureError(() => corruptImages(digits, { ...shape, height: 0 }, 'rotate', 1, 0)).message).toBe(
      'Image shape height 0 is invalid; use an integer of at least 1.',
    );
  });
});

describe('isCorruptionName', () => {
  it('accepts listed names only', () => {
    expect(isCorruptionName('stripe')).toBe(true);
    expect(isCorruptionName('Stripe')).toBe(false);
  });
});
