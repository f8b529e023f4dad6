/**
 * Box operations on the host, in float32 arithmetic step by step (Math.fround after every operation) so
 * that thresholds decide exactly as torchvision's CPU kernels do. Boxes are x1, y1, x2, y2, four numbers
 * per box in a Float32Array.
 */

const f = Math.fround;

/** torchvision.ops.box_iou: [n, m] IoU matrix, row-major. */
export function boxIou(a: Float32Array, b: Float32Array): Float32Array {
  const n = a.length / 4;
  const m = b.length / 4;
  const areaA = boxAreas(a);
  const areaB = boxAreas(b);
  const out = new Float32Array(n * m);
  for (let i = 0; i < n; i++) {
    const ax1 = a[i * 4];
    const ay1 = a[i * 4 + 1];
    const ax2 = a[i * 4 + 2];
    const ay2 = a[i * 4 + 3];
    for (let j = 0; j < m; j++) {
      const w = Math.max(0, f(Math.min(ax2, b[j * 4 + 2]) - Math.max(ax1, b[j * 4])));
      const h = Math.max(0, f(Math.min(ay2, b[j * 4 + 3]) - Math.max(ay1, b[j * 4 + 1])));
      const inter = f(w * h);
      out[i * m + j] = f(inter / f(f(areaA[i] + areaB[j]) - inter));
    }
  }
  return out;
}

export function boxAreas(boxes: Float32Array): Float32Array {
  const n = boxes.length / 4;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = f(f(boxes[i * 4 + 2] - boxes[i * 4]) * f(boxes[i * 4 + 3] - boxes[i * 4 + 1]));
  }
  return out;
}

/** torchvision.ops.clip_boxes_to_image, in place. size = [height, width]. */
export function clipBoxesInPlace(boxes: Float32Array, height: number, width: number): Float32Array {
  for (let i = 0; i < boxes.length; i += 4) {
    boxes[i] = Math.min(Math.max(boxes[i], 0), width);
    boxes[i + 1] = Math.min(Math.max(boxes[i + 1], 0), height);
    boxes[i + 2] = Math.min(Math.max(boxes[i + 2], 0), width);
    boxes[i + 3] = Math.min(Math.max(boxes[i + 3], 0), height);
  }
  return boxes;
}

/** torchvision.ops.remove_small_boxes: indices of boxes with both sides ≥ minSize (compared in float32). */
export function removeSmallBoxes(boxes: Float32Array, minSize: number): number[] {
  const threshold = f(minSize);
  const keep: number[] = [];
  for (let i = 0; i < boxes.length / 4; i++) {
    const w = f(boxes[i * 4 + 2] - boxes[i * 4]);
    const h = f(boxes[i * 4 + 3] - boxes[i * 4 + 1]);
    if (w >= threshold && h >= threshold) keep.push(i);
  }
  return keep;
}

/** Indices ordered by descending score; ties keep their original order (a stable sort, as torchvision's kernel). */
export function argsortDescending(scores: ArrayLike<number>, indices?: readonly number[]): number[] {
  const order = indices ? [...indices] : Array.from({ length: scores.length }, (_, i) => i);
  return order.sort((p, q) => scores[q] - scores[p] || p - q);
}

/**
 * torchvision.ops.nms (CPU kernel): greedy suppression in descending score order, IoU computed in float32
 * and compared (as a double) with `iouThreshold`. Returns kept indices in descending score order.
 */
export function nms(boxes: Float32Array, scores: ArrayLike<number>, iouThreshold: number): number[] {
  const n = scores.length;
  const areas = boxAreas(boxes);
  const order = argsortDescending(scores);
  const suppressed = new Uint8Array(n);
  const keep: number[] = [];
  for (let oi = 0; oi < n; oi++) {
    const i = order[oi];
    if (suppressed[i]) continue;
    keep.push(i);
    const ix1 = boxes[i * 4];
    const iy1 = boxes[i * 4 + 1];
    const ix2 = boxes[i * 4 + 2];
    const iy2 = boxes[i * 4 + 3];
    const iarea = areas[i];
    for (let oj = oi + 1; oj < n; oj++) {
      const j = order[oj];
      if (suppressed[j]) continue;
      const w = Math.max(0, f(Math.min(ix2, boxes[j * 4 + 2]) - Math.max(ix1, boxes[j * 4])));
      const h = Math.max(0, f(Math.min(iy2, boxes[j * 4 + 3]) - Math.max(iy1, boxes[j * 4 + 1])));
      const inter = f(w * h);
      const overlap = f(inter / f(f(iarea + areas[j]) - inter));
      if (overlap > iouThreshold) suppressed[j] = 1;
    }
  }
  return keep;
}

/**
 * torchvision.ops.batched_nms: NMS independently per group. Like torchvision on the CPU, it offsets the
 * boxes per group (the "coordinate trick", float32) up to 1000 boxes and runs NMS per group beyond that,
 * so borderline overlaps resolve identically.
 */
export function batchedNms(
  boxes: Float32Array,
  scores: ArrayLike<number>,
  groups: ArrayLike<number>,
  iouThreshold: number,
): number[] {
  const n = scores.length;
  if (n === 0) return [];
  if (n * 4 > 4000) {
    const byGroup = new Map<number, number[]>();
    for (let i = 0; i < n; i++) {
      const list = byGroup.get(groups[i]);
      if (list) list.push(i);
      else byGroup.set(groups[i], [i]);
    }
    const kept: number[] = [];
    for (const members of byGroup.values()) {
      const subBoxes = new Float32Array(members.length * 4);
      const subScores = new Float32Array(members.length);
      members.forEach((index, k) => {
        subBoxes.set(boxes.subarray(index * 4, index * 4 + 4), k * 4);
        subScores[k] = scores[index];
      });
      for (const k of nms(subBoxes, subScores, iouThreshold)) kept.push(members[k]);
    }
    kept.sort((p, q) => p - q);
    return argsortDescending(scores, kept);
  }
  let maxCoordinate = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n * 4; i++) maxCoordinate = Math.max(maxCoordinate, boxes[i]);
  const shifted = new Float32Array(n * 4);
  const step = f(maxCoordinate + 1);
  for (let i = 0; i < n; i++) {
    const offset = f(groups[i] * step);
    for (let c = 0; c < 4; c++) shifted[i * 4 + c] = f(boxes[i * 4 + c] + offset);
  }
  return nms(shifted, scores, iouThreshold);
}

/** Gathers the boxes at `indices` into a new array. */
export function selectBoxes(boxes: Float32Array, indices: readonly number[]): Float32Array {
  const out = new Float32Array(indices.length * 4);
  indices.forEach((index, k) => {
    out.set(boxes.subarray(index * 4, index * 4 + 4), k * 4);
  });
  return out;
}

/**
 * torchvision's BoxCoder (det_utils.BoxCoder): box deltas (dx, dy, dw, dh) relative to reference boxes,
 * scaled by `weights`; dw/dh clamped at log(1000/16) before exp when decoding.
 */
export class BoxCoder {
  readonly bboxXformClip: number;

  constructor(
    readonly weights: readonly [number, number, number, number],
    bboxXformClip = Math.log(1000 / 16),
  ) {
    this.bboxXformClip = f(bboxXformClip);
  }

  /** Deltas that move each reference box onto its matched ground-truth box. */
  encode(matched: Float32Array, references: Float32Array): Float32Array {
    const [wx, wy, ww, wh] = this.weights.map(f);
    const n = references.length / 4;
    const out = new Float32Array(n * 4);
    for (let i = 0; i < n; i++) {
      const r = i * 4;
      const exW = f(references[r + 2] - references[r]);
      const exH = f(references[r + 3] - references[r + 1]);
      const exX = f(references[r] + f(0.5 * exW));
      const exY = f(references[r + 1] + f(0.5 * exH));
      const gtW = f(matched[r + 2] - matched[r]);
      const gtH = f(matched[r + 3] - matched[r + 1]);
      const gtX = f(matched[r] + f(0.5 * gtW));
      const gtY = f(matched[r + 1] + f(0.5 * gtH));
      out[r] = f(f(wx * f(gtX - exX)) / exW);
      out[r + 1] = f(f(wy * f(gtY - exY)) / exH);
      out[r + 2] = f(ww * f(Math.log(f(gtW / exW))));
      out[r + 3] = f(wh * f(Math.log(f(gtH / exH))));
    }
    return out;
  }

  /**
   * Applies deltas to reference boxes. `deltas` holds `perBox` groups of 4 per reference box (one per
   * class for the box predictor); the result has the same layout.
   */
  decode(deltas: Float32Array, references: Float32Array, perBox = 1): Float32Array {
    const [wx, wy, ww, wh] = this.weights.map(f);
    const n = references.length / 4;
    const out = new Float32Array(n * perBox * 4);
    for (let i = 0; i < n; i++) {
      const r = i * 4;
      const width = f(references[r + 2] - references[r]);
      const height = f(references[r + 3] - references[r + 1]);
      const ctrX = f(references[r] + f(0.5 * width));
      const ctrY = f(references[r + 1] + f(0.5 * height));
      for (let k = 0; k < perBox; k++) {
        const d = (i * perBox + k) * 4;
        const dx = f(deltas[d] / wx);
        const dy = f(deltas[d + 1] / wy);
        const dw = Math.min(f(deltas[d + 2] / ww), this.bboxXformClip);
        const dh = Math.min(f(deltas[d + 3] / wh), this.bboxXformClip);
        const predX = f(f(dx * width) + ctrX);
        const predY = f(f(dy * height) + ctrY);
        const halfW = f(0.5 * f(f(Math.exp(dw)) * width));
        const halfH = f(0.5 * f(f(Math.exp(dh)) * height));
        out[d] = f(predX - halfW);
        out[d + 1] = f(predY - halfH);
        out[d + 2] = f(predX + halfW);
        out[d + 3] = f(predY + halfH);
      }
    }
    return out;
  }
}
