/**
 * Faster R-CNN (torchvision's fasterrcnn_*_fpn, v1) in TensorFlow.js ops: GeneralizedRCNNTransform →
 * backbone (any registered Backbone) → RPN → MultiScaleRoIAlign → TwoMLPHead → FastRCNNPredictor.
 * Dense math runs as tfjs ops (so gradients flow for training); proposal selection, matching, sampling and
 * NMS run on the host in float32 so they decide exactly as torchvision's CPU kernels. Weights carry
 * torchvision's state_dict names and layouts through getWeights/setWeights.
 */
import {
  type Backbone,
  backbones,
  type Detection,
  type Detector,
  type DetectorImage,
  type DetectorOptions,
  type DetectorTarget,
  detectors,
  FedcxrError,
  type NamedTensors,
  tf,
} from '@fedcxr/core';
import { tfjsToTorch, torchShape, torchToTfjs, type WeightLayout } from '../ops/layout.js';
import { BalancedSampler, Matcher, type Permutation, randomPermutation } from '../ops/matcher.js';
import { multiScaleRoiAlign } from '../ops/roi-align.js';
import { fastRcnnLoss, postprocessDetections, type RoiHeadOptions, selectTrainingSamples } from './roi-heads.js';
import { anchorsForBatch, type RpnHeadOutput, type RpnOptions, rpnLosses, selectProposals } from './rpn.js';
import { batchImages, IMAGENET_MEAN, IMAGENET_STD, resizeBoxes, type TransformOptions } from './transform.js';

/** Every setting of the detector, with torchvision's fasterrcnn_resnet50_fpn defaults. */
export interface FasterRcnnSettings {
  numClasses: number;
  classes: string[];
  transform: TransformOptions;
  rpn: RpnOptions & {
    fgIouThresh: number;
    bgIouThresh: number;
    batchSizePerImage: number;
    positiveFraction: number;
  };
  roi: RoiHeadOptions & {
    fgIouThresh: number;
    bgIouThresh: number;
    batchSizePerImage: number;
    positiveFraction: number;
    outputSize: number;
    samplingRatio: number;
    representationSize: number;
    /** Backbone outputs the RoI pooler reads (torchvision: '0'..'3'). */
    featureNames: string[];
  };
}

export interface FasterRcnnOptions extends DetectorOptions {
  minSize?: number;
  maxSize?: number;
  imageMean?: [number, number, number];
  imageStd?: [number, number, number];
  rpn?: Partial<FasterRcnnSettings['rpn']>;
  roi?: Partial<FasterRcnnSettings['roi']>;
  /** Draws the balanced samplers' permutations (torch.randperm's role); tests inject a fixed one. */
  permutation?: Permutation;
  /** Seed for the head initialization. */
  seed?: number;
}

export function fasterRcnnSettings(options: FasterRcnnOptions, backbone: Backbone): FasterRcnnSettings {
  if (!Number.isInteger(options.numClasses) || options.numClasses < 2) {
    throw new FedcxrError(
      'invalid_config',
      `numClasses must be an integer ≥ 2 (background included), got ${options.numClasses}`,
    );
  }
  const classes = options.classes ?? [
    '__background__',
    ...Array.from({ length: options.numClasses - 1 }, (_, i) => `class_${i + 1}`),
  ];
  if (classes.length !== options.numClasses) {
    throw new FedcxrError(
      'invalid_config',
      `classes has ${classes.length} names but numClasses is ${options.numClasses}`,
    );
  }
  const levels = backbone.outputs.length;
  const defaultSizes = [32, 64, 128, 256, 512].slice(0, levels).map((s) => [s]);
  return {
    numClasses: options.numClasses,
    classes,
    transform: {
      minSize: options.minSize ?? 800,
      maxSize: options.maxSize ?? 1333,
      imageMean: options.imageMean ?? IMAGENET_MEAN,
      imageStd: options.imageStd ?? IMAGENET_STD,
      sizeDivisible: 32,
    },
    rpn: {
      anchorSizes: defaultSizes,
      aspectRatios: defaultSizes.map(() => [0.5, 1, 2]),
      preNmsTopN: { training: 2000, testing: 1000 },
      postNmsTopN: { training: 2000, testing: 1000 },
      nmsThresh: 0.7,
      scoreThresh: 0,
      minSize: 1e-3,
      fgIouThresh: 0.7,
      bgIouThresh: 0.3,
      batchSizePerImage: 256,
      positiveFraction: 0.5,
      ...options.rpn,
    },
    roi: {
      scoreThresh: 0.05,
      nmsThresh: 0.5,
      detectionsPerImage: 100,
      fgIouThresh: 0.5,
      bgIouThresh: 0.5,
      batchSizePerImage: 512,
      positiveFraction: 0.25,
      outputSize: 7,
      samplingRatio: 2,
      representationSize: 1024,
      featureNames: backbone.outputs.map((o) => o.name).filter((name) => name !== 'pool'),
      ...options.roi,
    },
  };
}

interface Weight {
  variable: tf.Variable;
  layout: WeightLayout;
}

/**
 * Where a backbone says how each weight is laid out (needed where rank does not tell, e.g. Swin's 2-D
 * relative-position tables, which are not linear weights): a `layoutOf` method, or the ParamStore the
 * zoo's backbones keep in `params`.
 */
interface BackboneWithLayouts extends Backbone {
  layoutOf?(name: string): WeightLayout | undefined;
  params?: { layoutOf?(name: string): WeightLayout | undefined };
}

export class FasterRcnn implements Detector {
  readonly architecture: string;
  readonly classes: readonly string[];
  readonly settings: FasterRcnnSettings;
  private readonly headWeights = new Map<string, Weight>();
  private readonly rpnMatcher: Matcher;
  private readonly rpnSampler: BalancedSampler;
  private readonly roiMatcher: Matcher;
  private readonly roiSampler: BalancedSampler;

  constructor(
    readonly backbone: Backbone,
    options: FasterRcnnOptions,
  ) {
    this.settings = fasterRcnnSettings(options, backbone);
    this.architecture = `fasterrcnn_${backbone.name}`;
    this.classes = this.settings.classes;
    const { rpn, roi, numClasses } = this.settings;
    const permutation = options.permutation ?? randomPermutation();
    this.rpnMatcher = new Matcher(rpn.fgIouThresh, rpn.bgIouThresh, true);
    this.rpnSampler = new BalancedSampler(rpn.batchSizePerImage, rpn.positiveFraction, permutation);
    this.roiMatcher = new Matcher(roi.fgIouThresh, roi.bgIouThresh, false);
    this.roiSampler = new BalancedSampler(roi.batchSizePerImage, roi.positiveFraction, permutation);

    const channels = backbone.outputs[0].channels;
    if (backbone.outputs.some((o) => o.channels !== channels)) {
      throw new FedcxrError(
        'invalid_config',
        `backbone ${backbone.name}: all outputs need the same channel count for the RPN`,
      );
    }
    const anchorsPerCell = rpn.anchorSizes[0].length * rpn.aspectRatios[0].length;
    const seed = options.seed ?? 0;
    // torchvision: RPNHead convs ~ N(0, 0.01), bias 0; nn.Linear ~ U(±1/√fan_in) for weight and bias.
    const normal = (shape: number[], i: number) => tf.randomNormal(shape, 0, 0.01, 'float32', seed + i);
    const uniform = (shape: number[], fanIn: number, i: number) =>
      tf.randomUniform(shape, -1 / Math.sqrt(fanIn), 1 / Math.sqrt(fanIn), 'float32', seed + i);
    const pooledSize = channels * roi.outputSize * roi.outputSize;
    const rep = roi.representationSize;
    this.addHead('rpn.head.conv.0.0.weight', normal([3, 3, channels, channels], 1), 'conv');
    this.addHead('rpn.head.conv.0.0.bias', tf.zeros([channels]), 'plain');
    this.addHead('rpn.head.cls_logits.weight', normal([1, 1, channels, anchorsPerCell], 2), 'conv');
    this.addHead('rpn.head.cls_logits.bias', tf.zeros([anchorsPerCell]), 'plain');
    this.addHead('rpn.head.bbox_pred.weight', normal([1, 1, channels, anchorsPerCell * 4], 3), 'conv');
    this.addHead('rpn.head.bbox_pred.bias', tf.zeros([anchorsPerCell * 4]), 'plain');
    this.addHead('roi_heads.box_head.fc6.weight', uniform([pooledSize, rep], pooledSize, 4), 'linear');
    this.addHead('roi_heads.box_head.fc6.bias', uniform([rep], pooledSize, 5), 'plain');
    this.addHead('roi_heads.box_head.fc7.weight', uniform([rep, rep], rep, 6), 'linear');
    this.addHead('roi_heads.box_head.fc7.bias', uniform([rep], rep, 7), 'plain');
    this.addHead('roi_heads.box_predictor.cls_score.weight', uniform([rep, numClasses], rep, 8), 'linear');
    this.addHead('roi_heads.box_predictor.cls_score.bias', uniform([numClasses], rep, 9), 'plain');
    this.addHead('roi_heads.box_predictor.bbox_pred.weight', uniform([rep, numClasses * 4], rep, 10), 'linear');
    this.addHead('roi_heads.box_predictor.bbox_pred.bias', uniform([numClasses * 4], rep, 11), 'plain');
  }

  private addHead(name: string, initial: tf.Tensor, layout: WeightLayout): void {
    this.headWeights.set(name, { variable: tf.variable(initial, true, `frcnn/${name}`), layout });
    initial.dispose();
  }

  private head(name: string): tf.Variable {
    const weight = this.headWeights.get(name);
    if (!weight) throw new FedcxrError('internal', `missing head weight ${name}`);
    return weight.variable;
  }

  /** Every weight with its torchvision name: backbone ones get the 'backbone.' prefix. */
  private allWeights(): Map<string, Weight> {
    const all = new Map<string, Weight>();
    const withLayouts = this.backbone as BackboneWithLayouts;
    for (const [name, variable] of this.backbone.variables()) {
      const layout =
        withLayouts.layoutOf?.(name) ??
        withLayouts.params?.layoutOf?.(name) ??
        (variable.rank === 4 ? 'conv' : variable.rank === 2 ? 'linear' : 'plain');
      all.set(name.startsWith('backbone.') ? name : `backbone.${name}`, { variable, layout });
    }
    for (const [name, weight] of this.headWeights) all.set(name, weight);
    return all;
  }

  trainableVariables(): tf.Variable[] {
    return [...this.allWeights().values()].map((w) => w.variable).filter((v) => v.trainable);
  }

  getWeights(): NamedTensors {
    const out: NamedTensors = new Map();
    for (const [name, { variable, layout }] of this.allWeights()) out.set(name, tfjsToTorch(variable, layout));
    return out;
  }

  setWeights(weights: NamedTensors, options: { strict?: boolean } = {}): void {
    const strict = options.strict ?? true;
    const all = this.allWeights();
    const problems: string[] = [];
    if (strict) {
      for (const name of all.keys()) if (!weights.has(name)) problems.push(`missing ${name}`);
      for (const name of weights.keys()) {
        if (!all.has(name) && !name.endsWith('num_batches_tracked')) problems.push(`unexpected ${name}`);
      }
    }
    for (const [name, { variable, layout }] of all) {
      const host = weights.get(name);
      if (!host) continue;
      const expected = torchShape(variable.shape, layout);
      if (host.shape.join(',') !== expected.join(',')) {
        problems.push(`${name}: shape [${host.shape.join(', ')}] but the model has [${expected.join(', ')}]`);
      }
    }
    if (problems.length > 0) {
      const shown = problems.slice(0, 8).join('; ');
      throw new FedcxrError(
        'weights_mismatch',
        `${this.architecture}: ${shown}${problems.length > 8 ? `; and ${problems.length - 8} more` : ''}`,
      );
    }
    for (const [name, { variable, layout }] of all) {
      const host = weights.get(name);
      if (!host) continue;
      const value = torchToTfjs(name, host, layout);
      variable.assign(value);
      value.dispose();
    }
  }

  /** RPNHead on every level, flattened in (level, y, x, anchor) order. */
  private rpnHead(levels: readonly tf.Tensor4D[]): RpnHeadOutput {
    return tf.tidy(() => {
      const objectness: tf.Tensor2D[] = [];
      const deltas: tf.Tensor3D[] = [];
      const counts: number[] = [];
      for (const level of levels) {
        const [n, h, w] = level.shape;
        const hidden = tf.relu(
          tf.add(
            tf.conv2d(level, this.head('rpn.head.conv.0.0.weight') as tf.Tensor4D, 1, 'same'),
            this.head('rpn.head.conv.0.0.bias'),
          ),
        ) as tf.Tensor4D;
        const logits = tf.add(
          tf.conv2d(hidden, this.head('rpn.head.cls_logits.weight') as tf.Tensor4D, 1, 'valid'),
          this.head('rpn.head.cls_logits.bias'),
        );
        const boxes = tf.add(
          tf.conv2d(hidden, this.head('rpn.head.bbox_pred.weight') as tf.Tensor4D, 1, 'valid'),
          this.head('rpn.head.bbox_pred.bias'),
        );
        const a = logits.shape[3] ?? 0;
        objectness.push(tf.reshape(logits, [n, h * w * a]));
        deltas.push(tf.reshape(boxes, [n, h * w * a, 4]));
        counts.push(h * w * a);
      }
      return {
        objectness: objectness.length === 1 ? objectness[0] : tf.concat(objectness, 1),
        deltas: deltas.length === 1 ? deltas[0] : tf.concat(deltas, 1),
        anchorsPerLevel: counts,
      };
    });
  }

  /** TwoMLPHead + FastRCNNPredictor on pooled [R, 7, 7, C] features. */
  private boxHead(pooled: tf.Tensor4D): { classLogits: tf.Tensor2D; boxRegression: tf.Tensor2D } {
    return tf.tidy(() => {
      const rois = pooled.shape[0];
      // No proposal survived (e.g. every box degenerate): the wasm backend's transpose divides by a zero
      // dimension, so answer the empty shapes directly.
      if (rois === 0) {
        const k = this.settings.numClasses;
        return { classLogits: tf.zeros([0, k]) as tf.Tensor2D, boxRegression: tf.zeros([0, 4 * k]) as tf.Tensor2D };
      }
      // torch flattens NCHW: channel-major, so the fc6 weights apply unchanged.
      const flat = tf.reshape(tf.transpose(pooled, [0, 3, 1, 2]), [rois, -1]) as tf.Tensor2D;
      const dense = (x: tf.Tensor2D, name: string) =>
        denseLayer(x, this.head(`${name}.weight`) as tf.Tensor2D, this.head(`${name}.bias`) as tf.Tensor1D);
      const fc6 = tf.relu(dense(flat, 'roi_heads.box_head.fc6'));
      const fc7 = tf.relu(dense(fc6, 'roi_heads.box_head.fc7'));
      return {
        classLogits: dense(fc7, 'roi_heads.box_predictor.cls_score'),
        boxRegression: dense(fc7, 'roi_heads.box_predictor.bbox_pred'),
      };
    });
  }

  private features(
    batch: tf.Tensor4D,
    training: boolean,
  ): { all: tf.Tensor4D[]; pooled: tf.Tensor4D[]; owned: Map<string, tf.Tensor4D> } {
    const owned = this.backbone.apply(batch, training);
    const pick = (name: string) => {
      const map = owned.get(name);
      if (!map) throw new FedcxrError('internal', `backbone ${this.backbone.name} gave no output "${name}"`);
      return map;
    };
    return {
      all: this.backbone.outputs.map((o) => pick(o.name)),
      pooled: this.settings.roi.featureNames.map(pick),
      owned,
    };
  }

  /** Runs transform, backbone, RPN and returns everything the box stage needs (caller disposes). */
  private propose(images: readonly DetectorImage[], training: boolean) {
    return this.selectStage(this.denseStage(images, training), training);
  }

  /** Transform, backbone and RPN head: device work only, no host read. */
  private denseStage(images: readonly DetectorImage[], training: boolean) {
    const batch = batchImages(images, this.settings.transform);
    const features = this.features(batch.tensor, training);
    const head = this.rpnHead(features.all);
    return { batch, features, head };
  }

  /** Proposal selection on the host (reads the RPN head's outputs). */
  private selectStage(stage: ReturnType<FasterRcnn['denseStage']>, training: boolean) {
    const { batch, features, head } = stage;
    const [, batchHeight, batchWidth] = batch.tensor.shape;
    const { anchors } = anchorsForBatch(
      this.settings.rpn,
      [batchHeight, batchWidth],
      features.all.map((m) => [m.shape[1], m.shape[2]] as [number, number]),
    );
    const proposals = selectProposals(
      head.objectness.dataSync() as Float32Array,
      head.deltas.dataSync() as Float32Array,
      anchors,
      head.anchorsPerLevel,
      batch.imageSizes,
      this.settings.rpn,
      training,
    );
    return { batch, features, head, anchors, proposals };
  }

  /** RPN proposals per image in resized-image pixels (what torchvision's rpn returns), for inspection and tests. */
  proposals(images: readonly DetectorImage[]): { boxes: Float32Array; scores: Float32Array }[] {
    const stage = this.propose(images, false);
    disposeStage(stage);
    return stage.proposals;
  }

  async predict(images: readonly DetectorImage[]): Promise<Detection[][]> {
    const dense = this.denseStage(images, false);
    if (!hasSyncReads()) {
      // tfjs-webgpu reads synchronously only through a browser's OffscreenCanvas (in Node dataSync throws):
      // download what the host steps read (RPN outputs, RoIAlign's maps) first; later reads hit its CPU cache.
      try {
        await Promise.all([dense.head.objectness, dense.head.deltas, ...dense.features.pooled].map((t) => t.data()));
      } catch (error) {
        disposeStage(dense);
        throw error;
      }
    }
    const stage = this.selectStage(dense, false);
    try {
      const { batch, features, proposals } = stage;
      const { probabilities, boxRegression } = tf.tidy(() => {
        const pooled = multiScaleRoiAlign(
          features.pooled,
          proposals.map((p) => p.boxes),
          batch.imageSizes,
          this.settings.roi,
        );
        const out = this.boxHead(pooled);
        return { probabilities: tf.softmax(out.classLogits), boxRegression: out.boxRegression };
      });
      const probs = (await probabilities.data()) as Float32Array;
      const regression = (await boxRegression.data()) as Float32Array;
      probabilities.dispose();
      boxRegression.dispose();
      const k = this.settings.numClasses;
      let offset = 0;
      return proposals.map(({ boxes }, image) => {
        const count = boxes.length / 4;
        const result = postprocessDetections(
          probs.subarray(offset * k, (offset + count) * k),
          regression.subarray(offset * k * 4, (offset + count) * k * 4),
          boxes,
          k,
          batch.imageSizes[image],
          this.settings.roi,
        );
        offset += count;
        const original = resizeBoxes(result.boxes, batch.imageSizes[image], batch.originalSizes[image]);
        return Array.from(result.scores, (score, i) => ({
          box: [original[i * 4], original[i * 4 + 1], original[i * 4 + 2], original[i * 4 + 3]] as [
            number,
            number,
            number,
            number,
          ],
          label: result.labels[i],
          score,
        }));
      });
    } finally {
      disposeStage(stage);
    }
  }

  losses(images: readonly DetectorImage[], targets: readonly DetectorTarget[]): Record<string, tf.Scalar> {
    if (targets.length !== images.length) {
      throw new FedcxrError('invalid_target', `${images.length} images but ${targets.length} targets`);
    }
    targets.forEach((t, i) => {
      checkTarget(t, i, this.settings.numClasses);
    });
    if (!hasSyncReads()) {
      // Proposal selection, matching and RoIAlign read on the host inside the gradient tape (measured: bench/gpu).
      throw new FedcxrError(
        'backend_unavailable',
        `Faster R-CNN training cannot run on the ${tf.getBackend()} backend in Node: it reads tensors synchronously on the host, which tfjs-webgpu supports only in a browser; train with engine.backend wasm or tensorflow (predict works on webgpu)`,
      );
    }
    const stage = this.propose(images, true);
    const { batch, features, head, anchors, proposals } = stage;
    const gtBoxes = targets.map((t, i) => resizeBoxes(t.boxes, batch.originalSizes[i], batch.imageSizes[i]));
    const rpn = rpnLosses(head, anchors, gtBoxes, this.rpnMatcher, this.rpnSampler);
    const sampled = selectTrainingSamples(
      proposals.map((p) => p.boxes),
      gtBoxes,
      targets.map((t) => t.labels),
      this.roiMatcher,
      this.roiSampler,
    );
    const roi = tf.tidy(() => {
      const pooled = multiScaleRoiAlign(features.pooled, sampled.proposals, batch.imageSizes, this.settings.roi);
      const out = this.boxHead(pooled);
      return fastRcnnLoss(out.classLogits, out.boxRegression, sampled.labels, sampled.targets);
    });
    disposeStage(stage);
    return {
      loss_classifier: roi.lossClassifier,
      loss_box_reg: roi.lossBoxReg,
      loss_objectness: rpn.lossObjectness,
      loss_rpn_box_reg: rpn.lossRpnBoxReg,
    };
  }

  dispose(): void {
    for (const { variable } of this.allWeights().values()) variable.dispose();
    this.headWeights.clear();
  }
}

/**
 * x·W + b with its gradient written as plain products over explicit transposes: tfjs' own matMul gradient
 * asks for a transposed-A product (xᵀ·dy), which the wasm backend runs ~50× slower than a plain one; fc6's
 * weight gradient (512 × 12544 × 1024) dominated a training step through it.
 */
export const denseLayer = tf.customGrad(((
  x: tf.Tensor,
  weight: tf.Tensor,
  bias: tf.Tensor,
  save: (t: tf.Tensor[]) => void,
) => {
  save([x, weight]);
  return {
    value: tf.add(tf.matMul(x as tf.Tensor2D, weight as tf.Tensor2D), bias),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [input, w] = saved as tf.Tensor2D[];
      const dy2 = dy as tf.Tensor2D;
      return [tf.matMul(dy2, tf.transpose(w)), tf.matMul(tf.transpose(input), dy2), tf.sum(dy2, 0)];
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (
  x: tf.Tensor2D,
  weight: tf.Tensor2D,
  bias: tf.Tensor1D,
) => tf.Tensor2D;

/** False on backends whose synchronous reads fail outside a browser (webgpu). */
function hasSyncReads(): boolean {
  return tf.getBackend() !== 'webgpu';
}

function disposeStage(stage: {
  batch: { tensor: tf.Tensor };
  features: { owned: Map<string, tf.Tensor4D> };
  head: RpnHeadOutput;
}): void {
  stage.batch.tensor.dispose();
  for (const map of stage.features.owned.values()) map.dispose();
  stage.head.objectness.dispose();
  stage.head.deltas.dispose();
}

function checkTarget(target: DetectorTarget, index: number, numClasses: number): void {
  const n = target.boxes.length / 4;
  if (!Number.isInteger(n) || target.labels.length !== n) {
    throw new FedcxrError(
      'invalid_target',
      `target ${index}: ${target.boxes.length} box numbers for ${target.labels.length} labels`,
    );
  }
  for (let i = 0; i < n; i++) {
    const label = target.labels[i];
    if (!(label >= 1 && label < numClasses)) {
      throw new FedcxrError('invalid_target', `target ${index}: label ${label} outside 1..${numClasses - 1}`);
    }
    const [x1, y1, x2, y2] = target.boxes.subarray(i * 4, i * 4 + 4);
    if (!(x2 > x1 && y2 > y1)) {
      throw new FedcxrError(
        'invalid_target',
        `target ${index}: box ${i} [${x1}, ${y1}, ${x2}, ${y2}] has no positive area`,
      );
    }
  }
}

/**
 * Head settings for small CPU runs (`cxr demo`, `fed simulate`): fewer proposals and sampled RoIs and a
 * narrower box head than torchvision's defaults (2000/1000 proposals, 512/256 samples, 1024-wide head).
 */
export const COMPACT_HEADS = {
  rpn: {
    preNmsTopN: { training: 300, testing: 300 },
    postNmsTopN: { training: 100, testing: 100 },
    batchSizePerImage: 64,
  },
  roi: { batchSizePerImage: 64, representationSize: 128 },
} as const satisfies Pick<FasterRcnnOptions, 'rpn' | 'roi'>;

/** Registers 'faster_rcnn' in core's detector registry: `{backbone: 'resnet50_fpn', numClasses, ...}`. */
export function registerFasterRcnn(): void {
  if (detectors.has('faster_rcnn')) return;
  detectors.register(
    'faster_rcnn',
    (options) =>
      new FasterRcnn(backbones.build(options.backbone, options.backboneOptions ?? {}), options as FasterRcnnOptions),
    "torchvision's Faster R-CNN v1 (FPN backbones), in TensorFlow.js",
  );
}
