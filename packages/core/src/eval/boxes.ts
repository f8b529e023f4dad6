import { FedcxrError } from '@fedcxr/base';
import type { CocoDataset, CocoResult } from '../coco.js';

/** Intersection over the detection's own area: how pycocotools scores a detection against a crowd region. */
export function boxIoa(dx: number, dy: number, dw: number, dh: number, gx: number, gy: number, gw: number, gh: number) {
  const w = Math.min(dw + dx, gw + gx) - Math.max(dx, gx);
  if (w <= 0) return 0;
  const h = Math.min(dh + dy, gh + gy) - Math.max(dy, gy);
  if (h <= 0) return 0;
  return (w * h) / (dw * dh);
}

/** Ground truth and detections of one image, split by category, as flat arrays. */
export interface ImageBoxes {
  /** Non-crowd ground truth: 4 numbers per box. */
  gt: number[];
  gtCategory: number[];
  crowd: number[];
  crowdCategory: number[];
  /** Detections in descending score order (stable): 4 numbers per box. */
  dt: number[];
  dtCategory: number[];
  dtScore: number[];
}

function check(ok: boolean, file: string | undefined, message: string): asserts ok {
  if (!ok) throw new FedcxrError('invalid_coco', message, { file });
}

const isBox = (b: unknown) =>
  Array.isArray(b) && b.length === 4 && b.every((v) => typeof v === 'number' && Number.isFinite(v));

/**
 * Groups boxes per image (unique image ids of the ground truth, ascending), with the same input rules as
 * evaluateCoco: ground truth and detections of categories absent from `categories` are dropped,
 * detections on images absent from the ground truth are an error.
 */
export function groupByImage(
  gt: CocoDataset,
  dt: readonly CocoResult[],
  minScore: number,
  files: { gtFile?: string; dtFile?: string } = {},
): { imageIds: number[]; images: ImageBoxes[] } {
  check(
    Boolean(gt) && Array.isArray(gt.images) && Array.isArray(gt.annotations) && Array.isArray(gt.categories),
    files.gtFile,
    'ground truth must be a COCO dataset with images, annotations and categories arrays',
  );
  check(Array.isArray(dt), files.dtFile, 'detections must be a JSON array of COCO results');
  const imageIds = [...new Set(gt.images.map((image) => image.id))].sort((a, b) => a - b);
  const categories = new Set(gt.categories.map((category) => category.id));
  const index = new Map<number, number>();
  imageIds.forEach((id, i) => {
    index.set(id, i);
  });
  const images: ImageBoxes[] = imageIds.map(() => ({
    gt: [],
    gtCategory: [],
    crowd: [],
    crowdCategory: [],
    dt: [],
    dtCategory: [],
    dtScore: [],
  }));
  for (const ann of gt.annotations) {
    const i = index.get(ann.image_id);
    if (i === undefined || !categories.has(ann.category_id)) continue;
    check(isBox(ann.bbox), files.gtFile, `annotation ${JSON.stringify(ann.id)}: bbox must be 4 finite numbers`);
    const image = images[i];
    if (ann.iscrowd) {
      image.crowd.push(...ann.bbox);
      image.crowdCategory.push(ann.category_id);
    } else {
      image.gt.push(...ann.bbox);
      image.gtCategory.push(ann.category_id);
    }
  }
  const perImage: number[][] = imageIds.map(() => []);
  dt.forEach((det, n) => {
    const i = index.get(det?.image_id);
    check(
      i !== undefined,
      files.dtFile,
      `detection ${n} is on image ${JSON.stringify(det?.image_id)}, which is not in the ground truth`,
    );
    if (!categories.has(det.category_id)) return;
    check(isBox(det.bbox), files.dtFile, `detection ${n}: bbox must be 4 finite numbers`);
    check(Number.isFinite(det.score), files.dtFile, `detection ${n}: score must be a finite number`);
    if (det.score >= minScore) perImage[i].push(n);
  });
  perImage.forEach((list, i) => {
    list.sort((a, b) => dt[b].score - dt[a].score); // stable: ties keep input order
    const image = images[i];
    for (const n of list) {
      image.dt.push(...dt[n].bbox);
      image.dtCategory.push(dt[n].category_id);
      image.dtScore.push(dt[n].score);
    }
  });
  return { imageIds, images };
}
