import type { NormalizedImage } from './normalize.js';

/**
 * How a resized image relates to its original. The image is scaled so that its longer side becomes `size`
 * (aspect kept), placed at the top-left corner, and — with letterboxing (default) — padded with `padValue`
 * to size × size on the right or bottom. Because of integer rounding, x and y scales may differ slightly;
 * both are kept so that the box mapping is exact.
 */
export interface ResizeTransform {
  sourceWidth: number;
  sourceHeight: number;
  /** Width and height of the scaled image content (before padding). */
  contentWidth: number;
  contentHeight: number;
  /** Output canvas size (content plus padding). */
  outputWidth: number;
  outputHeight: number;
  scaleX: number;
  scaleY: number;
}

export interface ResizedImage extends NormalizedImage {
  transform: ResizeTransform;
}

export interface ResizeOptions {
  /** Pad to size × size (default true). Without it, the output is contentWidth × contentHeight. */
  letterbox?: boolean;
  /** Value of the padding (default 0). */
  padValue?: number;
}

/** Plans the resize without touching pixels. */
export function resizeTransform(
  sourceWidth: number,
  sourceHeight: number,
  size: number,
  options: ResizeOptions = {},
): ResizeTransform {
  if (!(sourceWidth > 0 && sourceHeight > 0 && size > 0)) {
    throw new RangeError(`cannot resize ${sourceWidth}x${sourceHeight} to ${size}`);
  }
  const scale = size / Math.max(sourceWidth, sourceHeight);
  const contentWidth = Math.max(1, Math.round(sourceWidth * scale));
  const contentHeight = Math.max(1, Math.round(sourceHeight * scale));
  const letterbox = options.letterbox ?? true;
  return {
    sourceWidth,
    sourceHeight,
    contentWidth,
    contentHeight,
    outputWidth: letterbox ? size : contentWidth,
    outputHeight: letterbox ? size : contentHeight,
    scaleX: contentWidth / sourceWidth,
    scaleY: contentHeight / sourceHeight,
  };
}

/**
 * Resizes keeping the aspect ratio (see ResizeTransform). Resampling is separable and area-aware: a triangle
 * (bilinear) kernel widened by the downscale factor, so shrinking averages every source pixel instead of skipping
 * some, as Pillow's BILINEAR does. Pixel centres map as x_out + 0.5 = (x_in + 0.5) · scale.
 */
export function resizeKeepAspect(image: NormalizedImage, size: number, options: ResizeOptions = {}): ResizedImage {
  const transform = resizeTransform(image.width, image.height, size, options);
  const { contentWidth, contentHeight, outputWidth, outputHeight } = transform;
  const horizontal = kernelWeights(image.width, contentWidth);
  const vertical = kernelWeights(image.height, contentHeight);
  // Pass 1: rows (source height × content width).
  const temp = new Float32Array(image.height * contentWidth);
  const src = image.data;
  for (let y = 0; y < image.height; y++) {
    const row = y * image.width;
    for (let x = 0; x < contentWidth; x++) {
      const start = horizontal.starts[x];
      const count = horizontal.counts[x];
      const base = x * horizontal.stride;
      let sum = 0;
      for (let k = 0; k < count; k++) sum += src[row + start + k] * horizontal.weights[base + k];
      temp[y * contentWidth + x] = sum;
    }
  }
  // Pass 2: columns, into the (possibly padded) canvas.
  const out = new Float32Array(outputWidth * outputHeight);
  if (options.padValue) out.fill(options.padValue);
  for (let y = 0; y < contentHeight; y++) {
    const start = vertical.starts[y];
    const count = vertical.counts[y];
    const base = y * vertical.stride;
    for (let x = 0; x < contentWidth; x++) {
      let sum = 0;
      for (let k = 0; k < count; k++) sum += temp[(start + k) * contentWidth + x] * vertical.weights[base + k];
      out[y * outputWidth + x] = sum;
    }
  }
  return { data: out, width: outputWidth, height: outputHeight, transform };
}

function kernelWeights(inSize: number, outSize: number) {
  const scale = outSize / inSize;
  const support = scale < 1 ? 1 / scale : 1;
  const stride = Math.ceil(support) * 2 + 1;
  const starts = new Int32Array(outSize);
  const counts = new Int32Array(outSize);
  const weights = new Float32Array(outSize * stride);
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) / scale;
    const first = Math.max(0, Math.floor(center - support));
    const last = Math.min(inSize, Math.ceil(center + support));
    let total = 0;
    const local: number[] = [];
    for (let i = first; i < last; i++) {
      const w = Math.max(0, 1 - Math.abs((i + 0.5 - center) / support));
      local.push(w);
      total += w;
    }
    // Trim zero weights at both ends so `stride` always fits.
    let lo = 0;
    let hi = local.length;
    while (lo < hi && local[lo] === 0) lo++;
    while (hi > lo && local[hi - 1] === 0) hi--;
    starts[o] = first + lo;
    counts[o] = Math.min(stride, hi - lo);
    for (let k = 0; k < counts[o]; k++) weights[o * stride + k] = total > 0 ? local[lo + k] / total : 0;
  }
  return { starts, counts, weights, stride };
}

/** A box in COCO order: [x, y, width, height], in pixels, continuous coordinates (0 = left edge). */
export type Box = [number, number, number, number];

/** Original-image box → resized-image box. */
export function boxToResized(box: Box, transform: ResizeTransform): Box {
  const [x, y, w, h] = box;
  return [x * transform.scaleX, y * transform.scaleY, w * transform.scaleX, h * transform.scaleY];
}

/** Resized-image box → original-image box (the exact inverse of boxToResized). */
export function boxToOriginal(box: Box, transform: ResizeTransform): Box {
  const [x, y, w, h] = box;
  return [x / transform.scaleX, y / transform.scaleY, w / transform.scaleX, h / transform.scaleY];
}

/** Point mapping, for keypoints or polygon vertices. */
export function pointToOriginal(x: number, y: number, transform: ResizeTransform): [number, number] {
  return [x / transform.scaleX, y / transform.scaleY];
}
