/**
 * Mulberry32, a small seeded 32-bit pseudo-random generator (Tommy Ettinger's public-domain
 * generator), with a Box–Muller normal sampler. Not cryptographic; used so that data splits
 * and corruptions repeat exactly for a seed.
 */
export class Mulberry32 {
  private state: number;
  private spareNormal: number | undefined;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Returns a uniform number in [0, 1) with 32 random bits. */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Returns a standard normal sample (mean 0, variance 1) by the Box–Muller transform. */
  normal(): number {
    if (this.spareNormal !== undefined) {
      const spare = this.spareNormal;
      this.spareNormal = undefined;
      return spare;
    }

    // 1 - next() lies in (0, 1], so the logarithm is finite.
    const radius = Math.sqrt(-2 * Math.log(1 - this.next()));
    const angle = 2 * Math.PI * this.next();
    this.spareNormal = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  }

  /** Returns a uniform integer in [0, bound). */
  nextInt(bound: number): number {
    return Math.floor(this.next() * bound);
  }
}

/**
 * Mixes several integers into one 32-bit seed with the MurmurHash3 finalizer, so that nearby
 * inputs (image 0, 1, 2 …) give unrelated generator streams. Both the low and the high 32 bits
 * of each safe integer count, and so does its sign.
 */
export function mixSeed(...parts: readonly number[]): number {
  let h = 0x9e3779b9;
  for (const part of parts) {
    h = mixWord(h, part >>> 0);
    h = mixWord(h, Math.floor(part / 4294967296) >>> 0);
  }
  return h >>> 0;
}

function mixWord(h: number, word: number): number {
  let mixed = h ^ word;
  mixed = Math.imul(mixed ^ (mixed >>> 16), 0x85ebca6b);
  mixed = Math.imul(mixed ^ (mixed >>> 13), 0xc2b2ae35);
  return mixed ^ (mixed >>> 16);
}

/** Shuffles `items` in place with the Fisher–Yates algorithm and returns it. */
export function shuffleInPlace<T>(items: T[], random: Mulberry32): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = random.nextInt(i + 1);
    const item = items[i] as T;
    items[i] = items[j] as T;
    items[j] = item;
  }
  return items;
}
