/**
 * Binary lesion masks to boxes. The seed's hospital export draws each lesion as white pixels on a black
 * mask image (one mask per DICOM); some masks were saved as JPEG, whose ringing leaves grey pixels around
 * edges and faint speckles in the background. The rules, in order:
 * 1. Threshold: a pixel is foreground when its grey value is at least `threshold` × the full scale
 *    (default 0.5: ≥ 128 for 8-bit, ≥ 32768 for 16-bit). Masks stored as 0/1 (maximum value 1) use
 *    "non-zero is foreground" instead, since 1 is below any sensible fraction of 255.
 * 2. Connected components, 8-connected (diagonal neighbours join), so a thin diagonal stroke stays one lesion.
 * 3. Components smaller than `minArea` foreground pixels are dropped as noise (default 4).
 * 4. Each remaining component becomes its own box: [x, y, width, height] in pixels, where x/y are the first
 *    covered column/row and width/height count covered columns/rows (a single pixel is 1×1), i.e. the box
 *    encloses the pixels' full extent, as COCO expects. Components come in raster order of their first pixel.
 */
import { xywhIou } from './iou.js';
import type { GreyRaster } from './raster.js';

export interface MaskBoxOptions {
  /** Foreground threshold as a fraction of full scale (0..1]; default 0.5. */
  threshold?: number;
  /** Components with fewer foreground pixels are dropped; default 4. */
  minArea?: number;
}

export interface MaskComponent {
  /** [x, y, width, height] in mask pixels. */
  bbox: [number, number, number, number];
  /** Foreground pixels in the component. */
  pixelArea: number;
}

export const DEFAULT_MASK_THRESHOLD = 0.5;
export const DEFAULT_MASK_MIN_AREA = 4;

export function maskToBoxes(mask: GreyRaster, options: MaskBoxOptions = {}): MaskComponent[] {
  const threshold = options.threshold ?? DEFAULT_MASK_THRESHOLD;
  const minArea = options.minArea ?? DEFAULT_MASK_MIN_AREA;
  if (!(threshold > 0 && threshold <= 1)) throw new RangeError(`mask threshold must be in (0, 1], got ${threshold}`);
  const { width, height, data } = mask;
  const n = width * height;
  let max = 0;
  for (let i = 0; i < n; i++) if (data[i] > max) max = data[i];
  const fullScale = mask.bitDepth === 16 ? 65535 : 255;
  const cut = max <= 1 ? 1 : Math.max(1, Math.ceil(threshold * fullScale));

  const labels = new Int32Array(n); // 0 = unvisited
  const stack = new Int32Array(n);
  const components: MaskComponent[] = [];
  let label = 0;
  for (let start = 0; start < n; start++) {
    if (labels[start] !== 0 || data[start] < cut) continue;
    label++;
    let top = 0;
    stack[top++] = start;
    labels[start] = label;
    let minX = width;
    let minY = height;
    let maxX = -1;
    let maxY = -1;
    let area = 0;
    while (top > 0) {
      const p = stack[--top];
      const x = p % width;
      const y = (p - x) / width;
      area++;
      if (x < minX) minX = x;
      if (x > maxX) maxX = x;
      if (y < minY) minY = y;
      if (y > maxY) maxY = y;
      for (let dy = -1; dy <= 1; dy++) {
        const ny = y + dy;
        if (ny < 0 || ny >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          if (nx < 0 || nx >= width) continue;
          const q = ny * width + nx;
          if (labels[q] === 0 && data[q] >= cut) {
            labels[q] = label;
            stack[top++] = q;
          }
        }
      }
    }
    if (area >= minArea) {
      components.push({ bbox: [minX, minY, maxX - minX + 1, maxY - minY + 1], pixelArea: area });
    }
  }
  // Scan order already visits components by their first (top-most, then left-most) pixel.
  return components;
}

/** Intersection over union of two [x, y, w, h] boxes: xywhIou (pycocotools' arithmetic) on arrays. */
export function boxIou(a: readonly number[], b: readonly number[]): number {
  return xywhIou(a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]);
}
