/**
 * PASCAL VOC AP against the devkit-following reference (tools/reference/eval_voc_reference.py wrote
 * tools/reference/fixtures/eval/voc_cases.json), plus cases small enough to work out by hand.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { CocoDataset, CocoResult } from '../coco.js';
import { evaluateVoc, type VocApMethod } from './voc.js';

interface VocCase {
  name: string;
  gt: CocoDataset;
  dt: CocoResult[];
  expected: Record<string, { per_category: Record<string, number | null>; mAP: number }>;
}

const cases = JSON.parse(
  readFileSync(
    fileURLToPath(new URL('../../../../tools/reference/fixtures/eval/voc_cases.json', import.meta.url)),
    'utf8',
  ),
) as VocCase[];

describe('VOC AP as the devkit computes it', () => {
  for (const c of cases) {
    it(c.name, () => {
      for (const [key, expected] of Object.entries(c.expected)) {
        const [method, iou] = key.split('@');
        const result = evaluateVoc(c.gt, c.dt, { iou: Number(iou), method: method as VocApMethod });
        for (const category of result.perCategory) {
          const want = expected.per_category[String(category.id)];
          if (want === null) expect(category.AP, `${key} ${category.name}`).toBeNull();
          else expect(category.AP, `${key} ${category.name}`).toBeCloseTo(want, 12);
        }
        expect(result.mAP, key).toBeCloseTo(expected.mAP, 12);
      }
    });
  }

  it('covers both thresholds, both methods, ties, difficult boxes and a class without ground truth', () => {
    expect(cases.map((c) => c.name)).toEqual(
      expect.arrayContaining(['three classes, tied scores', 'difficult (crowd) boxes', 'a class without ground truth']),
    );
    // The thresholds must matter in the fixture, or the 0.4 runs prove nothing beyond the 0.5 ones.
    expect(cases.some((c) => c.expected['voc2010@0.4'].mAP !== c.expected['voc2010@0.5'].mAP)).toBe(true);
    expect(cases.flatMap((c) => Object.values(c.expected).map((e) => e.mAP)).every((v) => v > 0 && v < 1)).toBe(true);
  });
});

describe('VOC AP by hand', () => {
  const gt: CocoDataset = {
    images: [
      { id: 1, width: 100, height: 100, file_name: 'a.png' },
      { id: 2, width: 100, height: 100, file_name: 'b.png' },
    ],
    annotations: [
      { id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 10, 10], area: 100, iscrowd: 0 },
      { id: 2, image_id: 2, category_id: 1, bbox: [50, 50, 10, 10], area: 100, iscrowd: 0 },
      { id: 3, image_id: 2, category_id: 1, bbox: [0, 0, 20, 20], area: 400, iscrowd: 1 },
    ],
    categories: [
      { id: 1, name: 'nodule' },
      { id: 2, name: 'mass' },
    ],
  };

  it('hit, duplicate, miss and a difficult match; 0.4 admits what 0.5 does not', () => {
    const dt: CocoResult[] = [
      { image_id: 1, category_id: 1, bbox: [0, 0, 10, 10], score: 0.9 }, // TP
      { image_id: 1, category_id: 1, bbox: [0, 0, 10, 10], score: 0.8 }, // duplicate: FP
      { image_id: 2, category_id: 1, bbox: [0, 0, 19, 19], score: 0.7 }, // on the difficult box: ignored
      { image_id: 2, category_id: 1, bbox: [50, 50, 10, 5.5], score: 0.6 }, // IoU 0.55
      { image_id: 2, category_id: 1, bbox: [52, 50, 10, 10], score: 0.5 }, // IoU 80/120 = 0.667 but taken: FP
    ];
    const at05 = evaluateVoc(gt, dt, { iou: 0.5 });
    // Points (P, R): (1, .5) (.5, .5) (.667, 1) (.5, 1) → AP = .5·1 + .5·.667.
    expect(at05.perCategory[0].precision).toEqual([1, 0.5, 2 / 3, 0.5]);
    expect(at05.perCategory[0].AP).toBeCloseTo(0.5 + 0.5 * (2 / 3), 12);
    expect(at05.perCategory[1]).toMatchObject({ AP: null, numGt: 0 });
    expect(at05.mAP).toBeCloseTo(0.5 + 0.5 * (2 / 3), 12);
    // 11 points: recall 0…0.5 → 1 (6 points), 0.6…1 → 0.667 (5 points).
    expect(evaluateVoc(gt, dt, { iou: 0.5, method: 'voc2007' }).mAP).toBeCloseTo((6 + 5 * (2 / 3)) / 11, 12);

    const shifted = dt.map((d, i) =>
      i === 3 ? { ...d, bbox: [50, 50, 10, 4.5] as [number, number, number, number] } : d,
    );
    // IoU 0.45: a miss at 0.5, a hit at 0.4.
    expect(evaluateVoc(gt, shifted, { iou: 0.5 }).perCategory[0].truePositives).toBe(2);
    expect(evaluateVoc(gt, shifted, { iou: 0.4 }).perCategory[0].truePositives).toBe(2);
    expect(evaluateVoc(gt, shifted, { iou: 0.5 }).perCategory[0].precision[2]).toBeCloseTo(1 / 3, 12);
    expect(evaluateVoc(gt, shifted, { iou: 0.4 }).perCategory[0].precision[2]).toBeCloseTo(2 / 3, 12);
  });

  it('rejects a threshold outside (0, 1] and detections on unknown images', () => {
    expect(() => evaluateVoc(gt, [], { iou: 0 })).toThrow(/\(0, 1\]/);
    expect(() => evaluateVoc(gt, [{ image_id: 9, category_id: 1, bbox: [0, 0, 1, 1], score: 1 }])).toThrow(
      /image 9, which is not in the ground truth/,
    );
  });
});
