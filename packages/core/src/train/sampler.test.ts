import { describe, expect, it } from 'vitest';
import { parseTrainConfig } from './config.js';
import { EpochSampler, repeatFactors } from './sampler.js';

const samplerConfig = (extra: Record<string, unknown>) =>
  parseTrainConfig({ data: { train: 'x' }, sampler: extra }).sampler;

describe('repeatFactors', () => {
  it('follows r = max(1, sqrt(t / f_c)), the max over an image’s classes, 1 for negatives', () => {
    // 10 images: class 1 in 8 of them (f = 0.8), class 2 in 1 (f = 0.1), one negative.
    const images = [[1], [1], [1], [1], [1], [1], [1], [1, 2, 2], [], [3]];
    // class 3 in 1 image (f = 0.1) too.
    const r = repeatFactors(images, 0.4);
    expect(r[0]).toBe(1); // sqrt(0.4 / 0.8) < 1
    expect(r[7]).toBeCloseTo(2, 12); // sqrt(0.4 / 0.1) = 2, max over {1, 2}
    expect(r[8]).toBe(1);
    expect(r[9]).toBeCloseTo(2, 12);
  });
});

describe('EpochSampler', () => {
  const imageClasses = [[1], [1], [1], [1], [1], [1], [1], [2], [], [], [], [], [], []];

  it('visits every image once per epoch by default, in a seeded order that changes per epoch', () => {
    const sampler = new EpochSampler({ imageClasses }, samplerConfig({}), 5);
    const e0 = sampler.epochIndices(0);
    expect([...e0].sort((a, b) => a - b)).toEqual(imageClasses.map((_, i) => i));
    expect(sampler.epochIndices(0)).toEqual(e0);
    expect(sampler.epochIndices(1)).not.toEqual(e0);
    expect(new EpochSampler({ imageClasses }, samplerConfig({}), 6).epochIndices(0)).not.toEqual(e0);
  });

  it('repeats rare-class images by stochastic rounding with the right mean', () => {
    // Class 2 is in 1 of 14 images: r = sqrt(0.5 · 14) ≈ 2.6458, so 2 or 3 copies, 3 with probability 0.6458.
    const sampler = new EpochSampler({ imageClasses }, samplerConfig({ repeatFactorThreshold: 0.5 }), 1);
    let total = 0;
    const epochs = 400;
    for (let e = 0; e < epochs; e++) {
      const copies = sampler.epochIndices(e).filter((i) => i === 7).length;
      expect([2, 3]).toContain(copies);
      total += copies;
    }
    expect(total / epochs).toBeGreaterThan(2.58);
    expect(total / epochs).toBeLessThan(2.71);
  });

  it('caps negatives at ratio × positives, and keeps them (as negatives) when uncapped', () => {
    const capped = new EpochSampler({ imageClasses }, samplerConfig({ negativesRatio: 0.5 }), 2).epochIndices(0);
    expect(capped.filter((i) => imageClasses[i].length === 0).length).toBe(4); // floor(0.5 · 8)
    expect(capped.filter((i) => imageClasses[i].length > 0).length).toBe(8);
    const none = new EpochSampler({ imageClasses }, samplerConfig({ negativesRatio: 0 }), 2).epochIndices(0);
    expect(none.every((i) => imageClasses[i].length > 0)).toBe(true);
    const all = new EpochSampler({ imageClasses: [[], [], []] }, samplerConfig({}), 2).epochIndices(0);
    expect(all.sort()).toEqual([0, 1, 2]);
  });
});
