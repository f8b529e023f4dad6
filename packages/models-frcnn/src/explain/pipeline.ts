/**
 * Explaining a detection end to end on ONNX Runtime: run the network once, pick the detections to explain,
 * then EigenCAM (one SVD of the FPN activations), AblationCAM (the RPN and ROI heads re-run on ablated
 * FPN channels, in batches) or occlusion (the whole network re-run on occluded copies of the image) — the
 * definitions live in eigencam.ts, ablation-cam.ts and occlusion.ts.
 *
 * The CAM is computed over the padded, resized batch the network saw; it is scaled to that batch, cropped to
 * the image's resized area and resized to the original image, so heat lands on the right pixels even when the
 * transform resized or padded (pytorch-grad-cam resizes the whole map to the input instead; the two agree when
 * there is no padding and no resize).
 */
import { type Detection, type DetectorImage, FedcxrError, tf } from '@fedcxr/core';
import * as ort from 'onnxruntime-node';
import { FPN_LEVELS } from '../onnx/export.js';
import type { BatchMeta, NetworkOutputs, OnnxFasterRcnn } from '../onnx/runtime.js';
import { ablationCam, boxScore, type FeatureBatch, type FeatureLevel, levelsToTensors } from './ablation-cam.js';
import { concatenateLevels, firstComponentProjection, scaleCam } from './eigencam.js';
import { occlusionSensitivity, windowOrigins } from './occlusion.js';

export type CamMethod = 'eigencam' | 'ablationcam' | 'occlusion';
export const CAM_METHODS: readonly CamMethod[] = ['eigencam', 'ablationcam', 'occlusion'];

/**
 * The FPN level whose grid every level is resized to before the CAM: `pool` is pytorch-grad-cam's
 * (`fasterrcnn_reshape_transform`, the coarsest level: 13 cells a side at 800 px, but 2 at 128 px, where the
 * map cannot point at anything); `auto` is `pool` unless it has fewer than MIN_AUTO_GRID_CELLS a side, then the
 * coarsest level that has that many.
 */
export type CamGrid = 'auto' | (typeof FPN_LEVELS)[number];
export const CAM_GRIDS: readonly CamGrid[] = ['auto', ...FPN_LEVELS];
const MIN_AUTO_GRID_CELLS = 8;

/** The grid (height, width) a CAM is computed on, for levels of these sizes. */
function camGridSize(levels: Map<string, { height: number; width: number }>, grid: CamGrid): [number, number] {
  // FPN_LEVELS runs from the finest level to the coarsest.
  const sized = FPN_LEVELS.flatMap((name) => {
    const level = levels.get(name);
    return level ? [{ name, height: level.height, width: level.width }] : [];
  });
  if (sized.length === 0) throw new FedcxrError('explain_no_features', 'the model returned no FPN feature maps');
  const chosen =
    grid === 'auto'
      ? // The coarsest level with enough cells a side (the finest if none has).
        (sized.filter((l) => Math.min(l.height, l.width) >= MIN_AUTO_GRID_CELLS).at(-1) ?? sized[0])
      : sized.find((l) => l.name === grid);
  if (!chosen) {
    throw new FedcxrError(
      'usage',
      `the model has no FPN level "${grid}" (it has ${sized.map((l) => l.name).join(', ')})`,
    );
  }
  return [chosen.height, chosen.width];
}

export interface ExplainOptions {
  method: CamMethod;
  /** Explain only this detection (index into the image's detections, best first). */
  detection?: number;
  /** Without `detection`: explain every detection scoring at least this (default 0.5; at least the best one). */
  scoreThreshold?: number;
  /** Passes per batch: ablated head runs (AblationCAM, default 32) or occluded images (occlusion, default 8). */
  batchSize?: number;
  ratioChannelsToAblate?: number;
  /** Occlusion: the patch side in pixels of the input image (default an eighth of its shorter side). */
  patch?: number;
  /** The grid the CAM is computed on (default `auto`; `pool` is pytorch-grad-cam's). */
  grid?: CamGrid;
  onProgress?: (done: number, total: number) => void;
}

export interface Explanation {
  method: CamMethod;
  /** Heat in [0, 1] at the original image's size, row-major. */
  cam: Float32Array;
  height: number;
  width: number;
  /** The grid (height, width) the CAM was computed on, before its resize to the image. */
  grid: [number, number];
  detections: Detection[];
  explained: Detection[];
  /** AblationCAM only: per-channel weights (levels × 256) and the unablated box score. */
  weights?: Float32Array;
  /** AblationCAM and occlusion: the explained boxes' unaltered box score. */
  originalScore?: number;
  /** Occlusion only: the patch and the step between windows, in pixels. */
  occlusion?: { patch: number; stride: number };
}

export async function explainDetections(
  model: OnnxFasterRcnn,
  image: DetectorImage,
  options: ExplainOptions,
): Promise<Explanation> {
  const { outputs, meta } = await model.forward([image]);
  const detections = (await model.detect(outputs, meta))[0];
  const explained = pickTargets(detections, options);
  if (options.method === 'occlusion') return explainByOcclusion(model, image, detections, explained, options);
  const features = featureLevels(outputs);
  const grid = camGridSize(features, options.grid ?? 'auto');
  {
    let raw: ArrayLike<number>;
    let rawHeight: number;
    let rawWidth: number;
    let extra: Pick<Explanation, 'weights' | 'originalScore'> = {};
    if (options.method === 'eigencam') {
      const tensors = levelsToTensors(features);
      const stacked = concatenateLevels(tensors, grid);
      for (const t of tensors.values()) t.dispose();
      [, rawHeight, rawWidth] = stacked.shape;
      raw = firstComponentProjection(stacked.dataSync() as Float32Array, rawHeight * rawWidth, stacked.shape[3]);
      stacked.dispose();
    } else {
      const result = await ablationCam({
        features,
        runHeads: (ablated) => runHeads(model, ablated, meta),
        target: { boxes: explained.map((d) => d.box), labels: explained.map((d) => d.label) },
        imageHeight: meta.batchHeight,
        imageWidth: meta.batchWidth,
        grid,
        batchSize: options.batchSize,
        ratioChannelsToAblate: options.ratioChannelsToAblate,
        onProgress: options.onProgress,
      });
      raw = result.raw;
      rawHeight = result.rawHeight;
      rawWidth = result.rawWidth;
      extra = { weights: result.weights, originalScore: result.originalScore };
    }
    const [height, width] = meta.originalSizes[0];
    const cam = camToImage(raw, rawHeight, rawWidth, meta);
    return { method: options.method, cam, height, width, grid, detections, explained, ...extra };
  }
}

async function explainByOcclusion(
  model: OnnxFasterRcnn,
  image: DetectorImage,
  detections: Detection[],
  explained: Detection[],
  options: ExplainOptions,
): Promise<Explanation> {
  const target = { boxes: explained.map((d) => d.box), labels: explained.map((d) => d.label) };
  const result = await occlusionSensitivity({
    pixels: image.pixels,
    height: image.height,
    width: image.width,
    channels: image.channels,
    patch: options.patch,
    batchSize: options.batchSize ?? 8,
    onProgress: options.onProgress,
    score: async (batch) => {
      const run = await model.forward(batch.map((pixels) => ({ ...image, pixels })));
      return (await model.detect(run.outputs, run.meta)).map((found) => boxScore(target, found));
    },
  });
  const rows = windowOrigins(image.height, result.patch, result.stride).length;
  const columns = windowOrigins(image.width, result.patch, result.stride).length;
  return {
    method: 'occlusion',
    cam: result.cam,
    height: image.height,
    width: image.width,
    grid: [rows, columns],
    detections,
    explained,
    originalScore: result.originalScore,
    occlusion: { patch: result.patch, stride: result.stride },
  };
}

function pickTargets(detections: Detection[], options: ExplainOptions): Detection[] {
  if (detections.length === 0) throw new FedcxrError('explain_no_detection', 'the model detects nothing on this image');
  if (options.detection !== undefined) {
    const chosen = detections[options.detection];
    if (!chosen) {
      throw new FedcxrError(
        'usage',
        `detection ${options.detection} does not exist: the model found ${detections.length} (0–${detections.length - 1})`,
      );
    }
    return [chosen];
  }
  const threshold = options.scoreThreshold ?? 0.5;
  const above = detections.filter((d) => d.score >= threshold);
  return above.length > 0 ? above : [detections[0]];
}

/** The FPN levels of the network's output (one image, NCHW), in level order. */
function featureLevels(outputs: NetworkOutputs): Map<string, FeatureLevel> {
  const map = new Map<string, FeatureLevel>();
  for (const name of FPN_LEVELS) {
    const t = outputs[`feature_${name}`];
    if (!t) continue;
    const [, channels, height, width] = t.dims;
    map.set(name, { data: t.data as Float32Array, channels, height, width });
  }
  return map;
}

/** The heads on a batch of (ablated) NCHW feature maps of ONE image, repeated. */
async function runHeads(
  model: OnnxFasterRcnn,
  features: Map<string, FeatureBatch>,
  meta: BatchMeta,
): Promise<Detection[][]> {
  const inputs: Record<string, ort.Tensor> = {};
  let count = 0;
  for (const [name, { data, shape }] of features) {
    count = shape[0];
    inputs[`feature_${name}`] = new ort.Tensor('float32', data, shape);
  }
  const rpn = await model.rpnHead(inputs);
  const repeated: BatchMeta = {
    batchHeight: meta.batchHeight,
    batchWidth: meta.batchWidth,
    imageSizes: Array.from({ length: count }, () => meta.imageSizes[0]),
    originalSizes: Array.from({ length: count }, () => meta.originalSizes[0]),
  };
  return model.detect({ ...inputs, ...rpn }, repeated);
}

/**
 * pytorch-grad-cam's `renormalize_cam_in_bounding_boxes` (its detector tutorials): zero outside the boxes,
 * min-max scaled inside each box (a later box overwrites an earlier one where they overlap), then min-max scaled
 * again. Which part of each box the detection rests on, without the image-wide responses (a body outline) that
 * dominate a detector's full-image map. Boxes are x1, y1, x2, y2 in pixels, truncated to whole pixels like
 * pytorch-grad-cam's int cast.
 */
export function renormalizeCamInBoxes(
  cam: Float32Array,
  width: number,
  height: number,
  boxes: readonly (readonly [number, number, number, number])[],
): Float32Array {
  const out = new Float32Array(cam.length);
  for (const box of boxes) {
    const [x1, y1, x2, y2] = box.map((v) => Math.trunc(v));
    const inside: number[] = [];
    for (let y = Math.max(0, y1); y < Math.min(height, y2); y++)
      for (let x = Math.max(0, x1); x < Math.min(width, x2); x++) inside.push(y * width + x);
    scaleCamOver(out, cam, inside);
  }
  scaleCamOver(
    out,
    out,
    Array.from({ length: out.length }, (_, i) => i),
  );
  return out;
}

/** scale_cam_image over `indices`: out[i] = (values[i] − min) / (1e-7 + max − min). */
function scaleCamOver(out: Float32Array, values: Float32Array, indices: readonly number[]): void {
  let low = Number.POSITIVE_INFINITY;
  let high = Number.NEGATIVE_INFINITY;
  for (const i of indices) {
    low = Math.min(low, values[i]);
    high = Math.max(high, values[i]);
  }
  for (const i of indices) out[i] = (values[i] - low) / (1e-7 + high - low);
}

/** ReLU + min-max, scaled over the padded batch, cropped to the resized image, resized to the original. */
function camToImage(raw: ArrayLike<number>, rawHeight: number, rawWidth: number, meta: BatchMeta): Float32Array {
  const padded = scaleCam(raw, rawHeight, rawWidth, meta.batchHeight, meta.batchWidth);
  const [h, w] = meta.imageSizes[0];
  const [oh, ow] = meta.originalSizes[0];
  if (h === meta.batchHeight && w === meta.batchWidth && h === oh && w === ow) return padded;
  return tf.tidy(() => {
    const t = tf.tensor4d(padded, [1, meta.batchHeight, meta.batchWidth, 1]);
    const cropped = tf.slice(t, [0, 0, 0, 0], [1, h, w, 1]) as tf.Tensor4D;
    return tf.image.resizeBilinear(cropped, [oh, ow], false, true).dataSync() as Float32Array;
  });
}
