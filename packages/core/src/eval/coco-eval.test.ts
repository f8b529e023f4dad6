import { FedcxrError } from '@fedcxr/base';
import { describe, expect, it } from 'vitest';
import type { CocoDataset, CocoResult } from '../coco.js';
import { defaultCocoEvalParams, evaluateCoco, precisionRecallCurve } from './coco-eval.js';
import { caseToCoco, exactishSum, fixture } from './fixture-cases.test-helper.js';

describe('evaluateCoco parameters', () => {
  it('computes the IoU and recall thresholds bit-identical to numpy.linspace', () => {
    const params = defaultCocoEvalParams();
    expect(params.iouThrs).toEqual(fixture.default_params.iouThrs);
    expect(params.recThrs).toEqual(fixture.default_params.recThrs);
  });
});

describe('evaluateCoco matches pycocotools COCOeval exactly', () => {
  it('has cases covering every trap', () => {
    expect(fixture.cases.length).toBeGreaterThanOrEqual(30);
  });

  for (const c of fixture.cases) {
    it(c.name, () => {
      const { gt, dt } = caseToCoco(c);
      const { imgIds, catIds, useCats, ...params } = c.params ?? {};
      const options = { params, imgIds, catIds, useCats: useCats !== 0 };
      const result = evaluateCoco(gt, dt, options);
      const e = c.expected;
      expect(result.imgIds).toEqual(e.imgIds);
      expect(result.catIds).toEqual(e.catIds);
      expect(result.counts).toEqual(e.counts);
      // The 12 stats and per-category summaries: bit-identical.
      expect(result.stats).toEqual(e.stats);
      expect(result.perCategory.map((m) => [m.AP, m.AP50, m.AP75, m.AR100])).toEqual(e.per_category);
      const [T, R, K, A, M] = result.counts;
      for (let k = 0; k < K; k++) {
        for (let a = 0; a < A; a++) {
          for (let m = 0; m < M; m++) {
            const p: number[] = [];
            for (let t = 0; t < T; t++) {
              for (let r = 0; r < R; r++) p.push(result.precision[(((t * R + r) * K + k) * A + a) * M + m]);
            }
            expect(exactishSum(p)).toBeCloseTo(e.precision_sum[k][a][m], 12);
            const rec: number[] = [];
            for (let t = 0; t < T; t++) rec.push(result.recall[((t * K + k) * A + a) * M + m]);
            expect(exactishSum(rec)).toBeCloseTo(e.recall_sum[k][a][m], 12);
          }
        }
      }
      const weighted = (array: Float64Array) => exactishSum(Array.from(array, (v, i) => v * ((i % 97) + 1)));
      expect(weighted(result.precision)).toBeCloseTo(e.precision_wsum, 9);
      expect(weighted(result.recall)).toBeCloseTo(e.recall_wsum, 9);
      expect(weighted(result.scores)).toBeCloseTo(e.scores_wsum, 9);
      e.curves_iou50.forEach((curve, k) => {
        const ours = precisionRecallCurve(result, k, result.params.iouThrs[0]);
        expect(ours?.precision).toEqual(curve);
      });
    });
  }
});

describe('evaluateCoco edge cases and errors', () => {
  const gt: CocoDataset = {
    images: [{ id: 1, file_name: 'a.png', width: 100, height: 100 }],
    categories: [{ id: 1, name: 'opacity' }],
    annotations: [{ id: 1, image_id: 1, category_id: 1, bbox: [10, 10, 50, 50], area: 2500, iscrowd: 0 }],
  };

  it('evaluates an empty result list to zero AP (pycocotools would crash)', () => {
    const result = evaluateCoco(gt, []);
    expect(result.stats.slice(0, 3)).toEqual([0, 0, 0]);
    expect(result.perCategory[0]).toMatchObject({ id: 1, name: 'opacity', AP: 0, numGt: 1 });
  });

  it('gives AP 1 for a perfect detection', () => {
    const result = evaluateCoco(gt, [{ image_id: 1, category_id: 1, bbox: [10, 10, 50, 50], score: 0.9 }]);
    expect(result.stats[0]).toBeCloseTo(1, 12); // tp / (tp + fp + eps), as pycocotools
    expect(result.stats[1]).toBeCloseTo(1, 12);
  });

  it('rejects detections on images that are not in the ground truth, naming the file', () => {
    const bad = [{ image_id: 7, category_id: 1, bbox: [0, 0, 1, 1], score: 1 }] as CocoResult[];
    expect(() => evaluateCoco(gt, bad, { dtFile: 'dets.json' })).toThrow(FedcxrError);
    expect(() => evaluateCoco(gt, bad, { dtFile: 'dets.json' })).toThrow(/dets\.json: detection 0 is on image 7/);
  });

  it('rejects malformed boxes and scores', () => {
    const badBox = [{ image_id: 1, category_id: 1, bbox: [0, 0, 1], score: 1 }] as unknown as CocoResult[];
    expect(() => evaluateCoco(gt, badBox)).toThrow(/bbox must be 4 finite numbers/);
    const badScore = [{ image_id: 1, category_id: 1, bbox: [0, 0, 1, 1], score: Number.NaN }];
    expect(() => evaluateCoco(gt, badScore as CocoResult[])).toThrow(/score must be a finite number/);
    const noArea = { ...gt, annotations: [{ ...gt.annotations[0], area: undefined }] } as unknown as CocoDataset;
    expect(() => evaluateCoco(noArea, [], { gtFile: 'gt.json' })).toThrow(/gt\.json: annotation 1: area/);
  });
});
