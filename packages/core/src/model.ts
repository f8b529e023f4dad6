/**
 * The detector zoo's contracts (torchvision's composition, timm's registry). A Detector is assembled
 * from registered parts; a Backbone turns an image batch into named feature maps. Tensors are NHWC
 * (TensorFlow.js layout); weight names follow torchvision's state_dict keys so checkpoints import 1:1.
 */

import type { Preprocessing } from './model-dir.js';
import { Registry } from './registry.js';
import type { NamedTensors } from './tensors.js';
import type { tf } from './tf.js';

/** Where one output of a backbone sits: its name, its stride against the input and its channel count. */
export interface FeatureSpec {
  name: string;
  stride: number;
  channels: number;
}

export interface Backbone {
  readonly name: string;
  /** Output feature maps in order (e.g. FPN: '0','1','2','3','pool'). */
  readonly outputs: readonly FeatureSpec[];
  /** images: [N, H, W, 3], already normalized. Returns one [N, h, w, C] map per output name. */
  apply(images: tf.Tensor4D, training: boolean): Map<string, tf.Tensor4D>;
  /** All variables (trainable or frozen), keyed by torchvision state_dict name. */
  variables(): Map<string, tf.Variable>;
  /**
   * Sets weights from torchvision-layout host tensors (OIHW convs, [out, in] linears), keyed like
   * variables(); keys outside this backbone are ignored. strict: every variable must be given.
   */
  loadWeights?(weights: NamedTensors, options?: { strict?: boolean; file?: string }): WeightLoadReport;
  /**
   * How a variable (full key) converts to torchvision's layout: 'conv' (HWIO ↔ OIHW), 'linear' ([in, out] ↔
   * [out, in]) or 'plain'. Needed where rank does not tell (Swin's [169, heads] bias tables are 'plain').
   */
  layoutOf?(name: string): 'conv' | 'linear' | 'plain' | undefined;
  /** Current weights in torchvision layout (what loadWeights takes and safetensors stores). */
  getWeights?(): NamedTensors;
  dispose?(): void;
}

/** What a weight load did: names set, variables not given, and given names this part does not have. */
export interface WeightLoadReport {
  loaded: string[];
  missing: string[];
  unexpected: string[];
  /** Derived buffers accepted but not stored (num_batches_tracked, relative_position_index). */
  ignored: string[];
}

export interface BackboneOptions {
  /** How many of the last ResNet stages train (torchvision's trainable_layers, 0–5). */
  trainableLayers?: number;
  /** Extra, backbone-specific settings from config. */
  [setting: string]: unknown;
}

/** One image given to a detector: grey or RGB values in [0, 1], row-major HWC. */
export interface DetectorImage {
  pixels: Float32Array;
  height: number;
  width: number;
  channels: 1 | 3;
}

/** Ground truth for one image, in that image's pixels: boxes as x1, y1, x2, y2 (4 numbers per box). */
export interface DetectorTarget {
  boxes: Float32Array;
  /** 1-based class indices (0 is background, as in torchvision). */
  labels: Int32Array;
}

/** One detection in the ORIGINAL image's pixels (x1, y1, x2, y2), with a 1-based label. */
export interface Detection {
  box: [number, number, number, number];
  label: number;
  score: number;
}

export interface Detector {
  readonly architecture: string;
  /** Class names; index 0 is '__background__'. */
  readonly classes: readonly string[];
  /**
   * Detections per image, best first. Images are batched as torchvision batches them (zero-padded to the
   * largest, a multiple of 32), so an image's result can depend on its batch companions, as in torchvision.
   */
  predict(images: readonly DetectorImage[]): Promise<Detection[][]>;
  /**
   * Training losses for a batch (call inside tf.variableGrads / optimizer.minimize), keyed as torchvision's:
   * Faster R-CNN gives loss_classifier, loss_box_reg, loss_objectness and loss_rpn_box_reg.
   */
  losses(images: readonly DetectorImage[], targets: readonly DetectorTarget[]): Record<string, tf.Scalar>;
  trainableVariables(): tf.Variable[];
  /** Every weight (trainable and frozen), torchvision names. */
  getWeights(): NamedTensors;
  setWeights(weights: NamedTensors, options?: { strict?: boolean }): void;
  dispose(): void;
}

export interface DetectorOptions {
  backbone: string;
  /**
   * Foreground classes, as in configs (`model.numClasses`) and on the CLI (`--num-classes`); the background
   * is not counted. The classifier's extra background slot (torchvision's num_classes = numClasses + 1) is
   * the detector's business, added in one place (models-frcnn: FastRcnnPredictor).
   */
  numClasses: number;
  /** Class names, '__background__' first (numClasses + 1 names), as Detector.classes. */
  classes?: string[];
  backboneOptions?: BackboneOptions;
  [setting: string]: unknown;
}

/**
 * A published weights file a registry entry knows (torchvision's `Weights` enum member, timm's
 * pretrained_cfg): where it is, what it fits and how its inputs were prepared.
 */
export interface PretrainedWeights {
  /** Download address; the file name carries the first hex digits of its SHA-256 (torchvision's check_hash). */
  url: string;
  description: string;
  /** The backbone it fits (`cxr weights import --arch`). */
  arch: string;
  /** 'detector': a whole detector's state_dict; 'imagenet': a classification network whose body is the backbone. */
  layout: 'detector' | 'imagenet';
  /** Its box predictor's class names, '__background__' first (detector layout). */
  classes?: readonly string[];
  /** How its training inputs were prepared. */
  preprocessing: Preprocessing;
  /** Published metrics (torchvision's `meta['_metrics']`), for the record. */
  metrics?: Readonly<Record<string, number>>;
}

export const backbones = new Registry<BackboneOptions, Backbone, PretrainedWeights>('backbone');
export const detectors = new Registry<DetectorOptions, Detector, PretrainedWeights>('detector');
