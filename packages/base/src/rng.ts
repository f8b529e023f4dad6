/**
 * THE random-number source of the repo: a small seeded generator (mulberry32) whose whole state is one
 * 32-bit integer, so it can be saved in a checkpoint and restored exactly. Every shuffle and every random
 * draw (epoch order, augmentation, the detector's samplers and Swin's drop path, patient splits, federated
 * shards, synthetic data, phantoms, fuzzers) goes through it — no other generator, no `Math.random`.
 * Streams are derived from (seed, purpose, epoch, index) by hashing, so the augmentation of image i in
 * epoch e does not depend on how many numbers were drawn before it: a resumed run draws exactly what the
 * uninterrupted run drew.
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

  /**
   * Standard normal by Box–Muller, from two draws (u, then v); keeps no spare value, so the state stays
   * one integer.
   */
  normal(): number {
    const u = Math.max(this.next(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** Fisher–Yates shuffle in place (the repo's only one). */
  shuffle<T>(items: T[]): T[];
  shuffle(items: Int32Array): Int32Array;
  shuffle(items: { length: number; [index: number]: unknown }): unknown {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = items[i];
      items[i] = items[j];
      items[j] = t;
    }
    return items;
  }

  /** A random permutation of 0..n−1 (torch.randperm's role): the shuffle of the identity. */
  permutation(n: number): Int32Array {
    return this.shuffle(Int32Array.from({ length: n }, (_, i) => i));
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
