/**
 * PASCAL VOC detection AP (Everingham et al.; the devkit's VOCevaldet.m and VOCap.m), at one IoU threshold:
 * the metric of the VinDr-CXR benchmark (mAP at IoU 0.4, VOC 2010 interpolation).
 *
 * Per class, detections of every image are ranked by descending score (ties keep input order, as MATLAB's
 * `sort` does); each is matched to the ground-truth box of its image with the highest IoU; it is a true
 * positive when that IoU is ≥ the threshold and the box is not yet taken, a false positive when taken or
 * below; a "difficult" box (COCO `iscrowd`) it matches makes it neither. AP from the precision/recall curve:
 * - `voc2010` (VOC 2010 on): area under the curve with precision made monotone (all points);
 * - `voc2007`: the mean of the highest precision at recall ≥ 0, 0.1, …, 1 (11 points).
 * mAP is the mean over classes with at least one non-difficult box. IoU is the continuous box IoU
 * (pycocotools' formula), not the devkit's +1-pixel count: boxes here are continuous coordinates. When a
 * detection overlaps a difficult and a normal box equally, the normal one wins (the devkit takes the first
 * in file order).
 */

import { xywhIou } from '@fedcxr/base';
import type { CocoDataset, CocoResult } from '../coco.js';
import { groupByImage } from './boxes.js';

export type VocApMethod = 'voc2010' | 'voc2007';

export interface VocEvalOptions {
  /** IoU a detection needs to count as a hit; default 0.5 (VinDr-CXR: 0.4). */
  iou?: number;
  method?: VocApMethod;
  gtFile?: string;
  dtFile?: string;
}

export interface VocClassResult {
  id: number;
  name: string;
  /** AP, or null for a class with no non-difficult ground truth (left out of the mean). */
  AP: number | null;
  numGt: number;
  numDetections: number;
  truePositives: number;
  /** The curve, one point per ranked detection (difficult matches left out). */
  precision: number[];
  recall: number[];
}

export interface VocEvalResult {
  iou: number;
  method: VocApMethod;
  mAP: number;
  perCategory: VocClassResult[];
}

export function evaluateVoc(gt: CocoDataset, dt: readonly CocoResult[], options: VocEvalOptions = {}): VocEvalResult {
  const iou = options.iou ?? 0.5;
  const method = options.method ?? 'voc2010';
  if (!(iou > 0 && iou <= 1)) throw new RangeError(`VOC IoU threshold must be in (0, 1], got ${iou}`);
  const { images } = groupByImage(gt, dt, Number.NEGATIVE_INFINITY, options);
  const perCategory = gt.categories.map((category) => evaluateClass(images, category.id, category.name, iou, method));
  const scored = perCategory.filter((c) => c.AP !== null);
  const mAP = scored.length ? scored.reduce((sum, c) => sum + (c.AP as number), 0) / scored.length : 0;
  return { iou, method, mAP, perCategory };
}

function evaluateClass(
  images: ReturnType<typeof groupByImage>['images'],
  categoryId: number,
  name: string,
  threshold: number,
  method: VocApMethod,
): VocClassResult {
  // Every detection of the class with its image, in one ranking across images.
  const ranked: { image: number; box: number; score: number; order: number }[] = [];
  let numGt = 0;
  let order = 0;
  images.forEach((image, i) => {
    for (let g = 0; g < image.gtCategory.length; g++) if (image.gtCategory[g] === categoryId) numGt++;
    for (let d = 0; d < image.dtCategory.length; d++) {
      if (image.dtCategory[d] === categoryId)
        ranked.push({ image: i, box: d, score: image.dtScore[d], order: order++ });
    }
  });
  ranked.sort((a, b) => b.score - a.score || a.order - b.order);
  const taken = images.map((image) => new Uint8Array(image.gtCategory.length));
  const tp: number[] = [];
  const fp: number[] = [];
  for (const { image: i, box: d } of ranked) {
    const image = images[i];
    const [dx, dy, dw, dh] = image.dt.slice(4 * d, 4 * d + 4);
    let best = -1;
    let bestIou = Number.NEGATIVE_INFINITY;
    let bestIsDifficult = false;
    for (let g = 0; g < image.gtCategory.length; g++) {
      if (image.gtCategory[g] !== categoryId) continue;
      const o = xywhIou(dx, dy, dw, dh, image.gt[4 * g], image.gt[4 * g + 1], image.gt[4 * g + 2], image.gt[4 * g + 3]);
      if (o > bestIou) {
        bestIou = o;
        best = g;
        bestIsDifficult = false;
      }
    }
    // Difficult boxes compete on IoU with the others, as in the devkit (one ground-truth list per image).
    for (let c = 0; c < image.crowdCategory.length; c++) {
      if (image.crowdCategory[c] !== categoryId) continue;
      const o = xywhIou(
        dx,
        dy,
        dw,
        dh,
        image.crowd[4 * c],
        image.crowd[4 * c + 1],
        image.crowd[4 * c + 2],
        image.crowd[4 * c + 3],
      );
      if (o > bestIou) {
        bestIou = o;
        best = c;
        bestIsDifficult = true;
      }
    }
    if (best >= 0 && bestIou >= threshold) {
      if (bestIsDifficult) continue;
      if (!taken[i][best]) {
        taken[i][best] = 1;
        tp.push(1);
        fp.push(0);
      } else {
        tp.push(0);
        fp.push(1);
      }
    } else {
      tp.push(0);
      fp.push(1);
    }
  }
  const precision: number[] = [];
  const recall: number[] = [];
  let cumTp = 0;
  let cumFp = 0;
  for (let k = 0; k < tp.length; k++) {
    cumTp += tp[k];
    cumFp += fp[k];
    recall.push(numGt > 0 ? cumTp / numGt : 0);
    precision.push(cumTp / (cumTp + cumFp));
  }
  const AP =
    numGt === 0 ? null : method === 'voc2010' ? allPointAp(recall, precision) : elevenPointAp(recall, precision);
  return { id: categoryId, name, AP, numGt, numDetections: ranked.length, truePositives: cumTp, precision, recall };
}

/** VOCap.m: precision made non-increasing from the right, summed over the recall steps. */
function allPointAp(recall: readonly number[], precision: readonly number[]): number {
  const mrec = [0, ...recall, 1];
  const mpre = [0, ...precision, 0];
  for (let i = mpre.length - 2; i >= 0; i--) mpre[i] = Math.max(mpre[i], mpre[i + 1]);
  let ap = 0;
  for (let i = 1; i < mrec.length; i++) if (mrec[i] !== mrec[i - 1]) ap += (mrec[i] - mrec[i - 1]) * mpre[i];
  return ap;
}

/** VOC 2007: the mean over recall levels 0, 0.1, …, 1 of the best precision at that recall or above. */
function elevenPointAp(recall: readonly number[], precision: readonly number[]): number {
  let ap = 0;
  for (let step = 0; step <= 10; step++) {
    // k·0.1 as numpy's arange(0, 1.1, 0.1) gives it (0.30000000000000004): a recall of exactly 3/10 is below it.
    const t = step * 0.1;
    let best = 0;
    for (let k = 0; k < recall.length; k++) if (recall[k] >= t && precision[k] > best) best = precision[k];
    ap += best / 11;
  }
  return ap;
}
