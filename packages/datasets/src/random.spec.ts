import { describe, expect, it } from 'vitest';

import { mixSeed, Mulberry32, shuffleInPlace } from './random.js';

describe('Mulberry32', () => {
  it('repeats a stream for a seed', () => {
    const first = new Mulberry32(7);
    const second = new Mulberry32(7);

    for (let i = 0; i < 100; i++) {
      expect(second.next()).toBe(first.next());
    }
  });

  it('differs between seeds', () => {
    expect(new Mulberry32(1).next()).not.toBe(new Mulberry32(2).next());
  });

  it('draws uniforms in [0, 1) with mean 1/2', () => {
    const random = new Mulberry32(3);
    const count = 100_000;
    let sum = 0;
    for (let i = 0; i < count; i++) {
      const value = random.next();
      expect(value).toBeGreaterThanOrEqual(0);
      expect(value).toBeLessThan(1);
      sum += value;
    }
    // Standard error of the mean is sqrt(1/12 / 1e5) ≈ 0.0009.
    expect(Math.abs(sum / count - 0.5)).toBeLessThan(0.005);
  });

  it('draws standard normals', () => {
    const random = new Mulberry32(4);
    const count = 100_000;
    let sum = 0;
    let sumSquares = 0;
    for (let i = 0; i < count; i++) {
      const value = random.normal();
      sum += value;
      sumSquares += value * value;
    }
    const mean = sum / count;
    const variance = sumSquares / count - mean * mean;

    expect(Math.abs(mean)).toBeLessThan(0.015);
    expect(Math.abs(variance - 1)).toBeLessThan(0.02);
  });

  it('draws integers below the bound', () => {
    const random = new Mulberry32(5);
    const seen = new Set<number>();
    for (let i = 0; i < 1_000; i++) {
      seen.add(random.nextInt(6));
    }

    expect([...seen].sort()).toEqual([0, 1, 2, 3, 4, 5]);
  });
});

describe('mixSeed', () => {
  it('separates neighbouring inputs', () => {
    const seeds = new Set(Array.from({ length: 1_000 }, (_, i) => mixSeed(42, 7, i)));

    expect(seeds.size).toBe(1_000);
  });

  it('uses high bits and sign', () => {
    expect(mixSeed(2 ** 32 + 1)).not.toBe(mixSeed(1));
    expect(mixSeed(-1)).not.toBe(mixSeed(2 ** 32 - 1));
    expect(mixSeed(3, 4)).not.toBe(mixSeed(4, 3));
  });

  it('returns unsigned 32-bit integers', () => {
    const seed = mixSeed(123, 456);

    expect(Number.isInteger(seed)).toBe(true);
    expect(seed).toBeGreaterThanOrEqual(0);
    expect(seed).toBeLessThan(2 ** 32);
  });
});

describe('shuffleInPlace', () => {
  it('permutes deterministically', () => {
    const items = Array.from({ length: 50 }, (_, i) => i);

    const first = shuffleInPlace([...items], new Mulberry32(9));
    const second = shuffleInPlace([...items], new Mulberry32(9));

    expect(first).toEqual(second);
    expect(first).not.toEqual(items);
    expect([...first].sort((a, b) => a - b)).toEqual(items);
  });
});
