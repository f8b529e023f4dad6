/**
 * Occlusion sensitivity (Zeiler & Fergus 2014; Captum's `Occlusion`): a square patch filled with a neutral value
 * slides over the image, the detector runs on every occluded copy, and each window records how far the explained
 * detection's box score falls (pytorch-grad-cam's FasterRCNNBoxScoreTarget, the target AblationCAM uses). A pixel's
 * heat is the mean fall over the windows that cover it (Captum divides by that count too).
 *
 * EigenCAM and AblationCAM weight feature-map magnitudes, so they show where the network's activations are large,
 * which in a detector trained briefly from random weights is the body outline and the image border rather than the
 * lesion. Occlusion reads only the detector's output: it shows what the detection depends on, at the cost of one
 * forward pass per window (about 225 at the default patch, whatever the image size).
 */
import { FedcxrError } from '@fedcxr/core';

export interface OcclusionOptions {
  /** The image, row-major, `channels` interleaved values per pixel. */
  pixels: Float32Array;
  height: number;
  width: number;
  channels: number;
  /** The explained target's score on each image of a batch (same size as the input). */
  score: (images: readonly Float32Array[]) => Promise<number[]>;
  /** Patch side in pixels; default an eighth of the shorter side (at least 1). */
  patch?: number;
  /** Step between windows; default half the patch (rounded up). */
  stride?: number;
  /** Value the patch is filled with; default the image's mean (per channel): neither air nor bone. */
  fill?: readonly number[];
  /** Occluded copies scored per call of `score` (default 16). */
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface OcclusionResult {
  /** Mean score drop per pixel (signed), row-major at the image's size. */
  raw: Float32Array;
  /** ReLU and min-max scaling of `raw` to [0, 1]. */
  cam: Float32Array;
  originalScore: number;
  patch: number;
  stride: number;
  windows: number;
}

/**
 * Window origins along one axis: every `stride` from 0, plus one flush with the far edge when the steps stop
 * short of it, so every pixel is covered (Captum leaves that strip out).
 */
export function windowOrigins(length: number, patch: number, stride: number): number[] {
  const last = Math.max(0, length - patch);
  const origins: number[] = [];
  for (let o = 0; o <= last; o += stride) origins.push(o);
  if (origins[origins.length - 1] !== last) origins.push(last);
  return origins;
}

export async function occlusionSensitivity(options: OcclusionOptions): Promise<OcclusionResult> {
  const { pixels, height, width, channels } = options;
  if (pixels.length !== height * width * channels) {
    throw new FedcxrError('usage', `occlusion: ${pixels.length} values for a ${width}×${height}×${channels} image`);
  }
  const patch = options.patch ?? Math.max(1, Math.round(Math.min(height, width) / 8));
  const stride = options.stride ?? Math.ceil(patch / 2);
  for (const [name, value] of [
    ['patch', patch],
    ['stride', stride],
  ] as const) {
    if (!Number.isInteger(value) || value < 1 || value > Math.min(height, width)) {
      throw new FedcxrError(
        'usage',
        `occlusion ${name} must be a whole number of pixels from 1 to ${Math.min(height, width)}, got ${value}`,
      );
    }
  }
  const fill = options.fill ?? channelMeans(pixels, channels);
  const batchSize = options.batchSize ?? 16;
  const [original] = await options.score([pixels]);
  if (!(original > 0)) {
    throw new FedcxrError(
      'explain_target_lost',
      'the detection to explain is not reproduced by the model (its box score is 0)',
    );
  }
  const windows = windowOrigins(height, patch, stride).flatMap((y) =>
    windowOrigins(width, patch, stride).map((x) => [x, y] as const),
  );
  const sum = new Float64Array(height * width);
  const count = new Uint32Array(height * width);
  for (let start = 0; start < windows.length; start += batchSize) {
    const batch = windows.slice(start, start + batchSize);
    const occluded = batch.map(([x0, y0]) => {
      const copy = Float32Array.from(pixels);
      for (let y = y0; y < y0 + patch; y++)
        for (let x = x0; x < x0 + patch; x++)
          for (let c = 0; c < channels; c++) copy[(y * width + x) * channels + c] = fill[c];
      return copy;
    });
    const scores = await options.score(occluded);
    batch.forEach(([x0, y0], i) => {
      const drop = original - scores[i];
      for (let y = y0; y < y0 + patch; y++)
        for (let x = x0; x < x0 + patch; x++) {
          sum[y * width + x] += drop;
          count[y * width + x]++;
        }
    });
    options.onProgress?.(Math.min(start + batchSize, windows.length), windows.length);
  }
  const raw = Float32Array.from(sum, (s, i) => (count[i] > 0 ? s / count[i] : 0));
  return { raw, cam: reluMinMax(raw), originalScore: original, patch, stride, windows: windows.length };
}

function channelMeans(pixels: Float32Array, channels: number): number[] {
  const means = new Array<number>(channels).fill(0);
  for (let i = 0; i < pixels.length; i++) means[i % channels] += pixels[i];
  return means.map((s) => (s * channels) / pixels.length);
}

/** ReLU, then pytorch-grad-cam's scale_cam_image min-max (eps 1e-7), as the CAMs are scaled. */
function reluMinMax(values: Float32Array): Float32Array {
  let low = Number.POSITIVE_INFINITY;
  let high = Number.NEGATIVE_INFINITY;
  for (const v of values) {
    const r = Math.max(v, 0);
    low = Math.min(low, r);
    high = Math.max(high, r);
  }
  return values.map((v) => (Math.max(v, 0) - low) / (1e-7 + high - low));
}
