import { describe, expect, it } from 'vitest';
import type { CocoDataset, CocoResult } from '../coco.js';
import { caseToCoco, exactishSum, fixture } from './fixture-cases.test-helper.js';
import { type FrocHitCriterion, froc, frocCurve, frocScore } from './froc.js';
import { RSNA_THRESHOLDS, rsnaMap } from './rsna.js';

const hits: Record<'iou50' | 'iou20' | 'center', FrocHitCriterion> = {
  iou50: { kind: 'iou', threshold: 0.5 },
  iou20: { kind: 'iou', threshold: 0.2 },
  center: { kind: 'center' },
};

describe('RSNA and FROC agree with the Python reference (numpy interp/mean) on every fixture case', () => {
  for (const c of fixture.cases) {
    it(c.name, () => {
      const { gt, dt } = caseToCoco(c);
      const rsna = rsnaMap(gt, dt);
      expect(rsna).toEqual({ ...c.expected.rsna, thresholds: RSNA_THRESHOLDS });
      for (const [key, hit] of Object.entries(hits) as [keyof typeof hits, FrocHitCriterion][]) {
        const ours = froc(gt, dt, { hit });
        const expected = c.expected.froc[key];
        const nanAsNull = (v: unknown) => JSON.parse(JSON.stringify(v)); // the fixture writes NaN as null
        expect(nanAsNull(ours.sensitivities)).toEqual(expected.sensitivities);
        expect(nanAsNull(ours.score)).toEqual(expected.score);
        expect(ours.numTargets).toBe(expected.numTargets);
        expect(ours.curve.fpsPerImage.length).toBe(expected.points);
        expect(exactishSum(ours.curve.fpsPerImage)).toBeCloseTo(expected.fps_sum, 12);
        if (expected.sens_sum === null) expect(ours.curve.sensitivity.every(Number.isNaN)).toBe(true);
        else expect(exactishSum(ours.curve.sensitivity)).toBeCloseTo(expected.sens_sum, 12);
      }
    });
  }
});

const image = (id: number) => ({ id, file_name: `${id}.png`, width: 100, height: 100 });
const box = (id: number, image_id: number, bbox: [number, number, number, number], iscrowd: 0 | 1 = 0) => ({
  id,
  image_id,
  category_id: 1,
  bbox,
  area: bbox[2] * bbox[3],
  iscrowd,
});
const det = (image_id: number, bbox: [number, number, number, number], score: number): CocoResult => ({
  image_id,
  category_id: 1,
  bbox,
  score,
});

describe('rsnaMap follows the Kaggle definition', () => {
  const gt: CocoDataset = {
    images: [image(1), image(2), image(3)],
    categories: [{ id: 1, name: 'opacity' }],
    annotations: [box(1, 1, [0, 0, 10, 10]), box(2, 1, [50, 50, 10, 10])],
  };

  it('scores TP / (TP + FP + FN) per threshold, averages over thresholds then images', () => {
    // IoU of [0,0,10,8] with [0,0,10,10] is 0.8 (> every threshold); one miss, one FP on image 1.
    const dets = [det(1, [0, 0, 10, 8], 0.9), det(1, [80, 80, 5, 5], 0.8)];
    const result = rsnaMap(gt, dets);
    expect(result.imagesScored).toBe(1); // images 2 and 3: no truth, no predictions → skipped
    expect(result.imagesSkipped).toBe(2);
    expect(result.map).toBeCloseTo(1 / 3, 15);
  });

  it('counts a hit only when IoU is strictly greater than the threshold', () => {
    // IoU exactly 0.5: a hit at 0.40 and 0.45 only.
    const result = rsnaMap(gt, [det(1, [0, 0, 10, 5], 0.9), det(1, [50, 50, 10, 10], 0.5)]);
    expect(result.perThreshold[0]).toBe(1);
    expect(result.perThreshold[1]).toBe(1);
    expect(result.perThreshold[2]).toBe(1 / 3);
    expect(result.map).toBeCloseTo((2 * 1 + 6 * (1 / 3)) / 8, 15);
  });

  it('gives 0 to an image with predictions but no ground truth', () => {
    const result = rsnaMap(gt, [det(1, [0, 0, 10, 10], 0.9), det(1, [50, 50, 10, 10], 0.9), det(2, [0, 0, 5, 5], 0.1)]);
    expect(result.imagesScored).toBe(2);
    expect(result.map).toBe(0.5);
    expect(rsnaMap(gt, [det(2, [0, 0, 5, 5], 0.1)], { minScore: 0.5 }).map).toBe(0);
  });

  it('matches the most confident prediction first', () => {
    const one: CocoDataset = { ...gt, annotations: [box(1, 1, [0, 0, 10, 10])] };
    // Both overlap the single truth; the confident one is the poor box, so at t ≥ 0.5 it misses and the
    // good box cannot claim the already-matched truth at 0.4/0.45.
    const result = rsnaMap(one, [det(1, [0, 0, 10, 4.6], 0.9), det(1, [0, 0, 10, 10], 0.1)]);
    expect(result.perThreshold[0]).toBe(1 / 2); // TP (0.46 > 0.40) + FP
    expect(result.perThreshold[2]).toBe(1 / 2); // first unmatched → FP; second matches → TP
  });
});

describe('froc builds the MONAI curve', () => {
  it('counts each target once at its best score and ignores extra hits on it', () => {
    const gt: CocoDataset = {
      images: [image(1), image(2)],
      categories: [{ id: 1, name: 'nodule' }],
      annotations: [box(1, 1, [0, 0, 10, 10]), box(2, 2, [0, 0, 10, 10])],
    };
    const dets = [det(1, [0, 0, 10, 10], 0.9), det(1, [1, 0, 10, 10], 0.95), det(1, [60, 60, 5, 5], 0.5)];
    const { curve, numTargets, sensitivities } = froc(gt, dets);
    expect(numTargets).toBe(2);
    // fp = [0.5], targets = [0.95, 0] → thresholds {0, 0.5, 0.95} minus the lowest.
    expect(curve.thresholds).toEqual([0.5, 0.95]);
    expect(curve.fpsPerImage).toEqual([0.5, 0, 0]);
    expect(curve.sensitivity).toEqual([0.5, 0.5, 0]);
    // At 1/8 FP/image: np.interp between (0, 0) … the duplicate x = 0 resolves to the last of the run.
    expect(sensitivities).toEqual([0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]);
  });

  it('interpolates like np.interp', () => {
    const curve = frocCurve([0.1, 0.2, 0.3, 0.4], [0.35, 0.25, 0], 2);
    // Thresholds 0.1 … 0.4 (the lowest value, 0, is skipped), then the appended (0, 0).
    expect(curve.thresholds).toEqual([0.1, 0.2, 0.25, 0.3, 0.35, 0.4]);
    expect(curve.fpsPerImage).toEqual([2, 1.5, 1, 1, 0.5, 0.5, 0]);
    expect(curve.sensitivity).toEqual([2 / 3, 2 / 3, 2 / 3, 1 / 3, 1 / 3, 0, 0]);
    // np.interp([0.25, 0.75, 3, 0.5, 1], xp reversed, fp reversed) printed [0, 1/3, 2/3, 1/3, 2/3] in numpy 2.4.
    const { sensitivities } = frocScore(curve, [0.25, 0.75, 3, 0.5, 1]);
    expect(sensitivities).toEqual([0, 1 / 3, 2 / 3, 1 / 3, 2 / 3]);
  });

  it('excludes detections on crowd regions', () => {
    const gt: CocoDataset = {
      images: [image(1)],
      categories: [{ id: 1, name: 'x' }],
      annotations: [box(1, 1, [0, 0, 10, 10]), box(2, 1, [40, 40, 50, 50], 1)],
    };
    const { fpProbs } = { fpProbs: froc(gt, [det(1, [50, 50, 5, 5], 0.7), det(1, [0, 50, 5, 5], 0.6)]).curve };
    expect(fpProbs.thresholds).toEqual([0.6]); // only the 0.6 one is a FP; targets = [0]
  });
});
