import { FedcxrError } from '@fedcxr/core';
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
    throw new FedcxrError('invalid_option', `cannot resize ${sourceWidth}x${sourceHeight} to ${size}`);
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
  const { data, width } = image;
  return resizeRows(width, image.height, size, options, (y) => data.subarray(y * width, (y + 1) * width));
}

/**
 * The resampler behind resizeKeepAspect, reading the source one row at a time from `sourceRow(y)` (a row of
 * `width` values; the returned array may be reused between calls), so callers can produce rows on the fly.
 */
export function resizeRows(
  width: number,
  height: number,
  size: number,
  options: ResizeOptions,
  sourceRow: (y: number) => Float32Array,
): ResizedImage {
  const transform = resizeTransform(width, height, size, options);
  const { contentWidth, contentHeight, outputWidth, outputHeight } = transform;
  const horizontal = kernelWeights(width, contentWidth);
  const vertical = kernelWeights(height, contentHeight);
  // Pass 1: each source row → contentWidth samples.
  const temp = scratch(height * contentWidth);
  {
    const { starts, counts, weights, stride } = horizontal;
    const run = uniformRun(horizontal);
    for (let y = 0; y < height; y++) {
      const src = sourceRow(y);
      const outRow = y * contentWidth;
      let x = 0;
      if (run) {
        // Interior outputs of an integer shrink share one 4-tap kernel: same weights, same order, no lookups.
        const { from, to, step, w0, w1, w2, w3 } = run;
        for (; x < from; x++) temp[outRow + x] = tap(src, starts[x], weights, x * stride, counts[x]);
        let f = starts[from];
        for (; x < to; x++, f += step) {
          temp[outRow + x] = src[f] * w0 + src[f + 1] * w1 + src[f + 2] * w2 + src[f + 3] * w3;
        }
      }
      for (; x < contentWidth; x++) temp[outRow + x] = tap(src, starts[x], weights, x * stride, counts[x]);
    }
  }
  // Pass 2: each output row is a weighted sum of a few rows of `temp` (sequential memory access).
  const out = new Float32Array(outputWidth * outputHeight);
  if (options.padValue) out.fill(options.padValue);
  {
    const { starts, counts, weights, stride } = vertical;
    for (let y = 0; y < contentHeight; y++) {
      const count = counts[y];
      const b = y * stride;
      const r = starts[y] * contentWidth;
      const o = y * outputWidth;
      if (count === 4) {
        const w0 = weights[b];
        const w1 = weights[b + 1];
        const w2 = weights[b + 2];
        const w3 = weights[b + 3];
        const r1 = r + contentWidth;
        const r2 = r1 + contentWidth;
        const r3 = r2 + contentWidth;
        for (let x = 0; x < contentWidth; x++) {
          out[o + x] = temp[r + x] * w0 + temp[r1 + x] * w1 + temp[r2 + x] * w2 + temp[r3 + x] * w3;
        }
      } else {
        for (let x = 0; x < contentWidth; x++) {
          let sum = 0;
          for (let k = 0; k < count; k++) sum += temp[r + k * contentWidth + x] * weights[b + k];
          out[o + x] = sum;
        }
      }
    }
  }
  return { data: out, width: outputWidth, height: outputHeight, transform };
}

/** The intermediate of the two passes, reused between calls: it never leaves resizeRows (saves GC on batches). */
let scratchBuffer = new Float32Array(0);
function scratch(length: number): Float32Array {
  if (scratchBuffer.length < length) scratchBuffer = new Float32Array(length);
  return scratchBuffer.subarray(0, length);
}

/** One output sample: the weighted sum of `count` inputs from `first`, unrolled for the usual tap counts. */
function tap(src: Float32Array, first: number, weights: Float32Array, base: number, count: number): number {
  const f = first;
  const b = base;
  if (count === 4) {
    return (
      src[f] * weights[b] + src[f + 1] * weights[b + 1] + src[f + 2] * weights[b + 2] + src[f + 3] * weights[b + 3]
    );
  }
  if (count === 2) return src[f] * weights[b] + src[f + 1] * weights[b + 1];
  if (count === 3) return src[f] * weights[b] + src[f + 1] * weights[b + 1] + src[f + 2] * weights[b + 2];
  let sum = 0;
  for (let k = 0; k < count; k++) sum += src[f + k] * weights[b + k];
  return sum;
}

type Kernel = ReturnType<typeof kernelWeights>;

/** The longest run of 4-tap outputs with identical weights and evenly stepping starts (integer shrink factors). */
function uniformRun(kernel: Kernel) {
  const { starts, counts, weights, stride } = kernel;
  const n = starts.length;
  let best: { from: number; to: number } | null = null;
  let from = 0;
  while (from < n) {
    if (counts[from] !== 4 || from + 1 >= n) {
      from++;
      continue;
    }
    const step = starts[from + 1] - starts[from];
    let to = from + 1;
    const same = (x: number) =>
      counts[x] === 4 &&
      starts[x] - starts[x - 1] === step &&
      weights[x * stride] === weights[from * stride] &&
      weights[x * stride + 1] === weights[from * stride + 1] &&
      weights[x * stride + 2] === weights[from * stride + 2] &&
      weights[x * stride + 3] === weights[from * stride + 3];
    while (to < n && same(to)) to++;
    if (!best || to - from > best.to - best.from) best = { from, to };
    from = to;
  }
  if (!best || best.to - best.from < 8) return null;
  const b = best.from * stride;
  return {
    from: best.from,
    to: best.to,
    step: starts[best.from + 1] - starts[best.from],
    w0: weights[b],
    w1: weights[b + 1],
    w2: weights[b + 2],
    w3: weights[b + 3],
  };
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
