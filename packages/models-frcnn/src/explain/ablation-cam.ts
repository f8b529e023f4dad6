/**
 * AblationCAM (Desai & Ramaswamy, WACV 2020) for Faster R-CNN, as pytorch-grad-cam defines it:
 * the target layer is the backbone (FPN levels '0'…'pool', 256 channels each, indexed as one list of
 * levels × 256 channels); each ablated pass sets one channel of one level to −1000 and re-runs the RPN and
 * ROI heads; the score of a pass is FasterRCNNBoxScoreTarget's (for every original detection, the IoU plus
 * score of the best-IoU output box when IoU > 0.5 and the label agrees); a channel's weight is the
 * relative drop (original − ablated) / original; the CAM is ReLU(Σ weight · |activation|) over the levels
 * resized to a common size (as for EigenCAM), min-max scaled and resized to the image.
 */
import { type Detection, FedcxrError, tf } from '@fedcxr/core';
import { boxIou } from '../ops/boxes.js';
import { concatenateLevels, firstComponentProjection, scaleCam } from './eigencam.js';

/** The value pytorch-grad-cam's AblationLayerFasterRCNN writes into an ablated channel. */
export const ABLATION_VALUE = -1000;

export interface BoxScoreTarget {
  /** Boxes (x1, y1, x2, y2) and 1-based labels of the detections being explained. */
  boxes: readonly (readonly [number, number, number, number])[];
  labels: readonly number[];
  iouThreshold?: number;
}

/**
 * pytorch-grad-cam's FasterRCNNBoxScoreTarget: Σ over targets of (IoU + score) of the best-IoU match, the IoU
 * being torchvision's box_iou (float32, ops/boxes.ts).
 */
export function boxScore(target: BoxScoreTarget, detections: readonly Detection[]): number {
  if (detections.length === 0) return 0;
  const threshold = target.iouThreshold ?? 0.5;
  const outputs = Float32Array.from(detections.flatMap((d) => d.box));
  let total = 0;
  target.boxes.forEach((box, t) => {
    const ious = boxIou(Float32Array.from(box), outputs);
    let best = -1;
    let bestIou = Number.NEGATIVE_INFINITY;
    ious.forEach((iou, i) => {
      if (iou > bestIou) {
        bestIou = iou;
        best = i;
      }
    });
    if (best >= 0 && bestIou > threshold && detections[best].label === target.labels[t]) {
      total += bestIou + detections[best].score;
    }
  });
  return total;
}

/** One image's feature map in NCHW order (N = 1): what ONNX Runtime returns. */
export interface FeatureLevel {
  data: Float32Array;
  channels: number;
  height: number;
  width: number;
}

/** A batch of feature maps, NCHW, `count` images. */
export interface FeatureBatch {
  data: Float32Array;
  shape: [number, number, number, number];
}

export interface AblationCamOptions {
  /** The backbone's output for ONE image, per level, in level order. */
  features: Map<string, FeatureLevel>;
  /** Runs the detector's heads (RPN, ROI heads, postprocess) on a batch of feature maps. */
  runHeads: (features: Map<string, FeatureBatch>) => Promise<Detection[][]>;
  target: BoxScoreTarget;
  /** Size to scale the CAM to (pytorch-grad-cam: the input image). */
  imageHeight: number;
  imageWidth: number;
  /** The common grid the levels are resized to (default: the smallest level's, as pytorch-grad-cam). */
  grid?: [number, number];
  /** Ablated passes per head run (pytorch-grad-cam's batch_size, default 32). */
  batchSize?: number;
  /** Fraction of channels actually ablated (pytorch-grad-cam's experimental ratio_channels_to_ablate). */
  ratioChannelsToAblate?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface AblationCamResult {
  /** ReLU + min-max scaled CAM at imageHeight × imageWidth. */
  cam: Float32Array;
  /** Σ weight · |activation| at the common feature size (before ReLU and scaling). */
  raw: Float64Array;
  rawHeight: number;
  rawWidth: number;
  /** Per-channel weight (levels × channels, level-major). */
  weights: Float32Array;
  originalScore: number;
}

/** NCHW (N = 1) levels as NHWC tensors, for the CAM activations (abs, resize, concat). */
export function levelsToTensors(features: Map<string, FeatureLevel>): Map<string, tf.Tensor4D> {
  const out = new Map<string, tf.Tensor4D>();
  for (const [name, { data, channels, height, width }] of features) {
    const hwc = new Float32Array(data.length);
    const plane = height * width;
    for (let c = 0; c < channels; c++) {
      for (let p = 0; p < plane; p++) hwc[p * channels + c] = data[c * plane + p];
    }
    out.set(name, tf.tensor4d(hwc, [1, height, width, channels]));
  }
  return out;
}

export async function ablationCam(options: AblationCamOptions): Promise<AblationCamResult> {
  const { features, runHeads, target } = options;
  const batchSize = options.batchSize ?? 32;
  const ratio = options.ratioChannelsToAblate ?? 1;
  const levels = [...features.entries()];
  const perLevel = levels[0][1].channels;
  const channelCount = levels.length * perLevel;

  const single = new Map<string, FeatureBatch>(
    levels.map(([name, l]) => [name, { data: l.data, shape: [1, l.channels, l.height, l.width] }]),
  );
  // float32 throughout, as pytorch-grad-cam (np.float32 scores and weights).
  const original = Math.fround(boxScore(target, (await runHeads(single))[0] ?? []));
  if (!(original > 0)) {
    throw new FedcxrError(
      'explain_target_lost',
      'the detection to explain is not reproduced by the model (its box score is 0)',
    );
  }
  const tensors = levelsToTensors(features);
  const stacked = concatenateLevels(tensors, options.grid);
  for (const t of tensors.values()) t.dispose();
  const [, h, w] = stacked.shape;
  const activations = (await stacked.data()) as Float32Array;
  stacked.dispose();

  const channels = channelsToAblate(activations, h * w, channelCount, ratio);
  const scores = new Float32Array(channelCount).fill(original);
  for (let start = 0; start < channels.length; start += batchSize) {
    const batch = channels.slice(start, start + batchSize);
    const ablated = new Map<string, FeatureBatch>();
    levels.forEach(([name, level], levelIndex) => {
      ablated.set(name, ablateLevel(level, batch, levelIndex, perLevel));
    });
    const outputs = await runHeads(ablated);
    batch.forEach((channel, i) => {
      scores[channel] = boxScore(target, outputs[i] ?? []);
    });
    options.onProgress?.(Math.min(start + batchSize, channels.length), channels.length);
  }
  const weights = scores.map((s) => (original - s) / original);

  const cam = new Float64Array(h * w);
  for (let p = 0; p < h * w; p++) {
    let s = 0;
    for (let c = 0; c < channelCount; c++) s += weights[c] * activations[p * channelCount + c];
    cam[p] = s;
  }
  return {
    cam: scaleCam(cam, h, w, options.imageHeight, options.imageWidth),
    raw: cam,
    rawHeight: h,
    rawWidth: w,
    weights,
    originalScore: original,
  };
}

/** One level repeated for each ablated channel (NCHW), with that channel's plane set to ABLATION_VALUE. */
function ablateLevel(
  level: FeatureLevel,
  channels: readonly number[],
  levelIndex: number,
  perLevel: number,
): FeatureBatch {
  const size = level.data.length;
  const plane = level.height * level.width;
  const data = new Float32Array(channels.length * size);
  channels.forEach((channel, i) => {
    data.set(level.data, i * size);
    if (Math.floor(channel / perLevel) === levelIndex) {
      const offset = i * size + (channel % perLevel) * plane;
      data.fill(ABLATION_VALUE, offset, offset + plane);
    }
  });
  return { data, shape: [channels.length, level.channels, level.height, level.width] };
}

/**
 * Which channels to ablate. All of them at ratio 1; below 1, pytorch-grad-cam's experimental rule: score each
 * channel by how much of its (min-max normalized) |activation| falls inside the EigenCAM mask
 * (|projection| scaled to [0, 1] > 0.01), then take the top and the bottom `ratio` fractions.
 */
export function channelsToAblate(activations: Float32Array, pixels: number, channels: number, ratio: number): number[] {
  if (ratio >= 1) return Array.from({ length: channels }, (_, i) => i);
  const projection = firstComponentProjection(activations, pixels, channels).map(Math.abs);
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const v of projection) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const mask = projection.map((v) => ((v - lo) / (hi - lo) > 0.01 ? 1 : 0));
  const scores: number[] = [];
  for (let c = 0; c < channels; c++) {
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (let p = 0; p < pixels; p++) {
      const v = Math.abs(activations[p * channels + c]);
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    let inside = 0;
    let total = 0;
    for (let p = 0; p < pixels; p++) {
      const v = (Math.abs(activations[p * channels + c]) - min) / max;
      inside += mask[p] * v;
      total += v;
    }
    scores.push(inside / total);
  }
  const order = scores.map((_, i) => i).sort((a, b) => scores[a] - scores[b] || a - b);
  const count = Math.floor(channels * ratio);
  return [...order.slice().reverse().slice(0, count), ...order.slice(0, count)];
}
