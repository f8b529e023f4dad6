/**
 * torchvision's RoIHeads for boxes: proposal sampling for training (gt boxes added, Matcher 0.5/0.5,
 * 512 per image with 25 % positives), Fast R-CNN losses, and detection postprocessing (softmax, decode
 * with weights 10/10/5/5, clip, score > 0.05, remove small, per-class NMS 0.5, top 100).
 *
 * The parts: `MultiScaleRoIAlign` (the pooler, no parameters), `TwoMlpHead` (box head: fc6, fc7),
 * `FastRcnnPredictor` (cls_score, bbox_pred) and `RoIHeads`, which owns the last two under `box_head.` and
 * `box_predictor.`; either can be swapped. The host-side steps stay free functions (the ONNX runtime
 * shares them).
 */
import { FedcxrError, type NamedTensors, tf } from '@fedcxr/core';
import type { ParamStore } from '../backbones/params.js';
import { BoxCoder, batchedNms, boxIou, clipBoxesInPlace, removeSmallBoxes, selectBoxes } from '../ops/boxes.js';
import { BalancedSampler, BELOW_LOW_THRESHOLD, BETWEEN_THRESHOLDS, Matcher, type Permutation } from '../ops/matcher.js';
import { multiScaleRoiAlign } from '../ops/roi-align.js';
import { crossEntropy, smoothL1Elements } from './losses.js';
import { joinParameters, LeafPart, linearUniform, type NamedParameters, type Part } from './part.js';

const f = Math.fround;

export const ROI_BOX_CODER = new BoxCoder([10, 10, 5, 5]);

export interface RoiHeadOptions {
  scoreThresh: number;
  nmsThresh: number;
  detectionsPerImage: number;
}

export interface SampledProposals {
  /** Sampled proposals per image (in image order, by index as torchvision's where(pos | neg)). */
  proposals: Float32Array[];
  /** Class label per sampled proposal, all images concatenated (0 background). */
  labels: Int32Array;
  /** Box regression targets per sampled proposal, all images concatenated. */
  targets: Float32Array;
}

/** torchvision's RoIHeads.select_training_samples. */
export function selectTrainingSamples(
  proposals: readonly Float32Array[],
  gtBoxes: readonly Float32Array[],
  gtLabels: readonly Int32Array[],
  matcher: Matcher,
  sampler: BalancedSampler,
): SampledProposals {
  const sampledProposals: Float32Array[] = [];
  const labels: number[] = [];
  const targets: Float32Array[] = [];
  proposals.forEach((props, image) => {
    const gt = gtBoxes[image];
    const withGt = new Float32Array(props.length + gt.length);
    withGt.set(props);
    withGt.set(gt, props.length);
    const count = withGt.length / 4;
    const numGt = gt.length / 4;
    let matches: Int32Array;
    const imageLabels = new Int32Array(count);
    if (numGt === 0) {
      matches = new Int32Array(count);
    } else {
      matches = matcher.match(boxIou(gt, withGt), numGt, count);
      for (let i = 0; i < count; i++) {
        const m = matches[i];
        imageLabels[i] = m === BELOW_LOW_THRESHOLD ? 0 : m === BETWEEN_THRESHOLDS ? -1 : gtLabels[image][m];
        matches[i] = Math.max(m, 0);
      }
    }
    const { positive, negative } = sampler.sample(imageLabels);
    const keep: number[] = [];
    for (let i = 0; i < count; i++) if (positive[i] || negative[i]) keep.push(i);
    const kept = selectBoxes(withGt, keep);
    const gtOrZero = numGt === 0 ? new Float32Array(4) : gt;
    const matchedGt = selectBoxes(
      gtOrZero,
      keep.map((i) => matches[i]),
    );
    sampledProposals.push(kept);
    for (const i of keep) labels.push(imageLabels[i]);
    targets.push(ROI_BOX_CODER.encode(matchedGt, kept));
  });
  const allTargets = new Float32Array(targets.reduce((n, t) => n + t.length, 0));
  let offset = 0;
  for (const t of targets) {
    allTargets.set(t, offset);
    offset += t.length;
  }
  return { proposals: sampledProposals, labels: Int32Array.from(labels), targets: allTargets };
}

/** torchvision's fastrcnn_loss: cross entropy, and smooth-L1 (β = 1/9) on the true class's deltas / N. */
export function fastRcnnLoss(
  classLogits: tf.Tensor2D,
  boxRegression: tf.Tensor2D,
  labels: Int32Array,
  targets: Float32Array,
): { lossClassifier: tf.Scalar; lossBoxReg: tf.Scalar } {
  return tf.tidy(() => {
    const lossClassifier = crossEntropy(classLogits, labels);
    const [rows, numClasses] = classLogits.shape;
    // Only the true class's four deltas of each positive proposal count.
    const mask = new Float32Array(rows * numClasses * 4);
    const wanted = new Float32Array(rows * numClasses * 4);
    labels.forEach((label, i) => {
      if (label <= 0) return;
      for (let c = 0; c < 4; c++) {
        mask[(i * numClasses + label) * 4 + c] = 1;
        wanted[(i * numClasses + label) * 4 + c] = targets[i * 4 + c];
      }
    });
    const terms = smoothL1Elements(boxRegression, tf.tensor2d(wanted, [rows, numClasses * 4]), 1 / 9);
    const masked = tf.mul(terms, tf.tensor2d(mask, [rows, numClasses * 4]));
    const lossBoxReg = tf.div(tf.sum(masked), labels.length) as tf.Scalar;
    return { lossClassifier, lossBoxReg };
  });
}

export interface ImageDetections {
  boxes: Float32Array;
  scores: Float32Array;
  labels: Int32Array;
}

/**
 * torchvision's RoIHeads.postprocess_detections for one image (host arrays). `classSlots`: the
 * classifier's outputs per RoI (the background in slot 0, then the foreground classes).
 */
export function postprocessDetections(
  probabilities: Float32Array,
  boxRegression: Float32Array,
  proposals: Float32Array,
  classSlots: number,
  imageSize: readonly [number, number],
  options: RoiHeadOptions,
): ImageDetections {
  const count = proposals.length / 4;
  const decoded = clipBoxesInPlace(
    ROI_BOX_CODER.decode(boxRegression, proposals, classSlots),
    imageSize[0],
    imageSize[1],
  );
  const threshold = f(options.scoreThresh);
  const candidates: number[] = [];
  for (let i = 0; i < count; i++) {
    for (let c = 1; c < classSlots; c++) {
      if (probabilities[i * classSlots + c] > threshold) candidates.push(i * classSlots + c);
    }
  }
  let boxes = selectBoxes(decoded, candidates);
  let scores = Float32Array.from(candidates, (k) => probabilities[k]);
  let labels = Int32Array.from(candidates, (k) => k % classSlots);
  const big = removeSmallBoxes(boxes, 1e-2);
  boxes = selectBoxes(boxes, big);
  scores = Float32Array.from(big, (k) => scores[k]);
  labels = Int32Array.from(big, (k) => labels[k]);
  const keep = batchedNms(boxes, scores, labels, options.nmsThresh).slice(0, options.detectionsPerImage);
  return {
    boxes: selectBoxes(boxes, keep),
    scores: Float32Array.from(keep, (k) => scores[k]),
    labels: Int32Array.from(keep, (k) => labels[k]),
  };
}

/**
 * x·W + b with its gradient as two products with transposed operands (dy·Wᵀ, xᵀ·dy) and a column sum. Every
 * backend runs transposed operands without copies (torch: strided views; wasm: core's micro-kernels read
 * them through strides, and its XNNPACK fallback transposes first).
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
      return [tf.matMul(dy2, w, false, true), tf.matMul(input, dy2, true, false), tf.sum(dy2, 0)];
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (
  x: tf.Tensor2D,
  weight: tf.Tensor2D,
  bias: tf.Tensor1D,
) => tf.Tensor2D;

/** torchvision's MultiScaleRoIAlign: each box pooled from its FPN level (the LevelMapper), no parameters. */
export class MultiScaleRoIAlign {
  constructor(
    /** Backbone outputs it reads (torchvision: '0'…'3'). */
    readonly featureNames: readonly string[],
    readonly outputSize = 7,
    readonly samplingRatio = 2,
  ) {}

  /** The maps it reads, in level order. */
  select(features: ReadonlyMap<string, tf.Tensor4D>): tf.Tensor4D[] {
    return this.featureNames.map((name) => {
      const map = features.get(name);
      if (!map)
        throw new FedcxrError('internal', `the RoI pooler reads feature map "${name}", which the backbone lacks`);
      return map;
    });
  }

  /** [R, outputSize, outputSize, C] for the boxes of every image (in resized-image pixels), images in order. */
  apply(
    features: ReadonlyMap<string, tf.Tensor4D>,
    boxesPerImage: readonly Float32Array[],
    imageSizes: readonly (readonly [number, number])[],
  ): tf.Tensor4D {
    return multiScaleRoiAlign(this.select(features), boxesPerImage, imageSizes, {
      outputSize: this.outputSize,
      samplingRatio: this.samplingRatio,
    });
  }
}

/** What RoIHeads needs of a box head: pooled [R, s, s, C] features → [R, outFeatures]. */
export interface BoxHead extends Part {
  readonly outFeatures: number;
  apply(pooled: tf.Tensor4D): tf.Tensor2D;
}

/**
 * torchvision's TwoMLPHead: flatten (channel-major, as torch flattens NCHW, so fc6's weights apply
 * unchanged), fc6 + ReLU, fc7 + ReLU. Weights `fc6.*`, `fc7.*`, nn.Linear's init drawn from seed + 4…7.
 */
export class TwoMlpHead extends LeafPart implements BoxHead {
  constructor(
    readonly inChannels: number,
    readonly resolution: number,
    readonly outFeatures: number,
    options: { seed?: number } = {},
  ) {
    super();
    const seed = options.seed ?? 0;
    const pooledSize = inChannels * resolution * resolution;
    const rep = outFeatures;
    const p = this.params;
    p.add('fc6.weight', linearUniform([pooledSize, rep], pooledSize, seed + 4), 'linear', true);
    p.add('fc6.bias', linearUniform([rep], pooledSize, seed + 5), 'plain', true);
    p.add('fc7.weight', linearUniform([rep, rep], rep, seed + 6), 'linear', true);
    p.add('fc7.bias', linearUniform([rep], rep, seed + 7), 'plain', true);
  }

  apply(pooled: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => {
      const rois = pooled.shape[0];
      // No proposal survived (e.g. every box degenerate): the wasm backend's transpose divides by a zero
      // dimension, so answer the empty shape directly.
      if (rois === 0) return tf.zeros([0, this.outFeatures]) as tf.Tensor2D;
      const flat = tf.reshape(tf.transpose(pooled, [0, 3, 1, 2]), [rois, -1]) as tf.Tensor2D;
      const fc6 = tf.relu(dense(flat, this.params, 'fc6')) as tf.Tensor2D;
      return tf.relu(dense(fc6, this.params, 'fc7')) as tf.Tensor2D;
    });
  }
}

/** What RoIHeads needs of a box predictor: class logits and per-class box deltas for each RoI. */
export interface BoxPredictor extends Part {
  /** Input features per RoI (the box head's outFeatures). */
  readonly inFeatures: number;
  /** Foreground classes; the outputs have one slot more, the background (slot 0). */
  readonly numClasses: number;
  /** x: [R, inFeatures] → class logits [R, numClasses + 1] and box regression [R, 4 (numClasses + 1)]. */
  apply(x: tf.Tensor2D): { classLogits: tf.Tensor2D; boxRegression: tf.Tensor2D };
}

/**
 * torchvision's FastRCNNPredictor(in_channels, num_classes) for `numClasses` foreground classes: `cls_score`
 * and `bbox_pred` linears over numClasses + 1 slots (slot 0 the background; this constructor is the one
 * place the background is added to a class count). nn.Linear's init drawn from seed + 8…11.
 */
export class FastRcnnPredictor extends LeafPart implements BoxPredictor {
  /** Outputs per RoI of cls_score: the background and the foreground classes. */
  readonly classSlots: number;

  constructor(
    readonly inFeatures: number,
    readonly numClasses: number,
    options: { seed?: number } = {},
  ) {
    super();
    if (!Number.isInteger(numClasses) || numClasses < 1) {
      throw new FedcxrError(
        'invalid_config',
        `numClasses (foreground classes) must be an integer ≥ 1, got ${numClasses}`,
      );
    }
    const seed = options.seed ?? 0;
    const slots = numClasses + 1;
    this.classSlots = slots;
    const p = this.params;
    p.add('cls_score.weight', linearUniform([inFeatures, slots], inFeatures, seed + 8), 'linear', true);
    p.add('cls_score.bias', linearUniform([slots], inFeatures, seed + 9), 'plain', true);
    p.add('bbox_pred.weight', linearUniform([inFeatures, slots * 4], inFeatures, seed + 10), 'linear', true);
    p.add('bbox_pred.bias', linearUniform([slots * 4], inFeatures, seed + 11), 'plain', true);
  }

  apply(x: tf.Tensor2D): { classLogits: tf.Tensor2D; boxRegression: tf.Tensor2D } {
    return tf.tidy(() => {
      if (x.shape[0] === 0) {
        const k = this.classSlots;
        return { classLogits: tf.zeros([0, k]) as tf.Tensor2D, boxRegression: tf.zeros([0, 4 * k]) as tf.Tensor2D };
      }
      return { classLogits: dense(x, this.params, 'cls_score'), boxRegression: dense(x, this.params, 'bbox_pred') };
    });
  }
}

/**
 * Foreground classes of a state dict's box predictor (its cls_score rows less the background slot), or
 * undefined when it has none: the inverse of FastRcnnPredictor's count, for checkpoints.
 */
export function predictorNumClasses(weights: NamedTensors, prefix = 'roi_heads.box_predictor.'): number | undefined {
  const rows = weights.get(`${prefix}cls_score.weight`)?.shape[0];
  return rows === undefined ? undefined : rows - 1;
}

function dense(x: tf.Tensor2D, params: ParamStore, name: string): tf.Tensor2D {
  return denseLayer(x, params.get(`${name}.weight`) as tf.Tensor2D, params.get(`${name}.bias`) as tf.Tensor1D);
}

/** Every RoI-heads setting: postprocess (RoiHeadOptions), training sampling and the parts' sizes. */
export interface RoiSettings extends RoiHeadOptions {
  fgIouThresh: number;
  bgIouThresh: number;
  batchSizePerImage: number;
  positiveFraction: number;
  outputSize: number;
  samplingRatio: number;
  representationSize: number;
  /** Backbone outputs the RoI pooler reads (torchvision: '0'..'3'). */
  featureNames: string[];
}

/** The swappable parts of RoIHeads. */
export interface RoiHeadParts {
  boxRoiPool: MultiScaleRoIAlign;
  boxHead: BoxHead;
  boxPredictor: BoxPredictor;
}

/**
 * torchvision's RoIHeads (boxes): the pooler, the box head (`box_head.*`) and the predictor
 * (`box_predictor.*`), training-sample selection with its matcher and sampler, the Fast R-CNN losses and
 * the postprocess.
 */
export class RoIHeads implements Part {
  readonly boxRoiPool: MultiScaleRoIAlign;
  private parts: { boxHead: BoxHead; boxPredictor: BoxPredictor };
  private readonly matcher: Matcher;
  private readonly sampler: BalancedSampler;
  private readonly postprocessOptions: RoiHeadOptions;
  private readonly training: Pick<
    RoiSettings,
    'fgIouThresh' | 'bgIouThresh' | 'batchSizePerImage' | 'positiveFraction'
  >;

  constructor(
    parts: RoiHeadParts & {
      settings: Omit<RoiSettings, 'outputSize' | 'samplingRatio' | 'representationSize' | 'featureNames'>;
      /** Draws the balanced sampler's permutations (torch.randperm's role). */
      permutation: Permutation;
    },
  ) {
    const s = parts.settings;
    this.boxRoiPool = parts.boxRoiPool;
    this.postprocessOptions = {
      scoreThresh: s.scoreThresh,
      nmsThresh: s.nmsThresh,
      detectionsPerImage: s.detectionsPerImage,
    };
    this.training = {
      fgIouThresh: s.fgIouThresh,
      bgIouThresh: s.bgIouThresh,
      batchSizePerImage: s.batchSizePerImage,
      positiveFraction: s.positiveFraction,
    };
    this.matcher = new Matcher(s.fgIouThresh, s.bgIouThresh, false);
    this.sampler = new BalancedSampler(s.batchSizePerImage, s.positiveFraction, parts.permutation);
    this.parts = { boxHead: parts.boxHead, boxPredictor: parts.boxPredictor };
    RoIHeads.check(this.parts.boxHead, this.parts.boxPredictor);
  }

  get boxHead(): BoxHead {
    return this.parts.boxHead;
  }

  get boxPredictor(): BoxPredictor {
    return this.parts.boxPredictor;
  }

  /** Every setting, the parts' sizes included (what the ONNX runtime reads). */
  get settings(): RoiSettings {
    return {
      ...this.postprocessOptions,
      ...this.training,
      outputSize: this.boxRoiPool.outputSize,
      samplingRatio: this.boxRoiPool.samplingRatio,
      representationSize: this.parts.boxHead.outFeatures,
      featureNames: [...this.boxRoiPool.featureNames],
    };
  }

  /** Puts another box head in place (`model.roi_heads.box_head = …`); returns the previous one, not disposed. */
  setBoxHead(boxHead: BoxHead): BoxHead {
    RoIHeads.check(boxHead, this.parts.boxPredictor);
    const previous = this.parts.boxHead;
    this.parts = { ...this.parts, boxHead };
    return previous;
  }

  /** Puts another predictor in place (`model.roi_heads.box_predictor = …`); returns the previous one, not disposed. */
  setBoxPredictor(boxPredictor: BoxPredictor): BoxPredictor {
    RoIHeads.check(this.parts.boxHead, boxPredictor);
    const previous = this.parts.boxPredictor;
    this.parts = { ...this.parts, boxPredictor };
    return previous;
  }

  private static check(boxHead: BoxHead, boxPredictor: BoxPredictor): void {
    if (boxHead.outFeatures !== boxPredictor.inFeatures) {
      throw new FedcxrError(
        'invalid_config',
        `the box head gives ${boxHead.outFeatures} features per RoI but the predictor takes ${boxPredictor.inFeatures}`,
      );
    }
  }

  /** Pooler, box head and predictor on the proposals of every image (resized-image pixels). */
  apply(
    features: ReadonlyMap<string, tf.Tensor4D>,
    boxesPerImage: readonly Float32Array[],
    imageSizes: readonly (readonly [number, number])[],
  ): { classLogits: tf.Tensor2D; boxRegression: tf.Tensor2D } {
    return tf.tidy(() => {
      const pooled = this.boxRoiPool.apply(features, boxesPerImage, imageSizes);
      return this.parts.boxPredictor.apply(this.parts.boxHead.apply(pooled));
    });
  }

  /** torchvision's select_training_samples, with this part's matcher and sampler. */
  selectTrainingSamples(
    proposals: readonly Float32Array[],
    gtBoxes: readonly Float32Array[],
    gtLabels: readonly Int32Array[],
  ): SampledProposals {
    return selectTrainingSamples(proposals, gtBoxes, gtLabels, this.matcher, this.sampler);
  }

  /** postprocess_detections for one image; `classSlots` from the logits' width. */
  postprocess(
    probabilities: Float32Array,
    boxRegression: Float32Array,
    proposals: Float32Array,
    classSlots: number,
    imageSize: readonly [number, number],
  ): ImageDetections {
    return postprocessDetections(
      probabilities,
      boxRegression,
      proposals,
      classSlots,
      imageSize,
      this.postprocessOptions,
    );
  }

  parameters(): NamedParameters {
    return joinParameters(['box_head.', this.parts.boxHead], ['box_predictor.', this.parts.boxPredictor]);
  }

  dispose(): void {
    this.parts.boxHead.dispose();
    this.parts.boxPredictor.dispose();
  }
}
