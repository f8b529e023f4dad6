/**
 * Faster R-CNN (torchvision's fasterrcnn_*_fpn, v1) in TensorFlow.js ops, composed as torchvision's
 * GeneralizedRCNN: a transform (GeneralizedRcnnTransform), the backbone (any registered Backbone), the
 * RegionProposalNetwork (AnchorGenerator + RpnHead) and RoIHeads (MultiScaleRoIAlign → TwoMlpHead →
 * FastRcnnPredictor). Each part owns its parameters under its torchvision name, so a head or predictor can
 * be swapped (`replacePart`, `withPredictor`) and the weights are one named state dict (getWeights /
 * setWeights, torchvision's keys and layouts). Dense math runs as tfjs ops (so gradients flow for
 * training); proposal selection, matching, sampling and NMS run on the host in float32 so they decide
 * exactly as torchvision's CPU kernels.
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
  IMAGENET_MEAN,
  IMAGENET_STD,
  type NamedTensors,
  TORCHVISION_PREPROCESSING,
  tf,
} from '@fedcxr/core';
import { z } from 'zod';
import { type Permutation, randomPermutation } from '../ops/matcher.js';
import { FASTER_RCNN_WEIGHTS } from '../weights/known.js';
import {
  backboneParameters,
  disposeParameters,
  loadStateDict,
  type NamedParameters,
  prefixed,
  stateDict,
} from './part.js';
import {
  type BoxHead,
  type BoxPredictor,
  FastRcnnPredictor,
  fastRcnnLoss,
  MultiScaleRoIAlign,
  RoIHeads,
  type RoiSettings,
  TwoMlpHead,
} from './roi-heads.js';
import {
  AnchorGenerator,
  RegionProposalNetwork,
  RpnHead,
  type RpnHeadOutput,
  type RpnHeadPart,
  type RpnSettings,
} from './rpn.js';
import { GeneralizedRcnnTransform, type TransformOptions } from './transform.js';

export { denseLayer } from './roi-heads.js';

/** Every setting of the detector, with torchvision's fasterrcnn_resnet50_fpn defaults. */
export interface FasterRcnnSettings {
  /** Foreground classes (the background is not counted). */
  numClasses: number;
  /** Class names, '__background__' first. */
  classes: string[];
  transform: TransformOptions;
  rpn: RpnSettings;
  roi: RoiSettings;
}

/** Parts that replace the ones built from the settings (torchvision's FasterRCNN keyword arguments). */
export interface FasterRcnnParts {
  rpnHead?: RpnHeadPart;
  boxHead?: BoxHead;
  /** With a predictor given, numClasses must agree with its numClasses. */
  boxPredictor?: BoxPredictor;
}

/** The parts `replacePart` swaps, by their torchvision module path. */
export interface ReplaceableParts {
  'rpn.head': RpnHeadPart;
  'roi_heads.box_head': BoxHead;
  'roi_heads.box_predictor': BoxPredictor;
}

export interface FasterRcnnOptions extends DetectorOptions {
  minSize?: number;
  maxSize?: number;
  imageMean?: readonly [number, number, number];
  imageStd?: readonly [number, number, number];
  rpn?: Partial<FasterRcnnSettings['rpn']>;
  roi?: Partial<FasterRcnnSettings['roi']>;
  /** Draws the balanced samplers' permutations (torch.randperm's role); tests inject a fixed one. */
  permutation?: Permutation;
  /** Seed for the head initialization. */
  seed?: number;
  /** Parts to use instead of the default ones (torchvision's rpn_head=, box_head=, box_predictor=). */
  parts?: FasterRcnnParts;
}

/** The settings `options` and `backbone` make (numClasses: foreground classes; classes: '__background__' first). */
export function fasterRcnnSettings(options: FasterRcnnOptions, backbone: Backbone): FasterRcnnSettings {
  if (!Number.isInteger(options.numClasses) || options.numClasses < 1) {
    throw new FedcxrError(
      'invalid_config',
      `numClasses must be an integer ≥ 1 (foreground classes; the background is not counted), got ${options.numClasses}`,
    );
  }
  const classes = classNamesFor(options.numClasses, options.classes);
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

/** Class names for `numClasses` foreground classes: `names` ('__background__' first) checked, or defaults. */
export function classNamesFor(numClasses: number, names?: readonly string[]): string[] {
  const classes = names
    ? [...names]
    : ['__background__', ...Array.from({ length: numClasses }, (_, i) => `class_${i + 1}`)];
  if (classes.length - 1 !== numClasses) {
    throw new FedcxrError(
      'invalid_config',
      `classes has ${classes.length} names ('__background__' first) for ${numClasses} foreground classes`,
    );
  }
  return classes;
}

export class FasterRcnn implements Detector {
  readonly architecture: string;
  readonly transform: GeneralizedRcnnTransform;
  readonly rpn: RegionProposalNetwork;
  readonly roiHeads: RoIHeads;
  private classNames: string[];
  private readonly seed: number;

  constructor(
    readonly backbone: Backbone,
    options: FasterRcnnOptions,
  ) {
    const settings = fasterRcnnSettings(options, backbone);
    this.architecture = `fasterrcnn_${backbone.name}`;
    this.classNames = settings.classes;
    this.seed = options.seed ?? 0;
    const channels = backbone.outputs[0].channels;
    if (backbone.outputs.some((o) => o.channels !== channels)) {
      throw new FedcxrError(
        'invalid_config',
        `backbone ${backbone.name}: all outputs need the same channel count for the RPN`,
      );
    }
    const { rpn, roi } = settings;
    const parts = options.parts ?? {};
    const { numClasses } = settings;
    if (parts.boxPredictor && parts.boxPredictor.numClasses !== numClasses) {
      throw new FedcxrError(
        'invalid_config',
        `the given box predictor has ${parts.boxPredictor.numClasses} classes but numClasses says ${numClasses}`,
      );
    }
    // One permutation stream for both samplers, drawn RPN first (torchvision's order).
    const permutation = options.permutation ?? randomPermutation();
    const seed = { seed: this.seed };
    const anchorGenerator = new AnchorGenerator(rpn.anchorSizes, rpn.aspectRatios);
    this.transform = new GeneralizedRcnnTransform(settings.transform);
    this.rpn = new RegionProposalNetwork({
      anchorGenerator,
      head: parts.rpnHead ?? new RpnHead(channels, anchorGenerator.numAnchorsPerLocation()[0], seed),
      settings: rpn,
      permutation,
    });
    const boxHead = parts.boxHead ?? new TwoMlpHead(channels, roi.outputSize, roi.representationSize, seed);
    this.roiHeads = new RoIHeads({
      boxRoiPool: new MultiScaleRoIAlign(roi.featureNames, roi.outputSize, roi.samplingRatio),
      boxHead,
      boxPredictor: parts.boxPredictor ?? new FastRcnnPredictor(boxHead.outFeatures, numClasses, seed),
      settings: roi,
      permutation,
    });
  }

  /** Class names, '__background__' first. */
  get classes(): readonly string[] {
    return this.classNames;
  }

  /** Foreground classes (the predictor's). */
  get numClasses(): number {
    return this.roiHeads.boxPredictor.numClasses;
  }

  /** Every setting, read from the parts (what the ONNX export records). */
  get settings(): FasterRcnnSettings {
    return {
      numClasses: this.numClasses,
      classes: [...this.classNames],
      transform: this.transform.options,
      rpn: this.rpn.settings,
      roi: this.roiHeads.settings,
    };
  }

  /**
   * Every parameter by torchvision state_dict key: `backbone.*`, `rpn.head.*`, `roi_heads.box_head.*`,
   * `roi_heads.box_predictor.*`, in that order (the order of trainableVariables and of checkpoints).
   */
  parameters(): NamedParameters {
    const all = backboneParameters(this.backbone);
    for (const [key, p] of prefixed('rpn.', this.rpn.parameters())) all.set(key, p);
    for (const [key, p] of prefixed('roi_heads.', this.roiHeads.parameters())) all.set(key, p);
    return all;
  }

  trainableVariables(): tf.Variable[] {
    return [...this.parameters().values()].map((p) => p.variable).filter((v) => v.trainable);
  }

  getWeights(): NamedTensors {
    return stateDict(this.parameters());
  }

  setWeights(weights: NamedTensors, options: { strict?: boolean } = {}): void {
    loadStateDict(this.parameters(), weights, { strict: options.strict, owner: this.architecture });
  }

  /**
   * Swaps one part for another, as torchvision users assign `model.roi_heads.box_predictor = …`; the old
   * part is disposed unless `keepOld`. A predictor of another class count takes `classes`
   * ('__background__' first; default names otherwise). Trainable variables change: build the optimizer after.
   */
  replacePart<K extends keyof ReplaceableParts>(
    path: K,
    part: ReplaceableParts[K],
    options: { keepOld?: boolean; classes?: readonly string[] } = {},
  ): this {
    let old: { dispose(): void };
    if (path === 'rpn.head') old = this.rpn.setHead(part as RpnHeadPart);
    else if (path === 'roi_heads.box_head') old = this.roiHeads.setBoxHead(part as BoxHead);
    else if (path === 'roi_heads.box_predictor') {
      const predictor = part as BoxPredictor;
      const same = predictor.numClasses === this.numClasses ? this.classNames : undefined;
      const classes = classNamesFor(predictor.numClasses, options.classes ?? same);
      old = this.roiHeads.setBoxPredictor(predictor);
      this.classNames = classes;
    } else throw new FedcxrError('usage', `no replaceable part "${String(path)}"`);
    if (!options.keepOld && old !== part) old.dispose();
    return this;
  }

  /**
   * Transfer learning (torchvision's `FastRCNNPredictor(in_features, num_classes)` recipe): a freshly
   * initialized predictor for `numClasses` foreground classes replaces the current one; every other
   * weight stays as it is. `classes`: the new names, '__background__' first.
   */
  withPredictor(numClasses: number, options: { classes?: readonly string[]; seed?: number } = {}): this {
    const predictor = new FastRcnnPredictor(this.roiHeads.boxHead.outFeatures, numClasses, {
      seed: options.seed ?? this.seed,
    });
    return this.replacePart('roi_heads.box_predictor', predictor, { classes: options.classes });
  }

  /** Transform, backbone and RPN head: device work only, no host read. */
  private denseStage(images: readonly DetectorImage[], training: boolean) {
    const batch = this.transform.batch(images);
    const owned = this.backbone.apply(batch.tensor, training);
    const all = this.backbone.outputs.map((o) => {
      const map = owned.get(o.name);
      if (!map) throw new FedcxrError('internal', `backbone ${this.backbone.name} gave no output "${o.name}"`);
      return map;
    });
    const head = this.rpn.applyHead(all);
    return { batch, features: { all, owned }, head };
  }

  /** Proposal selection on the host (reads the RPN head's outputs). */
  private selectStage(stage: ReturnType<FasterRcnn['denseStage']>, training: boolean) {
    const { batch, features, head } = stage;
    const [, batchHeight, batchWidth] = batch.tensor.shape;
    const { anchors, proposals } = this.rpn.propose(
      head,
      [batchHeight, batchWidth],
      features.all.map((m) => [m.shape[1], m.shape[2]] as [number, number]),
      batch.imageSizes,
      training,
    );
    return { batch, features, head, anchors, proposals };
  }

  /** Runs transform, backbone, RPN and returns everything the box stage needs (caller disposes). */
  private propose(images: readonly DetectorImage[], training: boolean) {
    return this.selectStage(this.denseStage(images, training), training);
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
        const pooled = this.roiHeads.boxRoiPool.select(dense.features.owned);
        await Promise.all([dense.head.objectness, dense.head.deltas, ...pooled].map((t) => t.data()));
      } catch (error) {
        disposeStage(dense);
        throw error;
      }
    }
    const stage = this.selectStage(dense, false);
    try {
      const { batch, features, proposals } = stage;
      const { probabilities, boxRegression } = tf.tidy(() => {
        const out = this.roiHeads.apply(
          features.owned,
          proposals.map((p) => p.boxes),
          batch.imageSizes,
        );
        return { probabilities: tf.softmax(out.classLogits), boxRegression: out.boxRegression };
      });
      // The classifier's slots (background + foreground), from the predictor's output.
      const k = probabilities.shape[1];
      const probs = (await probabilities.data()) as Float32Array;
      const regression = (await boxRegression.data()) as Float32Array;
      probabilities.dispose();
      boxRegression.dispose();
      let offset = 0;
      return proposals.map(({ boxes }, image) => {
        const count = boxes.length / 4;
        const result = this.roiHeads.postprocess(
          probs.subarray(offset * k, (offset + count) * k),
          regression.subarray(offset * k * 4, (offset + count) * k * 4),
          boxes,
          k,
          batch.imageSizes[image],
        );
        offset += count;
        const original = this.transform.toOriginal(result.boxes, batch, image);
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
      checkTarget(t, i, this.numClasses);
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
    const gtBoxes = targets.map((t, i) => this.transform.toResized(t.boxes, batch, i));
    // RPN first: it draws from the shared permutation stream before the RoI sampler, as in torchvision.
    const rpn = this.rpn.losses(head, anchors, gtBoxes);
    const sampled = this.roiHeads.selectTrainingSamples(
      proposals.map((p) => p.boxes),
      gtBoxes,
      targets.map((t) => t.labels),
    );
    const roi = tf.tidy(() => {
      const out = this.roiHeads.apply(features.owned, sampled.proposals, batch.imageSizes);
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
    if (this.backbone.dispose) this.backbone.dispose();
    else disposeParameters(backboneParameters(this.backbone));
    this.rpn.dispose();
    this.roiHeads.dispose();
  }
}

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

/** A target's boxes have positive area and its labels name foreground classes 1…numClasses. */
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
    if (!(label >= 1 && label <= numClasses)) {
      throw new FedcxrError('invalid_target', `target ${index}: label ${label} outside 1..${numClasses}`);
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

const count = z.number().int().min(0);
const fraction = z.number().min(0).max(1);
const trainTest = z.object({ training: count, testing: count });
const rgb = z.tuple([z.number(), z.number(), z.number()]);

/**
 * faster_rcnn's options as its registry entry validates them (FasterRcnnOptions); settings it does not
 * name pass through. numClasses counts the foreground classes.
 */
export const fasterRcnnOptionsSchema = z.looseObject({
  backbone: z.string().min(1),
  numClasses: z.number().int().min(1),
  classes: z.array(z.string()).optional(),
  backboneOptions: z.looseObject({}).optional(),
  minSize: z.number().int().positive().optional(),
  maxSize: z.number().int().positive().optional(),
  imageMean: rgb.optional(),
  imageStd: rgb.optional(),
  rpn: z
    .looseObject({
      anchorSizes: z.array(z.array(z.number().positive())).optional(),
      aspectRatios: z.array(z.array(z.number().positive())).optional(),
      preNmsTopN: trainTest.optional(),
      postNmsTopN: trainTest.optional(),
      nmsThresh: z.number().optional(),
      scoreThresh: z.number().optional(),
      minSize: z.number().optional(),
      fgIouThresh: z.number().optional(),
      bgIouThresh: z.number().optional(),
      batchSizePerImage: count.optional(),
      positiveFraction: fraction.optional(),
    })
    .optional(),
  roi: z
    .looseObject({
      scoreThresh: z.number().optional(),
      nmsThresh: z.number().optional(),
      detectionsPerImage: count.optional(),
      fgIouThresh: z.number().optional(),
      bgIouThresh: z.number().optional(),
      batchSizePerImage: count.optional(),
      positiveFraction: fraction.optional(),
      outputSize: z.number().int().positive().optional(),
      samplingRatio: count.optional(),
      representationSize: z.number().int().positive().optional(),
      featureNames: z.array(z.string()).min(1).optional(),
    })
    .optional(),
  permutation: z.custom<Permutation>((v) => typeof v === 'function', 'a function n → permutation').optional(),
  seed: z.number().optional(),
  parts: z.custom<FasterRcnnParts>((v) => typeof v === 'object' && v !== null, 'an object of parts').optional(),
});

// The schema and the options interface describe the same thing: this fails to compile when they drift.
fasterRcnnOptionsSchema satisfies z.ZodType<FasterRcnnOptions>;

/**
 * Registers 'faster_rcnn' in core's detector registry: `{backbone: 'resnet50_fpn', numClasses, ...}`, with its
 * options schema, its known weights (torchvision's COCO checkpoint) and its preprocessing.
 */
export function registerFasterRcnn(): void {
  if (detectors.has('faster_rcnn')) return;
  detectors.register(
    'faster_rcnn',
    (options) =>
      new FasterRcnn(backbones.build(options.backbone, options.backboneOptions ?? {}), options as FasterRcnnOptions),
    {
      description: "torchvision's Faster R-CNN v1 (FPN backbones), in TensorFlow.js",
      options: fasterRcnnOptionsSchema,
      weights: FASTER_RCNN_WEIGHTS,
      preprocessing: TORCHVISION_PREPROCESSING,
      aliases: ['fasterrcnn'],
    },
  );
}
