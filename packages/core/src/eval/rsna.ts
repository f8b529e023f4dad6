/**
 * The RSNA Pneumonia Detection Challenge metric (Kaggle, 2018), as its evaluation page defines it:
 *
 * - thresholds t = 0.40, 0.45, …, 0.75;
 * - per image and threshold, predictions are taken in descending confidence; each one is matched to the
 *   still-unmatched ground-truth box (same category) with the highest IoU, and is a hit (TP) when that IoU
 *   is **greater than** t; otherwise it is a FP. Ground truth left unmatched are FN;
 * - image precision at t = TP / (TP + FP + FN); the image's score is the mean over the thresholds;
 * - an image with no ground truth and no predictions is skipped; one with no ground truth but with
 *   predictions scores 0 (and counts);
 * - the metric is the mean of the image scores over all (non-skipped) images.
 *
 * IoU is the continuous box IoU (pycocotools' formula) rather than Kaggle's pixel count. With several
 * categories, matches stay within a category and TP/FP/FN are summed over the image's categories.
 * Crowd ground truth is left out. `minScore` drops low-confidence predictions first (the challenge scored
 * every submitted box, so the default keeps all).
 */

import { xywhIou } from '@fedcxr/base';
import type { CocoDataset, CocoResult } from '../coco.js';
import { groupByImage } from './boxes.js';
import { linspace } from './numpy-compat.js';

export interface RsnaMapOptions {
  /** IoU thresholds (default 0.40 … 0.75, step 0.05). */
  thresholds?: readonly number[];
  /** Predictions scoring below this are ignored (default: keep all). */
  minScore?: number;
  gtFile?: string;
  dtFile?: string;
}

export interface RsnaMapResult {
  /** The challenge score: mean over scored images of the per-image mean precision. */
  map: number;
  thresholds: number[];
  /** Mean over scored images of the precision at each threshold. */
  perThreshold: number[];
  imagesScored: number;
  /** Images with neither ground truth nor predictions (excluded from the mean). */
  imagesSkipped: number;
}

export const RSNA_THRESHOLDS: readonly number[] = linspace(0.4, 0.75, 8);

export function rsnaMap(gt: CocoDataset, dt: readonly CocoResult[], options: RsnaMapOptions = {}): RsnaMapResult {
  const thresholds = [...(options.thresholds ?? RSNA_THRESHOLDS)];
  const { images } = groupByImage(gt, dt, options.minScore ?? Number.NEGATIVE_INFINITY, options);
  const perThresholdSum = new Float64Array(thresholds.length);
  let total = 0;
  let scored = 0;
  let skipped = 0;
  for (const image of images) {
    const G = image.gtCategory.length;
    const D = image.dtCategory.length;
    if (G === 0 && D === 0) {
      skipped++;
      continue;
    }
    scored++;
    let imageSum = 0;
    for (let t = 0; t < thresholds.length; t++) {
      const precision =
        G === 0 ? 0 : imagePrecision(image.gt, image.gtCategory, image.dt, image.dtCategory, thresholds[t]);
      perThresholdSum[t] += precision;
      imageSum += precision;
    }
    total += imageSum / thresholds.length;
  }
  return {
    map: scored ? total / scored : 0,
    thresholds,
    perThreshold: Array.from(perThresholdSum, (sum) => (scored ? sum / scored : 0)),
    imagesScored: scored,
    imagesSkipped: skipped,
  };
}

function imagePrecision(gt: number[], gtCategory: number[], dt: number[], dtCategory: number[], threshold: number) {
  const G = gtCategory.length;
  const matched = new Uint8Array(G);
  let tp = 0;
  let fp = 0;
  for (let d = 0; d < dtCategory.length; d++) {
    let best = -1;
    let bestIou = Number.NEGATIVE_INFINITY;
    for (let g = 0; g < G; g++) {
      if (matched[g] || gtCategory[g] !== dtCategory[d]) continue;
      const iou = xywhIou(
        dt[4 * d],
        dt[4 * d + 1],
        dt[4 * d + 2],
        dt[4 * d + 3],
        gt[4 * g],
        gt[4 * g + 1],
        gt[4 * g + 2],
        gt[4 * g + 3],
      );
      if (iou > bestIou) {
        bestIou = iou;
        best = g;
      }
    }
    if (best >= 0 && bestIou > threshold) {
      matched[best] = 1;
      tp++;
    } else fp++;
  }
  const fn = G - tp;
  return tp / (tp + fp + fn);
}
