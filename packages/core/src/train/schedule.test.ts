import { describe, expect, it } from 'vitest';
import { parseTrainConfig } from './config.js';
import { deriveSeed, Rng } from './rng.js';
import { learningRateAt } from './schedule.js';

const schedule = (extra: Record<string, unknown>) =>
  parseTrainConfig({ data: { train: 'x' }, schedule: extra }).schedule;

describe('learningRateAt', () => {
  it('warms up linearly from lr·factor, then holds', () => {
    const s = schedule({ warmupSteps: 10, warmupFactor: 0.1, type: 'constant' });
    expect(learningRateAt(1, s, 0, 100, 5)).toBeCloseTo(0.1, 12);
    expect(learningRateAt(1, s, 5, 100, 5)).toBeCloseTo(0.55, 12);
    expect(learningRateAt(1, s, 10, 100, 5)).toBe(1);
    expect(learningRateAt(1, s, 400, 100, 5)).toBe(1);
  });

  it('steps by gamma at each milestone epoch', () => {
    const s = schedule({ warmupSteps: 0, type: 'step', milestones: [3, 5], gamma: 0.1 });
    // 10 steps per epoch: epoch 1 = steps 0–9, epoch 3 starts at step 20, epoch 5 at step 40.
    expect(learningRateAt(0.003, s, 19, 10, 6)).toBeCloseTo(0.003, 15);
    expect(learningRateAt(0.003, s, 20, 10, 6)).toBeCloseTo(0.0003, 15);
    expect(learningRateAt(0.003, s, 40, 10, 6)).toBeCloseTo(0.00003, 15);
  });

  it('follows a half cosine to minFactor', () => {
    const s = schedule({ warmupSteps: 0, type: 'cosine', minFactor: 0 });
    expect(learningRateAt(2, s, 0, 10, 1)).toBeCloseTo(2, 12);
    expect(learningRateAt(2, s, 9, 10, 1)).toBeCloseTo(0, 12);
    expect(learningRateAt(2, s, 4.5, 10, 1)).toBeCloseTo(1, 12);
  });
});

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
});
