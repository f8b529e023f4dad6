/**
 * IoU of two [x, y, w, h] boxes given as eight numbers (detection, then ground truth), computed exactly as
 * pycocotools' bbIou computes it for a non-crowd pair: the one implementation behind core's COCO, VOC, RSNA and
 * FROC metrics and the dataset code's box matching (`boxIou`), so every IoU in the repo is the same number.
 */
export function xywhIou(
  dx: number,
  dy: number,
  dw: number,
  dh: number,
  gx: number,
  gy: number,
  gw: number,
  gh: number,
): number {
  const w = Math.min(dw + dx, gw + gx) - Math.max(dx, gx);
  if (w <= 0) return 0;
  const h = Math.min(dh + dy, gh + gy) - Math.max(dy, gy);
  if (h <= 0) return 0;
  const inter = w * h;
  return inter / (dw * dh + gw * gh - inter);
}
