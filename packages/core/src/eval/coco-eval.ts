/**
 * COCO bounding-box evaluation, reproducing pycocotools' `COCOeval` (iouType 'bbox') number for number:
 * the same inputs give the same `precision`/`recall`/`scores` arrays and the same 12 `stats`, to the last
 * bit. Every quirk is kept on purpose, because the point is that a figure computed here can be quoted
 * next to one computed by pycocotools:
 *
 * - images and categories are the sorted unique ids of the ground truth; detections of unknown categories
 *   are dropped, detections on unknown images are an error (pycocotools asserts);
 * - a detection's area is `w*h` of its box (as `loadRes` sets it); a ground truth's area is its stored
 *   `area` (mask area in real COCO), so area ranges use that, inclusive at both ends;
 * - detections are ordered by a stable sort on descending score (numpy mergesort), per image and then
 *   across images in image-id order, and only the top `maxDets[-1]` per image and category are kept;
 * - greedy matching per IoU threshold with pycocotools' exact rules for crowd and ignored ground truth;
 *   a match to a ground truth whose id is 0 counts as no match (pycocotools tests `dtm` for non-zero);
 * - 101-point interpolated precision via `searchsorted(recall, recThrs, 'left')` on the monotone envelope,
 *   with `tp / (fp + tp + eps)`; -1 where a category has no (non-ignored) ground truth;
 * - summaries average the values > -1 with numpy's pairwise summation.
 *
 * One deliberate difference: pycocotools crashes on an empty result list; here that evaluates to zeros.
 * Implementation: typed arrays and counting sorts; no per-detection objects in the inner loops.
 */

import { FedcxrError } from '@fedcxr/base';
import type { CocoDataset, CocoResult } from '../coco.js';
import { linspace, pairwiseSum } from './numpy-compat.js';

export interface CocoEvalParams {
  /** IoU thresholds (pycocotools: linspace(.5, .95, 10)). */
  iouThrs: readonly number[];
  /** Recall thresholds (pycocotools: linspace(0, 1, 101)). */
  recThrs: readonly number[];
  /** Detections kept per image, ascending (pycocotools sorts them; [1, 10, 100]). */
  maxDets: readonly number[];
  /** Area ranges [min, max], inclusive (all, small, medium, large). */
  areaRng: readonly (readonly [number, number])[];
  areaRngLbl: readonly string[];
}

/** pycocotools' default bbox parameters, computed the way numpy computes them. */
export function defaultCocoEvalParams(): CocoEvalParams {
  return {
    iouThrs: linspace(0.5, 0.95, Math.round((0.95 - 0.5) / 0.05) + 1),
    recThrs: linspace(0.0, 1.0, Math.round((1.0 - 0.0) / 0.01) + 1),
    maxDets: [1, 10, 100],
    areaRng: [
      [0, 1e10],
      [0, 32 ** 2],
      [32 ** 2, 96 ** 2],
      [96 ** 2, 1e10],
    ],
    areaRngLbl: ['all', 'small', 'medium', 'large'],
  };
}

export interface CocoEvalOptions {
  /** Override some parameters (e.g. `{ iouThrs: [0.4] }`); the rest stay pycocotools' defaults. */
  params?: Partial<CocoEvalParams>;
  /** Evaluate only these images (pycocotools `params.imgIds`; default: every image of the ground truth). */
  imgIds?: readonly number[];
  /** Evaluate only these categories (pycocotools `params.catIds`; default: every category). */
  catIds?: readonly number[];
  /**
   * false: ignore categories, pooling every evaluated category into one (pycocotools `params.useCats = 0`,
   * reported as category id -1). Default true.
   */
  useCats?: boolean;
  /** File names used in error messages. */
  gtFile?: string;
  dtFile?: string;
}

export interface CategoryMetrics {
  id: number;
  name: string;
  /** AP@[.5:.95] (mean over the IoU thresholds), area all, maxDets 100; -1 when it has no ground truth. */
  AP: number;
  /** AP at IoU 0.5 (-1 when 0.5 is not among the thresholds or there is no ground truth). */
  AP50: number;
  /** AP at IoU 0.75. */
  AP75: number;
  /** Recall averaged over IoU thresholds at maxDets 100 (AR@100 for this category). */
  AR100: number;
  /** Number of ground-truth boxes that count (non-crowd) for this category. */
  numGt: number;
}

export interface CocoEvalResult {
  params: CocoEvalParams;
  imgIds: number[];
  catIds: number[];
  /** Dimensions [T, R, K, A, M] of `precision`/`scores` (numpy C order); `recall` is [T, K, A, M]. */
  counts: [number, number, number, number, number];
  precision: Float64Array;
  recall: Float64Array;
  scores: Float64Array;
  /** The 12 numbers of `COCOeval.stats`, in pycocotools' order (empty unless there are ≥3 maxDets). */
  stats: number[];
  perCategory: CategoryMetrics[];
}

/** Names of the 12 stats, in pycocotools' order. */
export const COCO_STAT_NAMES = [
  'AP',
  'AP50',
  'AP75',
  'APs',
  'APm',
  'APl',
  'AR1',
  'AR10',
  'AR100',
  'ARs',
  'ARm',
  'ARl',
] as const;

interface Prepared {
  imgIds: number[];
  catIds: number[];
  /** Ground truth grouped by key = k * I + i (dataset order inside a group). */
  gtStart: Int32Array;
  gtX: Float64Array;
  gtY: Float64Array;
  gtW: Float64Array;
  gtH: Float64Array;
  gtArea: Float64Array;
  gtCrowd: Uint8Array;
  /** 1 where the annotation id is non-zero (pycocotools' `dtm` stores the id and tests it for truth). */
  gtIdNonZero: Uint8Array;
  /** Kept detections grouped by key, each group in descending score order, at most maxDets[-1]. */
  dtStart: Int32Array;
  dtX: Float64Array;
  dtY: Float64Array;
  dtW: Float64Array;
  dtH: Float64Array;
  dtArea: Float64Array;
  dtScore: Float64Array;
  /** Position of the detection inside its image (0 = highest score), for maxDets truncation. */
  dtRank: Int32Array;
}

function fail(file: string | undefined, message: string): never {
  throw new FedcxrError('invalid_coco', message, { file });
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

function checkBox(box: unknown, file: string | undefined, what: string): asserts box is number[] {
  if (!Array.isArray(box) || box.length !== 4 || !box.every(isFiniteNumber)) {
    fail(file, `${what}: bbox must be 4 finite numbers [x, y, width, height], got ${JSON.stringify(box)}`);
  }
}

function sortedUnique(values: number[]): number[] {
  return [...new Set(values)].sort((a, b) => a - b);
}

function prepare(gt: CocoDataset, dt: readonly CocoResult[], params: CocoEvalParams, options: CocoEvalOptions) {
  const { gtFile, dtFile } = options;
  if (!gt || !Array.isArray(gt.images) || !Array.isArray(gt.annotations) || !Array.isArray(gt.categories)) {
    fail(gtFile, 'ground truth must be a COCO dataset with images, annotations and categories arrays');
  }
  if (!Array.isArray(dt)) fail(dtFile, 'detections must be a JSON array of COCO results');
  const imageIdList: number[] = [];
  for (const image of gt.images) {
    if (!isFiniteNumber(image?.id)) fail(gtFile, `image without a numeric id: ${JSON.stringify(image)}`);
    imageIdList.push(image.id);
  }
  const catIdList: number[] = [];
  for (const category of gt.categories) {
    if (!isFiniteNumber(category?.id)) fail(gtFile, `category without a numeric id: ${JSON.stringify(category)}`);
    catIdList.push(category.id);
  }
  const allImages = new Set(imageIdList);
  const imgIds = sortedUnique(options.imgIds ? [...options.imgIds] : imageIdList);
  const catIds = sortedUnique(options.catIds ? [...options.catIds] : catIdList);
  const I = imgIds.length;
  const K = catIds.length;
  const imgIndex = new Map<number, number>();
  for (let i = 0; i < I; i++) imgIndex.set(imgIds[i], i);
  const catIndex = new Map<number, number>();
  for (let k = 0; k < K; k++) catIndex.set(catIds[k], k);
  const groups = K * I;
  const useCats = options.useCats ?? true;
  // Fine groups: (category, image) with categories; (image, category) without, so that an image's boxes are
  // contiguous in category order, which is the order pycocotools concatenates them in when useCats = 0.
  const fineKey = (k: number, i: number) => (useCats ? k * I + i : i * K + k);
  const coarse = (starts: Int32Array) =>
    useCats ? starts : Int32Array.from({ length: I + 1 }, (_, i) => starts[i * K]);
  const coarseGroups = useCats ? groups : I;

  // Ground truth: keep annotations of known images and categories, grouped stably by (category, image).
  const annotations = gt.annotations;
  const gtKey = new Int32Array(annotations.length);
  const gtCount = new Int32Array(groups + 1);
  let nGt = 0;
  for (let n = 0; n < annotations.length; n++) {
    const ann = annotations[n];
    const i = imgIndex.get(ann?.image_id);
    const k = catIndex.get(ann?.category_id);
    if (i === undefined || k === undefined) {
      gtKey[n] = -1;
      continue;
    }
    const what = `annotation ${JSON.stringify(ann.id)}`;
    checkBox(ann.bbox, gtFile, what);
    if (!isFiniteNumber(ann.area)) fail(gtFile, `${what}: area must be a finite number`);
    if (ann.iscrowd === undefined) fail(gtFile, `${what}: iscrowd is missing (0 or 1)`);
    gtKey[n] = fineKey(k, i);
    gtCount[gtKey[n] + 1]++;
    nGt++;
  }
  const gtFineStart = new Int32Array(groups + 1);
  for (let g = 0; g < groups; g++) gtFineStart[g + 1] = gtFineStart[g] + gtCount[g + 1];
  const fill = gtFineStart.slice(0, groups);
  const gtStart = coarse(gtFineStart);
  const gtX = new Float64Array(nGt);
  const gtY = new Float64Array(nGt);
  const gtW = new Float64Array(nGt);
  const gtH = new Float64Array(nGt);
  const gtArea = new Float64Array(nGt);
  const gtCrowd = new Uint8Array(nGt);
  const gtIdNonZero = new Uint8Array(nGt);
  for (let n = 0; n < annotations.length; n++) {
    const key = gtKey[n];
    if (key < 0) continue;
    const ann = annotations[n];
    const at = fill[key]++;
    gtX[at] = ann.bbox[0];
    gtY[at] = ann.bbox[1];
    gtW[at] = ann.bbox[2];
    gtH[at] = ann.bbox[3];
    gtArea[at] = ann.area;
    gtCrowd[at] = ann.iscrowd ? 1 : 0;
    gtIdNonZero[at] = ann.id ? 1 : 0;
  }

  // Detections: same grouping, then a stable descending-score sort per group, truncated to maxDets[-1].
  const dtKey = new Int32Array(dt.length);
  const dtCount = new Int32Array(groups + 1);
  for (let n = 0; n < dt.length; n++) {
    const det = dt[n];
    if (!allImages.has(det?.image_id)) {
      fail(dtFile, `detection ${n} is on image ${JSON.stringify(det?.image_id)}, which is not in the ground truth`);
    }
    const i = imgIndex.get(det.image_id);
    const k = catIndex.get(det.category_id);
    if (i === undefined || k === undefined) {
      dtKey[n] = -1;
      continue;
    }
    checkBox(det.bbox, dtFile, `detection ${n}`);
    if (!isFiniteNumber(det.score)) fail(dtFile, `detection ${n}: score must be a finite number`);
    dtKey[n] = fineKey(k, i);
    dtCount[dtKey[n] + 1]++;
  }
  const rawFineStart = new Int32Array(groups + 1);
  for (let g = 0; g < groups; g++) rawFineStart[g + 1] = rawFineStart[g] + dtCount[g + 1];
  const rawFill = rawFineStart.slice(0, groups);
  const rawOrder = new Int32Array(rawFineStart[groups]);
  const rawStart = coarse(rawFineStart);
  const rawScore = new Float64Array(dt.length);
  for (let n = 0; n < dt.length; n++) {
    const key = dtKey[n];
    if (key < 0) continue;
    rawOrder[rawFill[key]++] = n;
    rawScore[n] = dt[n].score;
  }
  const maxDet = params.maxDets[params.maxDets.length - 1];
  const dtStart = new Int32Array(coarseGroups + 1);
  for (let g = 0; g < coarseGroups; g++) {
    dtStart[g + 1] = dtStart[g] + Math.min(maxDet, rawStart[g + 1] - rawStart[g]);
  }
  const nDt = dtStart[coarseGroups];
  const dtX = new Float64Array(nDt);
  const dtY = new Float64Array(nDt);
  const dtW = new Float64Array(nDt);
  const dtH = new Float64Array(nDt);
  const dtArea = new Float64Array(nDt);
  const dtScore = new Float64Array(nDt);
  const dtRank = new Int32Array(nDt);
  for (let g = 0; g < coarseGroups; g++) {
    const start = rawStart[g];
    const end = rawStart[g + 1];
    if (start === end) continue;
    const group = rawOrder.subarray(start, end);
    stableSortByScoreDesc(group, rawScore);
    const kept = Math.min(maxDet, end - start);
    for (let r = 0; r < kept; r++) {
      const det = dt[group[r]];
      const at = dtStart[g] + r;
      dtX[at] = det.bbox[0];
      dtY[at] = det.bbox[1];
      dtW[at] = det.bbox[2];
      dtH[at] = det.bbox[3];
      dtArea[at] = det.bbox[2] * det.bbox[3];
      dtScore[at] = det.score;
      dtRank[at] = r;
    }
  }
  const prepared: Prepared = {
    imgIds,
    catIds: useCats ? catIds : [-1],
    gtStart,
    gtX,
    gtY,
    gtW,
    gtH,
    gtArea,
    gtCrowd,
    gtIdNonZero,
    dtStart,
    dtX,
    dtY,
    dtW,
    dtH,
    dtArea,
    dtScore,
    dtRank,
  };
  return prepared;
}

/**
 * Sorts indices by descending `score[index]`, ties kept in their current order (what numpy's stable
 * mergesort of `-score` does). Insertion sort for the short groups typical of one image.
 */
function stableSortByScoreDesc(indices: Int32Array, score: Float64Array): void {
  const n = indices.length;
  if (n <= 32) {
    for (let a = 1; a < n; a++) {
      const value = indices[a];
      const s = score[value];
      let b = a - 1;
      while (b >= 0 && score[indices[b]] < s) {
        indices[b + 1] = indices[b];
        b--;
      }
      indices[b + 1] = value;
    }
    return;
  }
  // Array.prototype.sort is stable (ES2019); position breaks nothing since it preserves input order.
  const list = Array.from(indices);
  list.sort((p, q) => score[q] - score[p]);
  indices.set(list);
}

/** Detection-state codes per (area range, IoU threshold, detection). */
const FALSE_POSITIVE = 0;
const TRUE_POSITIVE = 1;
const IGNORED = 2;

/**
 * Runs evaluate + accumulate + summarize. `gt` is the dataset, `dt` the result list (`loadRes` input).
 */
export function evaluateCoco(
  gt: CocoDataset,
  dt: readonly CocoResult[],
  options: CocoEvalOptions = {},
): CocoEvalResult {
  const params: CocoEvalParams = { ...defaultCocoEvalParams(), ...options.params };
  params.maxDets = [...params.maxDets].sort((a, b) => a - b);
  if (params.areaRng.length !== params.areaRngLbl.length) {
    throw new FedcxrError('usage', 'areaRng and areaRngLbl must have the same length');
  }
  const p = prepare(gt, dt, params, options);
  const I = p.imgIds.length;
  const K = p.catIds.length;
  const T = params.iouThrs.length;
  const R = params.recThrs.length;
  const A = params.areaRng.length;
  const M = params.maxDets.length;
  const nDt = p.dtScore.length;

  // Each category's kept detections in one stable descending-score order (image order, then rank, break
  // ties): the order pycocotools' accumulate sorts into. The sort of any maxDets subset is this order
  // filtered, because stable sorting commutes with taking a subsequence. Outcomes are stored in this order
  // so accumulation reads memory sequentially.
  const sortedPosition = new Int32Array(nDt);
  const sortedRank = new Int32Array(nDt);
  const sortedScore = new Float64Array(nDt);
  const categoryStart = categoryStarts(p.dtStart, K, I);
  {
    const order = new Int32Array(nDt);
    for (let j = 0; j < nDt; j++) order[j] = j;
    for (let k = 0; k < K; k++) {
      const start = categoryStart[k];
      const end = categoryStart[k + 1];
      const category = order.subarray(start, end);
      stableSortByScoreDesc(category, p.dtScore);
      for (let j = 0; j < category.length; j++) {
        const det = category[j];
        sortedPosition[det] = start + j;
        sortedRank[start + j] = p.dtRank[det];
        sortedScore[start + j] = p.dtScore[det];
      }
    }
  }
  // Per-detection outcome for each (area range, threshold), in sorted positions: [A][T][nDt].
  const state = new Uint8Array(A * T * nDt);
  // Ground truths that count (not crowd, area in range) per (category, area range).
  const npig = new Int32Array(K * A);

  let scratchIou = new Float64Array(64);
  const maxGtPerGroup = maxGroupSize(p.gtStart);
  const gtOrder = new Int32Array(maxGtPerGroup);
  const gtIgnoreSorted = new Uint8Array(maxGtPerGroup);
  const gtMatched = new Uint8Array(maxGtPerGroup);
  const iouLimit = params.iouThrs.map((t) => Math.min(t, 1 - 1e-10));

  for (let k = 0; k < K; k++) {
    for (let i = 0; i < I; i++) {
      const key = k * I + i;
      const g0 = p.gtStart[key];
      const G = p.gtStart[key + 1] - g0;
      const d0 = p.dtStart[key];
      const D = p.dtStart[key + 1] - d0;
      if (G === 0 && D === 0) continue;
      if (D * G > scratchIou.length) scratchIou = new Float64Array(D * G * 2);
      const ious = scratchIou;
      computeIous(p, d0, D, g0, G, ious);
      for (let a = 0; a < A; a++) {
        const [lo, hi] = params.areaRng[a];
        // Non-ignored ground truth first, stable (pycocotools' mergesort on the ignore flag).
        let placed = 0;
        for (let pass = 0; pass < 2; pass++) {
          for (let g = 0; g < G; g++) {
            const area = p.gtArea[g0 + g];
            const ignore = p.gtCrowd[g0 + g] || area < lo || area > hi ? 1 : 0;
            if (ignore !== pass) continue;
            gtOrder[placed] = g;
            gtIgnoreSorted[placed] = ignore;
            placed++;
            if (ignore === 0) npig[k * A + a]++;
          }
        }
        for (let t = 0; t < T; t++) {
          gtMatched.fill(0, 0, G);
          const base = (a * T + t) * nDt;
          for (let d = 0; d < D; d++) {
            let best = iouLimit[t];
            let m = -1;
            const row = d * G;
            for (let s = 0; s < G; s++) {
              const g = gtOrder[s];
              if (gtMatched[s] && !p.gtCrowd[g0 + g]) continue;
              if (m > -1 && gtIgnoreSorted[m] === 0 && gtIgnoreSorted[s] === 1) break;
              const iou = ious[row + g];
              if (iou < best) continue;
              best = iou;
              m = s;
            }
            let matched = 0;
            let ignored = 0;
            if (m !== -1) {
              ignored = gtIgnoreSorted[m];
              matched = p.gtIdNonZero[g0 + gtOrder[m]];
              gtMatched[m] = 1;
            }
            if (!matched) {
              const area = p.dtArea[d0 + d];
              if (area < lo || area > hi) ignored = 1;
            }
            state[base + sortedPosition[d0 + d]] = ignored ? IGNORED : matched ? TRUE_POSITIVE : FALSE_POSITIVE;
          }
        }
      }
    }
  }

  const precision = new Float64Array(T * R * K * A * M).fill(-1);
  const recall = new Float64Array(T * K * A * M).fill(-1);
  const scores = new Float64Array(T * R * K * A * M).fill(-1);
  const maxDetsPerCategory = Math.max(1, maxGroupSize(categoryStart));
  const subset = new Int32Array(maxDetsPerCategory);
  const tpCount = new Int32Array(maxDetsPerCategory);
  const pr = new Float64Array(maxDetsPerCategory);
  const eps = 2.220446049250313e-16; // np.spacing(1)
  const lastMaxDet = params.maxDets[M - 1];

  for (let k = 0; k < K; k++) {
    const start = categoryStart[k];
    const n = categoryStart[k + 1] - start;
    for (let mi = 0; mi < M; mi++) {
      const maxDet = params.maxDets[mi];
      // Positions (in sorted order) of the detections within this maxDets; all of them for the last one.
      const everything = maxDet >= lastMaxDet;
      let nd = n;
      if (!everything) {
        nd = 0;
        for (let j = 0; j < n; j++) if (sortedRank[start + j] < maxDet) subset[nd++] = start + j;
      }
      for (let a = 0; a < A; a++) {
        const positives = npig[k * A + a];
        if (positives === 0) continue;
        for (let t = 0; t < T; t++) {
          const base = (a * T + t) * nDt;
          let tp = 0;
          let fp = 0;
          for (let j = 0; j < nd; j++) {
            const s = state[base + (everything ? start + j : subset[j])];
            if (s === TRUE_POSITIVE) tp++;
            else if (s === FALSE_POSITIVE) fp++;
            tpCount[j] = tp;
            pr[j] = tp / (fp + tp + eps);
          }
          recall[((t * K + k) * A + a) * M + mi] = nd ? tpCount[nd - 1] / positives : 0;
          for (let j = nd - 1; j > 0; j--) if (pr[j] > pr[j - 1]) pr[j - 1] = pr[j];
          for (let r = 0; r < R; r++) {
            // np.searchsorted(tp / npig, recThr, 'left'), dividing only where the search looks.
            const threshold = params.recThrs[r];
            let lo = 0;
            let hi = nd;
            while (lo < hi) {
              const mid = (lo + hi) >>> 1;
              if (tpCount[mid] / positives < threshold) lo = mid + 1;
              else hi = mid;
            }
            if (lo >= nd) {
              // pycocotools stops at the first threshold past the last recall: the rest stay 0.
              for (let rest = r; rest < R; rest++) {
                const restAt = (((t * R + rest) * K + k) * A + a) * M + mi;
                precision[restAt] = 0;
                scores[restAt] = 0;
              }
              break;
            }
            const at = (((t * R + r) * K + k) * A + a) * M + mi;
            precision[at] = pr[lo];
            scores[at] = sortedScore[everything ? start + lo : subset[lo]];
          }
        }
      }
    }
  }

  const result: CocoEvalResult = {
    params,
    imgIds: p.imgIds,
    catIds: p.catIds,
    counts: [T, R, K, A, M],
    precision,
    recall,
    scores,
    stats: [],
    perCategory: [],
  };
  result.stats = M >= 3 ? summarizeStats(result) : [];
  const names = new Map<number, string>();
  for (const category of gt.categories) if (!names.has(category.id)) names.set(category.id, String(category.name));
  result.perCategory = p.catIds.map((id, k) => {
    let numGt = 0;
    for (let i = 0; i < I; i++) {
      for (let g = p.gtStart[k * I + i]; g < p.gtStart[k * I + i + 1]; g++) if (!p.gtCrowd[g]) numGt++;
    }
    const lastMaxDet = params.maxDets[M - 1];
    return {
      id,
      name: options.useCats === false ? 'all' : (names.get(id) ?? String(id)),
      AP: summarize(result, { ap: true, maxDets: lastMaxDet, categoryIndex: k }),
      AP50: summarize(result, { ap: true, iouThr: 0.5, maxDets: lastMaxDet, categoryIndex: k }),
      AP75: summarize(result, { ap: true, iouThr: 0.75, maxDets: lastMaxDet, categoryIndex: k }),
      AR100: summarize(result, { ap: false, maxDets: lastMaxDet, categoryIndex: k }),
      numGt,
    };
  });
  return result;
}

function maxGroupSize(starts: Int32Array): number {
  let max = 0;
  for (let g = 0; g + 1 < starts.length; g++) max = Math.max(max, starts[g + 1] - starts[g]);
  return max;
}

function categoryStarts(dtStart: Int32Array, K: number, I: number): Int32Array {
  const starts = new Int32Array(K + 1);
  for (let k = 0; k <= K; k++) starts[k] = dtStart[k * I];
  return starts;
}

/** pycocotools' bbIou (maskApi.c), D×G row-major: crowd ground truth divides by the detection's area. */
function computeIous(p: Prepared, d0: number, D: number, g0: number, G: number, out: Float64Array): void {
  for (let g = 0; g < G; g++) {
    const gx = p.gtX[g0 + g];
    const gy = p.gtY[g0 + g];
    const gw = p.gtW[g0 + g];
    const gh = p.gtH[g0 + g];
    const ga = gw * gh;
    const crowd = p.gtCrowd[g0 + g];
    for (let d = 0; d < D; d++) {
      const at = d * G + g;
      out[at] = 0;
      const dx = p.dtX[d0 + d];
      const dy = p.dtY[d0 + d];
      const dw = p.dtW[d0 + d];
      const dh = p.dtH[d0 + d];
      const w = Math.min(dw + dx, gw + gx) - Math.max(dx, gx);
      if (w <= 0) continue;
      const h = Math.min(dh + dy, gh + gy) - Math.max(dy, gy);
      if (h <= 0) continue;
      const inter = w * h;
      const da = dw * dh;
      out[at] = inter / (crowd ? da : da + ga - inter);
    }
  }
}

export interface SummarizeQuery {
  /** true: average precision; false: average recall. */
  ap: boolean;
  /** One IoU threshold (must equal one of params.iouThrs exactly, as in pycocotools), or all. */
  iouThr?: number;
  areaRng?: string;
  maxDets?: number;
  /** Restrict to one category (index into catIds); all categories otherwise. */
  categoryIndex?: number;
}

/** pycocotools' `_summarize`: the mean of the selected entries that are > -1, or -1 when there are none. */
export function summarize(result: CocoEvalResult, query: SummarizeQuery): number {
  const { params } = result;
  const [T, R, K, A, M] = result.counts;
  const maxDets = query.maxDets ?? 100;
  const areaLabel = query.areaRng ?? 'all';
  const tList: number[] = [];
  for (let t = 0; t < T; t++) if (query.iouThr === undefined || params.iouThrs[t] === query.iouThr) tList.push(t);
  const a = params.areaRngLbl.indexOf(areaLabel);
  const m = params.maxDets.indexOf(maxDets);
  if (a < 0 || m < 0 || tList.length === 0) return -1;
  const kFrom = query.categoryIndex ?? 0;
  const kTo = query.categoryIndex === undefined ? K : kFrom + 1;
  const kept: number[] = [];
  // Walk in numpy's C order of the selected slice: t, then r, then k.
  for (const t of tList) {
    if (query.ap) {
      for (let r = 0; r < R; r++) {
        for (let k = kFrom; k < kTo; k++) {
          const v = result.precision[(((t * R + r) * K + k) * A + a) * M + m];
          if (v > -1) kept.push(v);
        }
      }
    } else {
      for (let k = kFrom; k < kTo; k++) {
        const v = result.recall[((t * K + k) * A + a) * M + m];
        if (v > -1) kept.push(v);
      }
    }
  }
  if (kept.length === 0) return -1;
  return pairwiseSum(kept) / kept.length;
}

/** `_summarizeDets`: the 12 stats. */
function summarizeStats(result: CocoEvalResult): number[] {
  const md = result.params.maxDets;
  return [
    summarize(result, { ap: true }),
    summarize(result, { ap: true, iouThr: 0.5, maxDets: md[2] }),
    summarize(result, { ap: true, iouThr: 0.75, maxDets: md[2] }),
    summarize(result, { ap: true, areaRng: 'small', maxDets: md[2] }),
    summarize(result, { ap: true, areaRng: 'medium', maxDets: md[2] }),
    summarize(result, { ap: true, areaRng: 'large', maxDets: md[2] }),
    summarize(result, { ap: false, maxDets: md[0] }),
    summarize(result, { ap: false, maxDets: md[1] }),
    summarize(result, { ap: false, maxDets: md[2] }),
    summarize(result, { ap: false, areaRng: 'small', maxDets: md[2] }),
    summarize(result, { ap: false, areaRng: 'medium', maxDets: md[2] }),
    summarize(result, { ap: false, areaRng: 'large', maxDets: md[2] }),
  ];
}

/** Precision at each recall threshold for one category (IoU `iouThr`, area all, last maxDets). */
export function precisionRecallCurve(
  result: CocoEvalResult,
  categoryIndex: number,
  iouThr = 0.5,
): { recall: number[]; precision: number[] } | undefined {
  const [, R, K, A, M] = result.counts;
  const t = result.params.iouThrs.indexOf(iouThr);
  const a = result.params.areaRngLbl.indexOf('all');
  if (t < 0 || a < 0) return undefined;
  const precision: number[] = [];
  for (let r = 0; r < R; r++) precision.push(result.precision[(((t * R + r) * K + categoryIndex) * A + a) * M + M - 1]);
  return { recall: [...result.params.recThrs], precision };
}
