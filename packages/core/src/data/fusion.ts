/**
 * Weighted boxes fusion (Solovyev, Wang & Gabruseva, "Weighted boxes fusion: ensembling boxes from different
 * object detection models", 2021), used to turn several radiologists' boxes of one finding into one label.
 * Boxes are visited in descending score; each joins the first cluster whose fused box it overlaps with IoU
 * above the threshold (strictly, as the reference `ensemble_boxes` does), else starts a cluster; a cluster's
 * box is the score-weighted mean of its members' corners. Readers' boxes carry no score, so they weigh 1 and
 * a fused box is the plain mean of the corners it gathered.
 */
import { boxIou } from '@fedcxr/base';

export interface FusionInput {
  /** [x, y, width, height]. */
  bbox: readonly [number, number, number, number];
  /** Weight of this box in the mean; default 1. */
  score?: number;
}

export interface FusedBox {
  bbox: [number, number, number, number];
  /** Mean score of the members (1 for unscored boxes). */
  score: number;
  /** Indices into the input of the boxes this one was fused from, in visiting order. */
  members: number[];
}

/** Fuses boxes of ONE class; call it per class (and per image). */
export function weightedBoxesFusion(boxes: readonly FusionInput[], iouThreshold: number): FusedBox[] {
  if (!(iouThreshold >= 0 && iouThreshold <= 1)) {
    throw new RangeError(`fusion IoU threshold must be in [0, 1], got ${iouThreshold}`);
  }
  const order = boxes.map((_, i) => i).sort((a, b) => (boxes[b].score ?? 1) - (boxes[a].score ?? 1) || a - b);
  const clusters: { corners: [number, number, number, number]; weight: number; members: number[] }[] = [];
  const fused: [number, number, number, number][] = [];
  for (const index of order) {
    const { bbox } = boxes[index];
    const score = boxes[index].score ?? 1;
    let best = -1;
    let bestIou = iouThreshold;
    for (let c = 0; c < clusters.length; c++) {
      const iou = boxIou(bbox, fused[c]);
      if (iou > bestIou) {
        bestIou = iou;
        best = c;
      }
    }
    const corners: [number, number, number, number] = [bbox[0], bbox[1], bbox[0] + bbox[2], bbox[1] + bbox[3]];
    if (best < 0) {
      clusters.push({ corners: corners.map((v) => v * score) as typeof corners, weight: score, members: [index] });
      fused.push([bbox[0], bbox[1], bbox[2], bbox[3]]);
      continue;
    }
    const cluster = clusters[best];
    for (let k = 0; k < 4; k++) cluster.corners[k] += corners[k] * score;
    cluster.weight += score;
    cluster.members.push(index);
    const [x0, y0, x1, y1] = cluster.corners.map((v) => v / cluster.weight);
    fused[best] = [x0, y0, x1 - x0, y1 - y0];
  }
  return clusters.map((cluster, c) => ({
    bbox: fused[c],
    score: cluster.weight / cluster.members.length,
    members: cluster.members,
  }));
}
