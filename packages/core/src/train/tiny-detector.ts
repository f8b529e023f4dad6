/**
 * `tiny_grid`: a deliberately small, real detector (single-scale, anchor-free, one cell per object as in
 * YOLOv1/CenterNet) that implements the Detector contract. It exists so the training machinery — loop,
 * optimizer, checkpoints, resume, report, the `cxr train` command — is exercised end to end in seconds on
 * a CPU, independent of Faster R-CNN. It really learns (its tests overfit synthetic images to AP50 ≥ 0.9);
 * it is not a chest X-ray model.
 *
 * Images are resized to inputSize² (grey; colour averaged), standardized, passed through 4 3×3 convolutions
 * (stride 8 overall) and a 1×1 head giving per cell: objectness, class logits, and a box as
 * (dx, dy, log w, log h) relative to the cell center and the stride.
 */
import { FedcxrError, Rng } from '@fedcxr/base';
import {
  type Detection,
  type Detector,
  type DetectorImage,
  type DetectorOptions,
  type DetectorTarget,
  detectors,
} from '../model.js';
import type { NamedTensors } from '../tensors.js';
import { tf } from '../tf.js';

const STRIDE = 8;

export interface TinyGridOptions {
  numClasses: number;
  classes?: string[];
  /** Square input side in pixels (a multiple of 8). */
  inputSize?: number;
  /** Channels of the first convolution (later ones have twice as many). */
  width?: number;
  /** Seed of the weight initialization. */
  seed?: number;
}

interface LayerSpec {
  name: string;
  kernel: number;
  inChannels: number;
  outChannels: number;
  stride: number;
}

let instanceCounter = 0;

export class TinyGridDetector implements Detector {
  readonly architecture = 'tiny_grid';
  readonly classes: readonly string[];
  readonly inputSize: number;
  private readonly numClasses: number;
  private readonly layers: LayerSpec[];
  private readonly variables = new Map<string, tf.Variable>();

  constructor(options: TinyGridOptions) {
    this.numClasses = options.numClasses;
    this.inputSize = options.inputSize ?? 64;
    if (this.inputSize % STRIDE !== 0) {
      throw new FedcxrError('invalid_config', `tiny_grid input size must be a multiple of ${STRIDE}`);
    }
    this.classes = ['__background__', ...(options.classes ?? range(options.numClasses).map((i) => `class_${i + 1}`))];
    if (this.classes.length !== this.numClasses + 1) {
      throw new FedcxrError(
        'invalid_config',
        `tiny_grid got ${this.classes.length - 1} class names for ${this.numClasses} classes`,
      );
    }
    const w = options.width ?? 16;
    // Non-overlapping patches down to stride 8 (a 4×4 then a 2×2 "patchify" step), then two 3×3 layers for
    // context across cells (receptive field 40 px: an object's center cell sees the whole object).
    this.layers = [
      { name: 'stem', kernel: 4, inChannels: 1, outChannels: w, stride: 4 },
      { name: 'down', kernel: 2, inChannels: w, outChannels: 2 * w, stride: 2 },
      { name: 'context1', kernel: 3, inChannels: 2 * w, outChannels: 2 * w, stride: 1 },
      { name: 'context2', kernel: 3, inChannels: 2 * w, outChannels: 2 * w, stride: 1 },
      { name: 'head', kernel: 1, inChannels: 2 * w, outChannels: 1 + this.numClasses + 4, stride: 1 },
    ];
    const rng = new Rng(options.seed ?? 0);
    const prefix = `tiny_grid_${instanceCounter++}`;
    for (const layer of this.layers) {
      const fanIn = layer.kernel * layer.kernel * layer.inChannels;
      const bound = Math.sqrt(6 / fanIn) * (layer.name === 'head' ? 0.1 : 1);
      const count = fanIn * layer.outChannels;
      const weight = Float32Array.from({ length: count }, () => rng.uniform(-bound, bound));
      const bias = new Float32Array(layer.outChannels);
      if (layer.name === 'head') bias[0] = -2; // objectness prior ≈ 0.12: most cells are background
      const shape = [layer.kernel, layer.kernel, layer.inChannels, layer.outChannels];
      this.variables.set(
        `${layer.name}.weight`,
        tf.variable(tf.tensor(weight, shape), true, `${prefix}/${layer.name}.weight`),
      );
      this.variables.set(`${layer.name}.bias`, tf.variable(tf.tensor1d(bias), true, `${prefix}/${layer.name}.bias`));
    }
  }

  private get grid(): number {
    return this.inputSize / STRIDE;
  }

  /** Resized, standardized grey batch [N, S, S, 1] and each image's scale from original to input pixels. */
  private prepare(images: readonly DetectorImage[]): { batch: tf.Tensor4D; scales: [number, number][] } {
    const s = this.inputSize;
    const scales: [number, number][] = images.map((im) => [s / im.width, s / im.height]);
    const batch = tf.tidy(() =>
      tf.concat(
        images.map((im) => {
          let x: tf.Tensor3D = tf.tensor3d(im.pixels, [im.height, im.width, im.channels]);
          if (im.channels === 3) x = tf.mean(x, 2, true) as tf.Tensor3D;
          const resized = tf.image.resizeBilinear(x, [s, s], false, true);
          return tf.expandDims(tf.div(tf.sub(resized, 0.5), 0.25), 0) as tf.Tensor4D;
        }),
        0,
      ),
    );
    return { batch, scales };
  }

  private forward(batch: tf.Tensor4D): tf.Tensor4D {
    let x = batch;
    for (const layer of this.layers) {
      const weight = this.variables.get(`${layer.name}.weight`) as tf.Tensor4D;
      const bias = this.variables.get(`${layer.name}.bias`) as tf.Tensor1D;
      x = tf.add(convolution(x, weight, layer.stride), bias);
      if (layer.name !== 'head') x = tf.relu(x);
    }
    return x;
  }

  losses(images: readonly DetectorImage[], targets: readonly DetectorTarget[]): Record<string, tf.Scalar> {
    if (images.length !== targets.length) {
      throw new FedcxrError('usage', `tiny_grid got ${images.length} images and ${targets.length} targets`);
    }
    const g = this.grid;
    const n = images.length;
    const c = this.numClasses;
    const objectness = new Float32Array(n * g * g);
    const classes = new Float32Array(n * g * g * c);
    const boxes = new Float32Array(n * g * g * 4);
    const { batch, scales } = this.prepare(images);
    targets.forEach((target, b) => {
      const [sx, sy] = scales[b];
      for (let k = 0; k < target.labels.length; k++) {
        const label = target.labels[k];
        if (label < 1 || label > c) throw new FedcxrError('usage', `label ${label} outside 1..${c}`);
        const x1 = target.boxes[k * 4] * sx;
        const y1 = target.boxes[k * 4 + 1] * sy;
        const x2 = target.boxes[k * 4 + 2] * sx;
        const y2 = target.boxes[k * 4 + 3] * sy;
        const cx = (x1 + x2) / 2;
        const cy = (y1 + y2) / 2;
        const col = Math.min(g - 1, Math.max(0, Math.floor(cx / STRIDE)));
        const row = Math.min(g - 1, Math.max(0, Math.floor(cy / STRIDE)));
        const cell = (b * g + row) * g + col;
        objectness[cell] = 1;
        classes.fill(0, cell * c, cell * c + c);
        classes[cell * c + label - 1] = 1;
        boxes[cell * 4] = (cx - (col + 0.5) * STRIDE) / STRIDE;
        boxes[cell * 4 + 1] = (cy - (row + 0.5) * STRIDE) / STRIDE;
        boxes[cell * 4 + 2] = Math.log(Math.max(x2 - x1, 1e-3) / STRIDE);
        boxes[cell * 4 + 3] = Math.log(Math.max(y2 - y1, 1e-3) / STRIDE);
      }
    });
    const numPositive = Math.max(
      1,
      objectness.reduce((s, v) => s + v, 0),
    );
    const out = this.forward(batch);
    batch.dispose();
    const objTarget = tf.tensor3d(objectness, [n, g, g]);
    const objLogits = tf.squeeze(tf.slice(out, [0, 0, 0, 0], [n, g, g, 1]), [3]);
    // Normalized by the number of objects, as RetinaNet/FCOS do (a mean over mostly-empty cells would make
    // the objectness gradient vanish).
    const bce = tf.sub(
      tf.add(tf.relu(objLogits), tf.log1p(tf.exp(tf.neg(tf.abs(objLogits))))),
      tf.mul(objLogits, objTarget),
    );
    const lossObjectness = tf.div(tf.sum(bce), numPositive) as tf.Scalar;
    const classLogits = tf.slice(out, [0, 0, 0, 1], [n, g, g, c]);
    const classTarget = tf.tensor4d(classes, [n, g, g, c]);
    const crossEntropy = tf.neg(tf.sum(tf.mul(classTarget, tf.logSoftmax(classLogits)), 3));
    const lossClassifier = tf.div(tf.sum(tf.mul(crossEntropy, objTarget)), numPositive) as tf.Scalar;
    const boxPred = tf.slice(out, [0, 0, 0, 1 + c], [n, g, g, 4]);
    const diff = tf.abs(tf.sub(boxPred, tf.tensor4d(boxes, [n, g, g, 4])));
    const beta = 1 / 9;
    // smooth-L1 as 0.5·q²/β + (|d| − q) with q = min(|d|, β): the same function, built from ops with gradients.
    const q = tf.minimum(diff, beta);
    const smoothL1 = tf.add(tf.div(tf.mul(tf.square(q), 0.5), beta), tf.sub(diff, q));
    const lossBoxReg = tf.div(tf.sum(tf.mul(tf.sum(smoothL1, 3), objTarget)), numPositive) as tf.Scalar;
    return { loss_objectness: lossObjectness, loss_classifier: lossClassifier, loss_box_reg: lossBoxReg };
  }

  async predict(images: readonly DetectorImage[]): Promise<Detection[][]> {
    const g = this.grid;
    const c = this.numClasses;
    const { batch, scales } = this.prepare(images);
    const out = tf.tidy(() => this.forward(batch));
    batch.dispose();
    const values = (await out.data()) as Float32Array;
    out.dispose();
    const depth = 1 + c + 4;
    return images.map((_, b) => {
      const [sx, sy] = scales[b];
      const candidates: Detection[] = [];
      for (let row = 0; row < g; row++) {
        for (let col = 0; col < g; col++) {
          const at = ((b * g + row) * g + col) * depth;
          const obj = 1 / (1 + Math.exp(-values[at]));
          let maxLogit = Number.NEGATIVE_INFINITY;
          for (let k = 0; k < c; k++) maxLogit = Math.max(maxLogit, values[at + 1 + k]);
          let denominator = 0;
          for (let k = 0; k < c; k++) denominator += Math.exp(values[at + 1 + k] - maxLogit);
          const cx = (col + 0.5 + values[at + 1 + c]) * STRIDE;
          const cy = (row + 0.5 + values[at + 2 + c]) * STRIDE;
          const w = Math.exp(Math.min(values[at + 3 + c], 10)) * STRIDE;
          const h = Math.exp(Math.min(values[at + 4 + c], 10)) * STRIDE;
          const box: [number, number, number, number] = [
            clamp((cx - w / 2) / sx, 0, images[b].width),
            clamp((cy - h / 2) / sy, 0, images[b].height),
            clamp((cx + w / 2) / sx, 0, images[b].width),
            clamp((cy + h / 2) / sy, 0, images[b].height),
          ];
          for (let k = 0; k < c; k++) {
            const score = (obj * Math.exp(values[at + 1 + k] - maxLogit)) / denominator;
            if (score > 0.05) candidates.push({ box: [...box], label: k + 1, score });
          }
        }
      }
      return nonMaxSuppression(candidates, 0.5, 100);
    });
  }

  trainableVariables(): tf.Variable[] {
    return [...this.variables.values()];
  }

  getWeights(): NamedTensors {
    const weights: NamedTensors = new Map();
    for (const [name, variable] of this.variables) {
      weights.set(name, { dtype: 'float32', shape: [...variable.shape], data: variable.dataSync() as Float32Array });
    }
    return weights;
  }

  setWeights(weights: NamedTensors, options: { strict?: boolean } = {}): void {
    const strict = options.strict ?? true;
    for (const [name, variable] of this.variables) {
      const host = weights.get(name);
      if (!host) {
        if (strict) throw new FedcxrError('bad_weights', `tiny_grid weights lack "${name}"`);
        continue;
      }
      if (host.shape.join('x') !== variable.shape.join('x')) {
        throw new FedcxrError(
          'bad_weights',
          `"${name}" has shape [${host.shape}], tiny_grid expects [${variable.shape}]`,
        );
      }
      variable.assign(tf.tensor(Float32Array.from(host.data), host.shape));
    }
    if (strict) {
      for (const name of weights.keys()) {
        if (!this.variables.has(name))
          throw new FedcxrError('bad_weights', `unexpected weight "${name}" for tiny_grid`);
      }
    }
  }

  dispose(): void {
    for (const variable of this.variables.values()) variable.dispose();
    this.variables.clear();
  }
}

/**
 * Convolutions as matrix products: 1×1 → one matMul; k×k with stride k (non-overlapping patches) →
 * space-to-depth (reshape + transpose) then matMul; 3×3 stride 1 → im2col from 9 shifted slices.
 * Why not tf.conv2d: tfjs' cpu backend computes the filter gradient (Conv2DBackpropFilter) with a scalar
 * loop that took 1.7 s for a 1.2 M-multiply-add layer here, 30× the rest of the step; its matMul and
 * transpose (and their gradients) are fast. The weight layout stays [kh, kw, in, out].
 */
function convolution(x: tf.Tensor4D, weight: tf.Tensor4D, stride: number): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const [k, , , out] = weight.shape;
  const matrix = tf.reshape(weight, [k * k * c, out]);
  if (k === stride) {
    const ho = h / k;
    const wo = w / k;
    const folded = tf.transpose(tf.reshape(x, [n, ho, k, wo, k, c]), [0, 1, 3, 2, 4, 5]);
    return tf.reshape(tf.matMul(tf.reshape(folded, [n * ho * wo, k * k * c]), matrix), [n, ho, wo, out]);
  }
  if (stride !== 1) throw new FedcxrError('internal', `tiny_grid: unsupported convolution k=${k} stride=${stride}`);
  const pad = Math.floor(k / 2);
  const padded = tf.pad(x, [
    [0, 0],
    [pad, pad],
    [pad, pad],
    [0, 0],
  ]);
  // Σ over the k² taps of (shifted input) · W[tap]: the same sum as im2col, without concat (whose
  // gradient, SplitV, is slow on the cpu backend).
  const terms: tf.Tensor2D[] = [];
  for (let dy = 0; dy < k; dy++) {
    for (let dx = 0; dx < k; dx++) {
      const tap = tf.reshape(tf.slice(padded, [0, dy, dx, 0], [n, h, w, c]), [n * h * w, c]);
      terms.push(tf.matMul(tap, tf.slice(matrix, [(dy * k + dx) * c, 0], [c, out])));
    }
  }
  return tf.reshape(tf.addN(terms), [n, h, w, out]);
}

/** Greedy per-class NMS, highest score first, at most `limit` kept. */
function nonMaxSuppression(detections: Detection[], iouThreshold: number, limit: number): Detection[] {
  const sorted = [...detections].sort((a, b) => b.score - a.score);
  const kept: Detection[] = [];
  for (const d of sorted) {
    if (kept.length >= limit) break;
    if (kept.every((k) => k.label !== d.label || iou(k.box, d.box) <= iouThreshold)) kept.push(d);
  }
  return kept;
}

function iou(a: readonly number[], b: readonly number[]): number {
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = w * h;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}

function clamp(value: number, low: number, high: number): number {
  return Math.max(low, Math.min(value, high));
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/**
 * Builds tiny_grid from the detector registry's options. As for faster_rcnn, `numClasses` counts the
 * foreground classes and `classes[0]` is '__background__'. Settings: inputSize, width, seed.
 */
export function buildTinyGridDetector(options: DetectorOptions): TinyGridDetector {
  return new TinyGridDetector({
    numClasses: options.numClasses,
    classes: options.classes?.slice(1),
    inputSize: typeof options.inputSize === 'number' ? options.inputSize : undefined,
    width: typeof options.width === 'number' ? options.width : undefined,
    seed: typeof options.seed === 'number' ? options.seed : undefined,
  });
}

/** Registers tiny_grid in core's detector registry (idempotent). */
export function registerTinyGridDetector(): void {
  if (detectors.has('tiny_grid')) return;
  detectors.register(
    'tiny_grid',
    buildTinyGridDetector,
    'a minimal single-scale grid detector for smoke tests and CPU demos (not a chest X-ray model)',
  );
}
