import { FedcxrError } from '@fedcxr/base';
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
  const { kernel: horizontal, run } = cachedKernel(width, transform.contentWidth);
  return resample(height, transform, options, (y, temp, at) => {
    const src = sourceRow(y);
    const { starts, counts, weights, stride } = horizontal;
    const end = transform.contentWidth;
    let x = 0;
    if (run) {
      // Interior outputs of an integer shrink share one 4-tap kernel: same weights, same order, no lookups.
      const { from, to, step, w0, w1, w2, w3 } = run;
      for (; x < from; x++) temp[at + x] = tap(src, starts[x], weights, x * stride, counts[x]);
      if (step === 2) halvingRow(src, temp, at, starts[from], from, to, w0, w1, w2, w3);
      else uniformRow(src, temp, at, starts[from], from, to, step, w0, w1, w2, w3);
      x = to;
    }
    for (; x < end; x++) temp[at + x] = tap(src, starts[x], weights, x * stride, counts[x]);
  });
}

/**
 * resizeRows over a source given as integer values and a per-value table (source pixel i is
 * `table[values[i] - offset]`, values row-major, `width` per row): the same floats, bit for bit, as resizeRows
 * over the looked-up rows, without building them: each output of pass 1 reads its few values and their table
 * entries directly (the same products, summed in the same order).
 */
export function resizeLookup(
  values: Int32Array | Uint8Array,
  offset: number,
  table: Float32Array,
  width: number,
  height: number,
  size: number,
  options: ResizeOptions = {},
): ResizedImage {
  if (values.length < width * height) {
    throw new FedcxrError('invalid_option', `${values.length} values cannot fill a ${width}x${height} image`);
  }
  const transform = resizeTransform(width, height, size, options);
  const { kernel: horizontal, run } = cachedKernel(width, transform.contentWidth);
  // The halving run (step 2) reads the table as doubles (the same values, without a conversion per tap), indexed by
  // the value itself where the values are small and non-negative (no subtraction per tap, e.g. 8-bit data).
  let wide: Float64Array | null = null;
  let direct = false;
  if (run?.step === 2 && table.length <= (width * height) >> 2) {
    direct = offset >= 0 && offset + table.length <= 65536;
    wide = new Float64Array(direct ? offset + table.length : table.length);
    wide.set(table, direct ? offset : 0);
  }
  return resample(height, transform, options, (y, temp, at) => {
    // Locals, not captured variables, in the loops below (V8 keeps them in registers).
    const { starts, counts, weights, stride } = horizontal;
    const v = values;
    const t = table;
    const off = offset;
    const end = transform.contentWidth;
    const row = y * width;
    let x = 0;
    if (run) {
      const { from, to, step, w0, w1, w2, w3 } = run;
      for (; x < from; x++) {
        temp[at + x] = tapLookup(v, row + starts[x], t, off, weights, x * stride, counts[x]);
      }
      if (wide && direct) halvingDirectRun(v, wide, temp, at, row + starts[from], from, to, w0, w1, w2, w3);
      else if (wide) halvingLookupRun(v, wide, off, temp, at, row + starts[from], from, to, w0, w1, w2, w3);
      else lookupRun(v, t, off, temp, at, row + starts[from], from, to, step, w0, w1, w2, w3);
      x = to;
    }
    for (; x < end; x++) {
      temp[at + x] = tapLookup(v, row + starts[x], t, off, weights, x * stride, counts[x]);
    }
  });
}

/**
 * Both passes. Pass 1 (`horizontalRow`) turns source row y into contentWidth samples at temp[at...]; pass 2 makes
 * each output row a weighted sum of a few such rows. Pass-1 rows are made on demand into a ring of as many rows
 * as the vertical kernel spans, so the intermediate stays in cache instead of filling a full-height buffer.
 */
function resample(
  height: number,
  transform: ResizeTransform,
  options: ResizeOptions,
  horizontalRow: (y: number, temp: Float32Array, at: number) => void,
): ResizedImage {
  const { contentWidth, contentHeight, outputWidth, outputHeight } = transform;
  const { starts, counts, weights, stride } = cachedKernel(height, contentHeight).kernel;
  const slots = Math.min(height, stride);
  const temp = scratch(slots * contentWidth);
  /** Where source row r lives in the ring (it is made before first use and kept while any output needs it). */
  const at = (r: number) => (r % slots) * contentWidth;
  let made = 0;
  const out = new Float32Array(outputWidth * outputHeight);
  if (options.padValue) out.fill(options.padValue);
  for (let y = 0; y < contentHeight; y++) {
    const count = counts[y];
    const first = starts[y];
    // Rows below `first` are no longer needed (starts never decrease), so their slots can be overwritten.
    for (; made < first + count; made++) if (made >= first) horizontalRow(made, temp, at(made));
    const b = y * stride;
    const o = y * outputWidth;
    if (count === 4) {
      const w0 = weights[b];
      const w1 = weights[b + 1];
      const w2 = weights[b + 2];
      const w3 = weights[b + 3];
      const r0 = at(first);
      const r1 = at(first + 1);
      const r2 = at(first + 2);
      const r3 = at(first + 3);
      verticalRow(out, o, temp, r0, r1, r2, r3, w0, w1, w2, w3, contentWidth);
    } else {
      for (let x = 0; x < contentWidth; x++) {
        let sum = 0;
        for (let k = 0; k < count; k++) sum += temp[at(first + k) + x] * weights[b + k];
        out[o + x] = sum;
      }
    }
  }
  return { data: out, width: outputWidth, height: outputHeight, transform };
}

/** One 4-tap output row of pass 2 (a function of its own, for the same reason as uniformRow). */
function verticalRow(
  out: Float32Array,
  o: number,
  temp: Float32Array,
  r0: number,
  r1: number,
  r2: number,
  r3: number,
  w0: number,
  w1: number,
  w2: number,
  w3: number,
  n: number,
): void {
  for (let x = 0; x < n; x++)
    out[o + x] = temp[r0 + x] * w0 + temp[r1 + x] * w1 + temp[r2 + x] * w2 + temp[r3 + x] * w3;
}

/** The pass-1 ring, reused between calls: it never leaves resample (saves GC on batches). */
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

/** The uniform 4-tap interior of one pass-1 row (kept apart so V8 optimizes it alone: twice as fast as inlined). */
function uniformRow(
  src: Float32Array,
  temp: Float32Array,
  at: number,
  first: number,
  from: number,
  to: number,
  step: number,
  w0: number,
  w1: number,
  w2: number,
  w3: number,
): void {
  let f = first;
  for (let x = from; x < to; x++, f += step) {
    temp[at + x] = src[f] * w0 + src[f + 1] * w1 + src[f + 2] * w2 + src[f + 3] * w3;
  }
}

/**
 * uniformRow for a halving (step 2): the last two taps of one output are the first two of the next, so each
 * source value is loaded once and carried over (same products, same order).
 */
function halvingRow(
  src: Float32Array,
  temp: Float32Array,
  at: number,
  first: number,
  from: number,
  to: number,
  w0: number,
  w1: number,
  w2: number,
  w3: number,
): void {
  let f = first;
  let a = src[f];
  let b = src[f + 1];
  for (let x = from; x < to; x++, f += 2) {
    const c = src[f + 2];
    const d = src[f + 3];
    temp[at + x] = a * w0 + b * w1 + c * w2 + d * w3;
    a = c;
    b = d;
  }
}

/** halvingRow over looked-up values, the table widened to doubles. */
function halvingLookupRun(
  v: Int32Array | Uint8Array,
  t: Float64Array,
  off: number,
  temp: Float32Array,
  at: number,
  first: number,
  from: number,
  to: number,
  w0: number,
  w1: number,
  w2: number,
  w3: number,
): void {
  let f = first;
  let a = t[v[f] - off];
  let b = t[v[f + 1] - off];
  for (let x = from; x < to; x++, f += 2) {
    const c = t[v[f + 2] - off];
    const d = t[v[f + 3] - off];
    temp[at + x] = a * w0 + b * w1 + c * w2 + d * w3;
    a = c;
    b = d;
  }
}

/** halvingLookupRun with the table indexed by the value itself (offset 0). */
function halvingDirectRun(
  v: Int32Array | Uint8Array,
  t: Float64Array,
  temp: Float32Array,
  at: number,
  first: number,
  from: number,
  to: number,
  w0: number,
  w1: number,
  w2: number,
  w3: number,
): void {
  let f = first;
  let a = t[v[f]];
  let b = t[v[f + 1]];
  for (let x = from; x < to; x++, f += 2) {
    const c = t[v[f + 2]];
    const d = t[v[f + 3]];
    temp[at + x] = a * w0 + b * w1 + c * w2 + d * w3;
    a = c;
    b = d;
  }
}

/** The uniform 4-tap interior of one pass-1 row over looked-up values (kept apart so V8 optimizes it alone). */
function lookupRun(
  v: Int32Array | Uint8Array,
  t: Float32Array,
  off: number,
  temp: Float32Array,
  at: number,
  first: number,
  from: number,
  to: number,
  step: number,
  w0: number,
  w1: number,
  w2: number,
  w3: number,
): void {
  let f = first;
  for (let x = from; x < to; x++, f += step) {
    temp[at + x] = t[v[f] - off] * w0 + t[v[f + 1] - off] * w1 + t[v[f + 2] - off] * w2 + t[v[f + 3] - off] * w3;
  }
}

/** `tap` over table[values[first + k] - offset]: the same products, summed in the same order. */
function tapLookup(
  values: Int32Array | Uint8Array,
  first: number,
  table: Float32Array,
  offset: number,
  weights: Float32Array,
  base: number,
  count: number,
): number {
  const f = first;
  const b = base;
  if (count === 4) {
    return (
      table[values[f] - offset] * weights[b] +
      table[values[f + 1] - offset] * weights[b + 1] +
      table[values[f + 2] - offset] * weights[b + 2] +
      table[values[f + 3] - offset] * weights[b + 3]
    );
  }
  if (count === 2) return table[values[f] - offset] * weights[b] + table[values[f + 1] - offset] * weights[b + 1];
  if (count === 3) {
    return (
      table[values[f] - offset] * weights[b] +
      table[values[f + 1] - offset] * weights[b + 1] +
      table[values[f + 2] - offset] * weights[b + 2]
    );
  }
  let sum = 0;
  for (let k = 0; k < count; k++) sum += table[values[f + k] - offset] * weights[b + k];
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

/** Kernels (and their uniform runs) of the last few size pairs: batches resize many images of one size. */
const kernelCache = new Map<string, { kernel: Kernel; run: ReturnType<typeof uniformRun> }>();

function cachedKernel(inSize: number, outSize: number) {
  const key = `${inSize}>${outSize}`;
  let entry = kernelCache.get(key);
  if (!entry) {
    const kernel = kernelWeights(inSize, outSize);
    entry = { kernel, run: uniformRun(kernel) };
    if (kernelCache.size >= 8) kernelCache.delete(kernelCache.keys().next().value as string);
    kernelCache.set(key, entry);
  }
  return entry;
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
