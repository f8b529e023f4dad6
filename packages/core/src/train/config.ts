/**
 * The training config. Its defaults ARE the seed study's recipe (PRODUCT.md): Faster R-CNN, SGD with
 * momentum 0.9 and Nesterov, lr 0.003, batch 4, 18 epochs, small rotation and brightness/contrast jitter,
 * best epoch chosen on validation AP. Everything a run needs is here, so the config file plus the data
 * reproduce a run (and `state.json` records the resolved config beside each checkpoint).
 */
import { z } from 'zod';
import { parseConfig } from '../config.js';
import { engineConfigSchema } from '../engine/schema.js';

const positive = () => z.number().positive();
const fraction = () => z.number().min(0).max(1);

export const optimizerConfigSchema = z.object({
  type: z.literal('sgd').default('sgd'),
  lr: positive().default(0.003),
  momentum: fraction().default(0.9),
  nesterov: z.boolean().default(true),
  /** L2 weight decay added to the gradient, as PyTorch's SGD(weight_decay) does. */
  weightDecay: z.number().min(0).default(1e-4),
  /** Clip the global gradient norm to this value before each update (torch.nn.utils.clip_grad_norm_); null: off. */
  clipGradNorm: z.number().positive().nullable().default(null),
  /**
   * Variables whose name matches one of these regular expressions get no weight decay (normalization
   * layers: decaying a BN scale towards 0 only fights the normalization). Frozen variables are never updated.
   */
  noDecayPatterns: z
    .array(z.string())
    .default(['(^|[./])bn\\d*([./]|$)', 'downsample[./]1([./]|$)', '(^|[./])norm\\d*([./]|$)', 'batch_?norm']),
});

export const scheduleConfigSchema = z.object({
  /** Linear warm-up from lr·warmupFactor to lr over the first warmupSteps optimizer steps (torchvision's recipe). */
  warmupSteps: z.number().int().min(0).default(100),
  warmupFactor: z.number().gt(0).max(1).default(0.001),
  type: z.enum(['step', 'cosine', 'constant']).default('step'),
  /** step: multiply lr by gamma at the start of each of these epochs (1-based). */
  milestones: z.array(z.number().int().positive()).default([12, 16]),
  gamma: z.number().gt(0).max(1).default(0.1),
  /** cosine: the lr decays to lr·minFactor at the last step. */
  minFactor: fraction().default(0),
});

export const modelConfigSchema = z.object({
  detector: z.string().min(1).default('faster_rcnn'),
  backbone: z.string().min(1).default('resnet50_fpn'),
  /** Foreground classes (background not counted); taken from the training data's categories when absent. */
  numClasses: z.number().int().positive().optional(),
  /** torchvision's transform: shorter side resized to minSize, longer side at most maxSize. */
  minSize: z.number().int().positive().default(800),
  maxSize: z.number().int().positive().default(1333),
  /** torchvision's trainable_layers: how many ResNet stages train (the rest, and all BN, stay frozen). */
  trainableLayers: z.number().int().min(0).max(5).default(3),
  /** A model directory (or weights file) to start from: transfer learning as in the seed. */
  weights: z.string().optional(),
  /** Extra detector-specific settings, passed through to the detector factory. */
  options: z.record(z.string(), z.unknown()).default({}),
});

export const dataConfigSchema = z.object({
  /** COCO annotations of the training and validation images (`cxr dataset import` + `split` write them). */
  train: z.string().min(1),
  val: z.string().min(1).optional(),
  /** Folder the images' file_name are relative to; the annotations file's folder when absent. */
  imageDir: z.string().optional(),
  /** The intensity normalization the images were made with; recorded in the model card so prediction repeats it. */
  normalization: z.string().default('seed-log'),
  /** Use only the first N images of each split (quick runs, smoke tests). */
  limit: z.number().int().positive().optional(),
});

export const augmentationConfigSchema = z.object({
  /** Rotation angle drawn uniformly in ±rotationDegrees (seed: small rotation, ±5°). 0 disables. */
  rotationDegrees: z.number().min(0).max(45).default(5),
  /** Brightness factor drawn in 1 ± brightness, contrast factor in 1 ± contrast (torchvision ColorJitter semantics). */
  brightness: fraction().default(0.1),
  contrast: fraction().default(0.1),
  /** Optional scale jitter: zoom factor drawn in [min, max] about the image center. Off by default. */
  scale: z.tuple([positive(), positive()]).nullable().default(null),
  /**
   * Horizontal flip is OFF by default on purpose: chest X-rays have laterality (the heart sits on the
   * patient's left), and findings such as cardiac hypertrophy or aortic curvature are side-specific;
   * flipping would teach the model anatomically impossible images.
   */
  horizontalFlip: z.boolean().default(false),
});

export const samplerConfigSchema = z.object({
  /**
   * Repeat-factor sampling (LVIS, Detectron2): an image is repeated r = max over its classes of
   * max(1, sqrt(t / f_c)) times per epoch, f_c = fraction of training images containing class c.
   * null: off (the seed's recipe).
   */
  repeatFactorThreshold: z.number().gt(0).max(1).nullable().default(null),
  /** Negatives (images without boxes) kept per epoch, as a ratio to positive images; null: all of them. */
  negativesRatio: z.number().min(0).nullable().default(null),
  shuffle: z.boolean().default(true),
});

export const validationConfigSchema = z.object({
  everyEpochs: z.number().int().positive().default(1),
  /** Metric that picks the `best` checkpoint (the seed kept its best epoch by AP). */
  metric: z.string().min(1).default('AP'),
  mode: z.enum(['max', 'min']).default('max'),
  /** How many validation images the report shows predictions for. */
  reportImages: z.number().int().min(0).default(8),
});

export const checkpointConfigSchema = z.object({
  /** Also save `last` every N optimizer steps inside an epoch (0: only at epoch ends), so a kill loses little. */
  everySteps: z.number().int().min(0).default(0),
});

export const trainConfigSchema = z.object({
  name: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/, 'use letters, digits, ".", "_" or "-"')
    .default('train'),
  /** Runs go to `<runsDir>/<name>/`. */
  runsDir: z.string().default('runs'),
  seed: z.number().int().min(0).max(0xffffffff).default(0),
  epochs: z.number().int().positive().default(18),
  batchSize: z.number().int().positive().default(4),
  model: modelConfigSchema.prefault({}),
  data: dataConfigSchema,
  optimizer: optimizerConfigSchema.prefault({}),
  schedule: scheduleConfigSchema.prefault({}),
  augmentation: augmentationConfigSchema.prefault({}),
  sampler: samplerConfigSchema.prefault({}),
  validation: validationConfigSchema.prefault({}),
  checkpoint: checkpointConfigSchema.prefault({}),
  engine: engineConfigSchema,
});

export type TrainConfig = z.infer<typeof trainConfigSchema>;
export type TrainConfigInput = z.input<typeof trainConfigSchema>;
export type OptimizerConfig = TrainConfig['optimizer'];
export type ScheduleConfig = TrainConfig['schedule'];
export type AugmentationConfig = TrainConfig['augmentation'];
export type SamplerConfig = TrainConfig['sampler'];

/** Validates a training config (from a file, flags, or code); errors name the field and the problem. */
export function parseTrainConfig(value: unknown, source = 'config'): TrainConfig {
  return parseConfig(trainConfigSchema, value, source);
}
