/** Loads the pycocotools parity fixtures written by tools/reference/eval_make_fixtures.py. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { CocoDataset, CocoResult } from '../coco.js';

export interface FrocExpected {
  sensitivities: number[];
  score: number;
  points: number;
  fps_sum: number;
  sens_sum: number;
  numTargets: number;
}

export interface FixtureCase {
  name: string;
  images: number[];
  categories: [number, string][];
  gt: [number, number, number, number, number, number, number, number, 0 | 1][];
  dt: [number, number, number, number, number, number, number][];
  params?: {
    iouThrs?: number[];
    recThrs?: number[];
    maxDets?: number[];
    areaRng?: [number, number][];
    imgIds?: number[];
    catIds?: number[];
    useCats?: 0 | 1;
  };
  expected: {
    imgIds: number[];
    catIds: number[];
    counts: [number, number, number, number, number];
    stats: number[];
    per_category: [number, number, number, number][];
    precision_sum: number[][][];
    recall_sum: number[][][];
    precision_wsum: number;
    recall_wsum: number;
    scores_wsum: number;
    curves_iou50: number[][];
    rsna: { map: number; perThreshold: number[]; imagesScored: number; imagesSkipped: number };
    froc: Record<'iou50' | 'iou20' | 'center', FrocExpected>;
  };
}

export interface Fixture {
  default_params: { iouThrs: number[]; recThrs: number[] };
  cases: FixtureCase[];
}

const fixturePath = fileURLToPath(
  new URL('../../../../tools/reference/fixtures/eval/coco_cases.json', import.meta.url),
);
export const fixture = JSON.parse(readFileSync(fixturePath, 'utf8')) as Fixture;

export function caseToCoco(c: FixtureCase): { gt: CocoDataset; dt: CocoResult[] } {
  const gt: CocoDataset = {
    images: c.images.map((id) => ({ id, file_name: `${id}.png`, width: 1024, height: 1024 })),
    categories: c.categories.map(([id, name]) => ({ id, name })),
    annotations: c.gt.map(([id, image_id, category_id, x, y, w, h, area, iscrowd]) => ({
      id,
      image_id,
      category_id,
      bbox: [x, y, w, h],
      area,
      iscrowd,
    })),
  };
  const dt: CocoResult[] = c.dt.map(([image_id, category_id, x, y, w, h, score]) => ({
    image_id,
    category_id,
    bbox: [x, y, w, h],
    score,
  }));
  return { gt, dt };
}

/** Exact (Neumaier) sum, so checksums compare against Python's math.fsum without our own rounding noise. */
export function exactishSum(values: Iterable<number>): number {
  let sum = 0;
  let compensation = 0;
  for (const v of values) {
    const t = sum + v;
    compensation += Math.abs(sum) >= Math.abs(v) ? sum - t + v : v - t + sum;
    sum = t;
  }
  return sum + compensation;
}
