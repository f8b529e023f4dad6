/** bench/quality's paired bootstrap: the observed ratio is the evaluator's, and the interval behaves. */
import type { CocoDataset, CocoResult } from '@fedcxr/core';
import { evaluateCoco } from '@fedcxr/core/eval';
import { describe, expect, it } from 'vitest';
import { pairedBootstrap } from '../bench/quality/bootstrap.js';

/** 30 images, one 20×20 box each; a side finds image i's box (shifted by `shift(i)` px) with score `score(i)`. */
const test: CocoDataset = {
  images: Array.from({ length: 30 }, (_, i) => ({ id: i + 1, file_name: `${i}.png`, width: 100, height: 100 })),
  annotations: Array.from({ length: 30 }, (_, i) => ({
    id: i + 1,
    image_id: i + 1,
    category_id: 1,
    bbox: [10, 10, 20, 20],
    area: 400,
    iscrowd: 0,
  })),
  categories: [{ id: 1, name: 'lesion' }],
};
const side = (shift: (i: number) => number, score: (i: number) => number): CocoResult[] =>
  test.images.map((image, i) => ({
    image_id: image.id,
    category_id: 1,
    bbox: [10 + shift(i), 10, 20, 20],
    score: score(i),
  }));

describe('paired bootstrap of ours / torchvision', () => {
  it('gives ratio 1 with no spread when both sides predict the same', () => {
    const predictions = side(
      (i) => i % 4,
      (i) => 1 - i / 100,
    );
    const result = pairedBootstrap(test, [{ seed: 0, torchvision: predictions, ours: predictions }], { resamples: 50 });
    for (const r of Object.values(result.ratio)) {
      expect(r.observed).toBeCloseTo(1, 12);
      expect(r.low).toBeCloseTo(1, 12);
      expect(r.high).toBeCloseTo(1, 12);
      expect(r.atLeastGoal).toBe(1);
    }
    expect(result).toMatchObject({ seeds: [0], images: 30, resamples: 50, goal: 0.95 });
  });

  it("observes the evaluator's ratio of the seeds' means, and brackets it", () => {
    // torchvision's boxes are tight; ours drift off some images (IoU falls below 0.75, then 0.5).
    const torchvision = side(
      () => 0,
      (i) => 0.9 - i / 100,
    );
    const ours = side(
      (i) => (i % 3 === 0 ? 6 : i % 5 === 0 ? 9 : 0),
      (i) => 0.8 - i / 200,
    );
    const oursSeed1 = side(
      (i) => (i % 2 === 0 ? 4 : 0),
      (i) => 0.7 + i / 200,
    );
    const seeds = [
      { seed: 0, torchvision, ours },
      { seed: 1, torchvision, ours: oursSeed1 },
    ];
    const result = pairedBootstrap(test, seeds, { resamples: 300, seed: 7 });
    const ap = (dt: CocoResult[]) => evaluateCoco(test, dt).stats;
    const expected = (ap(ours)[2] + ap(oursSeed1)[2]) / (2 * ap(torchvision)[2]);
    expect(result.ratio.AP75.observed).toBeCloseTo(expected, 12);
    expect(result.ratio.AP75.observed).toBeLessThan(1);
    for (const r of Object.values(result.ratio)) {
      expect(r.low).toBeLessThanOrEqual(r.observed + 1e-12);
      expect(r.high).toBeGreaterThanOrEqual(r.observed - 1e-12);
    }
    // Resampling spreads a ratio that is not 1 on every image.
    expect(result.ratio.AP75.high - result.ratio.AP75.low).toBeGreaterThan(0.01);
    // Deterministic for a seed, different for another.
    expect(pairedBootstrap(test, seeds, { resamples: 300, seed: 7 }).ratio).toEqual(result.ratio);
    expect(pairedBootstrap(test, seeds, { resamples: 300, seed: 8 }).ratio.AP75.low).not.toBe(result.ratio.AP75.low);
  });
});
