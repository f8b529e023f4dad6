/**
 * FROC (free-response ROC): sensitivity against the mean number of false positives per image, and the
 * average sensitivity at 1/8, 1/4, 1/2, 1, 2, 4 and 8 FP/image (the LUNA16 operating points).
 *
 * The curve is built the way MONAI's `monai.metrics.froc` builds it (after the CAMELYON16 evaluation code):
 * - each detection either hits a target, or is a false positive, or is excluded;
 * - a target's probability is the highest score among the detections that hit it, 0 if none did; the other
 *   detections on an already-hit target are neither TP nor FP (as in LUNA16);
 * - thresholds are the sorted distinct values of all FP and target probabilities, **skipping the lowest**;
 *   at each, FPs = #(fp ≥ thr), TPs = #(target ≥ thr); a final (0, 0) point is appended;
 * - FP/image = FPs / #images, sensitivity = TPs / #targets; the value at each FP rate is `np.interp` on the
 *   reversed arrays, and the FROC score is their mean.
 *
 * Hit criterion for boxes (MONAI tests whether a detection point lies inside a target's region):
 * - `{ kind: 'iou', threshold }` (default, threshold 0.5): IoU ≥ threshold with a ground-truth box of the
 *   same category; among several, the one with the highest IoU (the first on ties);
 * - `{ kind: 'center' }`: the detection box's center lies inside the ground-truth box (edges included);
 *   among several, the one with the highest IoU.
 * Detections that hit no target but hit a crowd region (same criterion, IoU replaced by intersection over the
 * detection's area, as pycocotools treats crowds) are excluded, like MONAI's `labels_to_exclude`.
 * Targets are the non-crowd ground-truth boxes of all categories; images are all images of the ground truth.
 * Probabilities stay float64 (MONAI stores target probabilities as float32).
 */

import { xywhIou } from '@fedcxr/base';
import type { CocoDataset, CocoResult } from '../coco.js';
import { boxIoa, groupByImage } from './boxes.js';
import { interp, numpyMean } from './numpy-compat.js';

export type FrocHitCriterion = { kind: 'iou'; threshold: number } | { kind: 'center' };

export interface FrocOptions {
  hit?: FrocHitCriterion;
  /** FP/image operating points (default LUNA16's 1/8 … 8). */
  fpRates?: readonly number[];
  gtFile?: string;
  dtFile?: string;
}

export interface FrocResult {
  hit: FrocHitCriterion;
  fpRates: number[];
  /** Sensitivity interpolated at each FP rate. */
  sensitivities: number[];
  /** Mean of `sensitivities` (the FROC/CPM score). NaN when there are no targets. */
  score: number;
  numTargets: number;
  numImages: number;
  /** The curve's points, in MONAI's order (descending FP/image). */
  curve: { thresholds: number[]; fpsPerImage: number[]; sensitivity: number[] };
}

export const LUNA16_FP_RATES: readonly number[] = [0.125, 0.25, 0.5, 1, 2, 4, 8];

/** Splits detections into false-positive probabilities and per-target probabilities. */
export function frocProbabilities(
  gt: CocoDataset,
  dt: readonly CocoResult[],
  hit: FrocHitCriterion = { kind: 'iou', threshold: 0.5 },
  files: { gtFile?: string; dtFile?: string } = {},
): { fpProbs: number[]; targetProbs: number[]; numImages: number } {
  const { images } = groupByImage(gt, dt, Number.NEGATIVE_INFINITY, files);
  const fpProbs: number[] = [];
  const targetProbs: number[] = [];
  for (const image of images) {
    const G = image.gtCategory.length;
    const best = new Float64Array(G);
    const wasHit = new Uint8Array(G);
    for (let d = 0; d < image.dtCategory.length; d++) {
      const [dx, dy, dw, dh] = image.dt.slice(4 * d, 4 * d + 4);
      const category = image.dtCategory[d];
      const score = image.dtScore[d];
      let target = -1;
      let targetIou = Number.NEGATIVE_INFINITY;
      for (let g = 0; g < G; g++) {
        if (image.gtCategory[g] !== category) continue;
        const [gx, gy, gw, gh] = image.gt.slice(4 * g, 4 * g + 4);
        const iou = xywhIou(dx, dy, dw, dh, gx, gy, gw, gh);
        const hits = hit.kind === 'iou' ? iou >= hit.threshold : centerInside(dx, dy, dw, dh, gx, gy, gw, gh);
        if (hits && iou > targetIou) {
          target = g;
          targetIou = iou;
        }
      }
      if (target >= 0) {
        if (!wasHit[target] || score > best[target]) best[target] = score;
        wasHit[target] = 1;
        continue;
      }
      let excluded = false;
      for (let c = 0; c < image.crowdCategory.length && !excluded; c++) {
        if (image.crowdCategory[c] !== category) continue;
        const [gx, gy, gw, gh] = image.crowd.slice(4 * c, 4 * c + 4);
        excluded =
          hit.kind === 'iou'
            ? boxIoa(dx, dy, dw, dh, gx, gy, gw, gh) >= hit.threshold
            : centerInside(dx, dy, dw, dh, gx, gy, gw, gh);
      }
      if (!excluded) fpProbs.push(score);
    }
    // MONAI keeps 0 for targets nothing hit (and the max otherwise, even when that max is negative).
    for (let g = 0; g < G; g++) targetProbs.push(wasHit[g] ? best[g] : 0);
  }
  return { fpProbs, targetProbs, numImages: images.length };
}

function centerInside(dx: number, dy: number, dw: number, dh: number, gx: number, gy: number, gw: number, gh: number) {
  const cx = dx + dw / 2;
  const cy = dy + dh / 2;
  return cx >= gx && cx <= gx + gw && cy >= gy && cy <= gy + gh;
}

/** MONAI's `compute_froc_curve_data`. */
export function frocCurve(
  fpProbs: readonly number[],
  targetProbs: readonly number[],
  numImages: number,
): { thresholds: number[]; fpsPerImage: number[]; sensitivity: number[] } {
  const fp = Float64Array.from(fpProbs).sort();
  const tp = Float64Array.from(targetProbs).sort();
  const all = [...new Set([...fp, ...tp])].sort((a, b) => a - b);
  const thresholds = all.slice(1);
  const fpsPerImage: number[] = [];
  const sensitivity: number[] = [];
  // Counts of values ≥ thr, with pointers moving up both sorted arrays as thr rises.
  let fi = 0;
  let ti = 0;
  for (const thr of thresholds) {
    while (fi < fp.length && fp[fi] < thr) fi++;
    while (ti < tp.length && tp[ti] < thr) ti++;
    fpsPerImage.push((fp.length - fi) / numImages);
    sensitivity.push((tp.length - ti) / tp.length);
  }
  fpsPerImage.push(0 / numImages);
  sensitivity.push(0 / tp.length);
  return { thresholds, fpsPerImage, sensitivity };
}

/** MONAI's `compute_froc_score`: np.interp on the reversed curve, then the mean. */
export function frocScore(
  curve: { fpsPerImage: readonly number[]; sensitivity: readonly number[] },
  fpRates: readonly number[] = LUNA16_FP_RATES,
): { sensitivities: number[]; score: number } {
  const xp = [...curve.fpsPerImage].reverse();
  const fp = [...curve.sensitivity].reverse();
  const sensitivities = fpRates.map((rate) => interp(rate, xp, fp));
  return { sensitivities, score: numpyMean(sensitivities) };
}

export function froc(gt: CocoDataset, dt: readonly CocoResult[], options: FrocOptions = {}): FrocResult {
  const hit = options.hit ?? { kind: 'iou', threshold: 0.5 };
  const fpRates = [...(options.fpRates ?? LUNA16_FP_RATES)];
  const { fpProbs, targetProbs, numImages } = frocProbabilities(gt, dt, hit, options);
  const curve = frocCurve(fpProbs, targetProbs, numImages);
  const { sensitivities, score } = frocScore(curve, fpRates);
  return { hit, fpRates, sensitivities, score, numTargets: targetProbs.length, numImages, curve };
}
