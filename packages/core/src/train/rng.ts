/**
 * A small seeded random generator (mulberry32) whose whole state is one 32-bit integer, so it can be
 * saved in a checkpoint and restored exactly. Streams are derived from (seed, purpose, epoch, index) by
 * hashing, so the augmentation of image i in epoch e does not depend on how many numbers were drawn
 * before it: a resumed run draws exactly what the uninterrupted run drew.
 */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform in [low, high). */
  uniform(low: number, high: number): number {
    return low + (high - low) * this.next();
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Fisher–Yates shuffle in place. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }

  getState(): number {
    return this.state;
  }

  setState(state: number): void {
    this.state = state >>> 0;
  }
}

/** A 32-bit seed derived from a base seed and a path of keys (FNV-1a over the parts, then avalanche). */
export function deriveSeed(seed: number, ...keys: (string | number)[]): number {
  let h = 0x811c9dc5 ^ (seed >>> 0);
  for (const key of keys) {
    const text = `/${String(key)}`;
    for (let i = 0; i < text.length; i++) {
      h ^= text.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function rngFor(seed: number, ...keys: (string | number)[]): Rng {
  return new Rng(deriveSeed(seed, ...keys));
}
