import { describe, expect, it } from 'vitest';

import { convolveSeparable, gaussianKernel, pixelate, sampleBilinear, warpAffine } from './image-ops.js';

const GEOMETRY = { height: 3, width: 4, channels: 1 };
// Pixel (y, x) = 4 y + x.
const RAMP = Float32Array.from({ length: 12 }, (_, i) => i);

describe('sampleBilinear', () => {
  it('interpolates between pixels', () => {
    expect(sampleBilinear(RAMP, GEOMETRY, 1.5, 0.5, 0, 0)).toBeCloseTo(3.5, 6);
  });

  it('fills or clamps outside the image', () => {
    expect(sampleBilinear(RAMP, GEOMETRY, -1, 0, 0, 0)).toBe(0);
    expect(sampleBilinear(RAMP, GEOMETRY, 10, 2, 0, 'edge')).toBe(11);
  });
});

describe('gaussianKernel', () => {
  it('is symmetric and sums to 1', () => {
    const kernel = gaussianKernel(1.2);

    expect(kernel).toHaveLength(2 * Math.ceil(3 * 1.2) + 1);
    expect(kernel.reduce((sum, weight) => sum + weight, 0)).toBeCloseTo(1, 12);
    kernel.forEach((weight, i) => expect(weight).toBeCloseTo(kernel[kernel.length - 1 - i] as number, 15));
  });
});

describe('convolveSeparable', () => {
  it('keeps a linear ramp inside the image', () => {
    const geometry = { height: 1, width: 9, channels: 1 };
    const ramp = Float32Array.from({ length: 9 }, (_, i) => i);
    const target = new Float32Array(9);

    convolveSeparable(ramp, target, new Float32Array(9), geometry, gaussianKernel(0.5));

    // A symmetric kernel maps a linear ramp to itself away from the clamped edges.
    for (let x = 2; x < 7; x++) {
      expect(target[x]).toBeCloseTo(x, 5);
    }
  });
});

describe('warpAffine', () => {
  it('shifts by whole pixels with a black border', () => {
    const target = new Float32Array(12);

    warpAffine(RAMP, target, GEOMETRY, [1, 0, 0, 1], 1, 0);

    expect(Array.from(target)).toEqual([0, 0, 1, 2, 0, 4, 5, 6, 0, 8, 9, 10]);
  });

  it('rotates a half turn about the centre', () => {
    const target = new Float32Array(12);

    warpAffine(RAMP, target, GEOMETRY, [-1, 0, 0, -1], 0, 0);

    expect(Array.from(target, (value) => Math.round(value * 1e6) / 1e6)).toEqual([...RAMP].reverse());
  });
});

describe('pixelate', () => {
  it('averages tiles, including cut ones', () => {
    const target = new Float32Array(12);

    pixelate(RAMP, target, GEOMETRY, 2);

    // Tiles: rows 0–1 × columns 0–1, 0–1 × 2–3, 2 × 0–1, 2 × 2–3.
    expect(Array.from(target)).toEqual([2.5, 2.5, 4.5, 4.5, 2.5, 2.5, 4.5, 4.5, 8.5, 8.5, 10.5, 10.5]);
  });
});
