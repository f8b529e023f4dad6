import { describe, expect, it } from 'vitest';
import { deriveSeed, Rng } from './rng.js';

describe('Rng', () => {
  it('replays exactly from a saved state', () => {
    const a = new Rng(42);
    a.next();
    const saved = a.getState();
    const first = [a.next(), a.next(), a.next()];
    const b = new Rng(0);
    b.setState(saved);
    expect([b.next(), b.next(), b.next()]).toEqual(first);
  });

  it('is uniform enough and derives distinct streams', () => {
    const r = new Rng(7);
    let sum = 0;
    for (let i = 0; i < 10000; i++) sum += r.next();
    expect(sum / 10000).toBeGreaterThan(0.48);
    expect(sum / 10000).toBeLessThan(0.52);
    expect(deriveSeed(1, 'aug', 0, 3)).not.toBe(deriveSeed(1, 'aug', 0, 4));
    expect(deriveSeed(1, 'aug', 0, 3)).toBe(deriveSeed(1, 'aug', 0, 3));
  });

  it('is mulberry32: the stream every former copy drew (so their outputs did not change)', () => {
    const r = new Rng(42);
    expect([r.next(), r.next(), r.next()]).toEqual([0.6011037519201636, 0.44829055899754167, 0.8524657934904099]);
  });

  it('shuffles and permutes by the one Fisher–Yates, and draws normals by Box–Muller', () => {
    expect(Array.from(new Rng(7).permutation(6))).toEqual([4, 1, 2, 3, 5, 0]);
    expect(new Rng(7).shuffle([0, 1, 2, 3, 4, 5])).toEqual([4, 1, 2, 3, 5, 0]);
    const a = new Rng(3);
    const b = new Rng(3);
    const u = Math.max(b.next(), 1e-12);
    expect(a.normal()).toBe(Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * b.next()));
    expect(a.getState()).toBe(b.getState());
    let sum = 0;
    let squares = 0;
    for (let i = 0; i < 20000; i++) {
      const z = a.normal();
      sum += z;
      squares += z * z;
    }
    expect(Math.abs(sum / 20000)).toBeLessThan(0.03);
    expect(Math.abs(squares / 20000 - 1)).toBeLessThan(0.05);
  });
});
