/**
 * The training config, and inside it THE training recipe: the one schema both `cxr train` and the federated
 * site trainer (`kind: detector` in site.yaml) validate, so a recipe written for one runs unchanged in the
 * other. Its defaults ARE the seed study's recipe (PRODUCT.md): Faster R-CNN, SGD with momentum 0.9 and
 * Nesterov, lr 0.003, batch 4, 18 epochs, small rotation and brightness/contrast jitter, best epoch chosen on
 * validation AP. Everything a run needs is here, so the config file plus the data reproduce a run (and
 * `state.json` records the resolved config beside each checkpoint). Recipe sections are strict: an unknown
 * or misspelt field is an error naming it, not silently ignored.
 */
import { z } from 'zod';
import { parseConfig } from '../config.js';
import { engineConfigSchema } from '../engine/schema.js';

const positive = () => z.number().positive();
const fraction = () => z.number().min(0).max(1);

export const optimizerConfigSchema = z
  .strictObject({
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
  })
  .superRefine((optimizer, ctx) => {
    if (optimizer.nesterov && optimizer.momentum <= 0)
      ctx.addIssue({
        code: 'custom',
        path: ['nesterov'],
        message: 'Nesterov momentum requires momentum > 0 (as in PyTorch); set nesterov: false for plain SGD',
      });
    optimizer.noDecayPatterns.forEach((pattern, i) => {
      try {
        new RegExp(pattern);
      } catch (error) {
        ctx.addIssue({ code: 'custom', path: ['noDecayPatterns', i], message: (error as Error).message });
      }
    });
  });

export const scheduleConfigSchema = z.strictObject({
  /** Linear warm-up from lr·warmupFactor to lr over the first warmupSteps optimizer steps (torchvision's recipe). */
  warmupSteps: z.number().int().min(0).default(100),
  /**
   * Warm up over this many epochs of the training data instead (overrides warmupSteps; null: off), as
   * torchvision warms up over the first epoch. Federated sites count epochs across rounds, so a site holding
   * a tenth of the data warms up over the same epochs (rounds) as a centralized run, not over ten times as many.
   */
  warmupEpochs: z.number().min(0).nullable().default(null),
  warmupFactor: z.number().gt(0).max(1).default(0.001),
  type: z.enum(['step', 'cosine', 'constant']).default('step'),
  /**
   * step: multiply lr by gamma at the start of each of these epochs (1-based; federated: counted across
   * rounds, (round − 1) × local epochs + epoch, so a federation decays where a centralized run does).
   */
  milestones: z.array(z.number().int().positive()).default([12, 16]),
  gamma: z.number().gt(0).max(1).default(0.1),
  /** cosine: the lr decays to lr·minFactor at the end of the recipe's `epochs`. */
  minFactor: fraction().default(0),
});

/** The backbone a config gets when it names none: the seed study's (torchvision's default detector). */
export const DEFAULT_BACKBONE = 'resnet50_fpn';

export const modelConfigSchema = z.object({
  detector: z.string().min(1).default('faster_rcnn'),
  backbone: z.string().min(1).default(DEFAULT_BACKBONE),
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

/**
 * The intensity normalization presets (`@fedcxr/dicom`'s PRESETS; a test keeps the two lists equal): `seed`
 * (the seed study's window + log + simplest color balance), `window`, `scb`, `minmax`.
 */
export const NORMALIZATION_PRESETS = ['seed', 'window', 'scb', 'minmax'] as const;
export type NormalizationPreset = (typeof NORMALIZATION_PRESETS)[number];

/** Older spellings still read: `seed-log` is the seed preset (whose log transform the name spelt out). */
const LEGACY_NORMALIZATIONS: Readonly<Record<string, NormalizationPreset>> = { 'seed-log': 'seed' };

/** A normalization name, old spellings mapped to their preset. */
export const normalizationSchema = z
  .enum([...NORMALIZATION_PRESETS, ...(Object.keys(LEGACY_NORMALIZATIONS) as ['seed-log'])])
  .transform((name): NormalizationPreset => LEGACY_NORMALIZATIONS[name] ?? (name as NormalizationPreset));

/** A normalization name read from a file (a model card, an importer's record): its preset, or undefined. */
export function normalizationPreset(value: unknown): NormalizationPreset | undefined {
  const parsed = normalizationSchema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}

export const dataConfigSchema = z.object({
  /** COCO annotations of the training and validation images (`cxr dataset import` + `split` write them). */
  train: z.string().min(1),
  val: z.string().min(1).optional(),
  /** Folder the images' file_name are relative to; the annotations file's folder when absent. */
  imageDir: z.string().optional(),
  /** The intensity normalization the images were made with; recorded in the model card so prediction repeats it. */
  normalization: normalizationSchema.default('seed'),
  /** Use only the first N images of each split (quick runs, smoke tests). */
  limit: z.number().int().positive().optional(),
});

export const augmentationConfigSchema = z.strictObject({
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

export const samplerConfigSchema = z.strictObject({
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

export const validationConfigSchema = z.strictObject({
  everyEpochs: z.number().int().positive().default(1),
  /** Metric that picks the `best` checkpoint (the seed kept its best epoch by AP). */
  metric: z.string().min(1).default('AP'),
  mode: z.enum(['max', 'min']).default('max'),
  /** How many validation images the report shows predictions for. */
  reportImages: z.number().int().min(0).default(8),
});

export const checkpointConfigSchema = z.strictObject({
  /** Also save `last` every N optimizer steps inside an epoch (0: only at epoch ends), so a kill loses little. */
  everySteps: z.number().int().min(0).default(0),
});

/** Augmentation off: what `augmentation: null` means. */
export const NO_AUGMENTATION = Object.freeze({
  rotationDegrees: 0,
  brightness: 0,
  contrast: 0,
  scale: null,
  horizontalFlip: false,
}) satisfies z.infer<typeof augmentationConfigSchema>;

/**
 * THE training recipe: everything about how a detector is trained, shared by `cxr train` (the top level of
 * its config) and the federated site trainer (the `trainer:` section of site.yaml). The epoch engine
 * (engine.ts) runs it.
 */
export const recipeShape = {
  /** Epochs of the whole run (federated: rounds × local epochs; there it only sizes the cosine schedule). */
  epochs: z.number().int().positive().default(18),
  batchSize: z.number().int().positive().default(4),
  optimizer: optimizerConfigSchema.prefault({}),
  schedule: scheduleConfigSchema.prefault({}),
  /** null: no augmentation (the same as every amount at 0). */
  augmentation: z
    .union([z.null(), augmentationConfigSchema])
    .prefault({})
    .transform((value) => value ?? { ...NO_AUGMENTATION }),
  sampler: samplerConfigSchema.prefault({}),
};
export const recipeSchema = z.strictObject(recipeShape);

export const trainConfigSchema = z.object({
  name: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/, 'use letters, digits, ".", "_" or "-"')
    .default('train'),
  /** Runs go to `<runsDir>/<name>/`. */
  runsDir: z.string().default('runs'),
  seed: z.number().int().min(0).max(0xffffffff).default(0),
  model: modelConfigSchema.prefault({}),
  data: dataConfigSchema,
  ...recipeShape,
  validation: validationConfigSchema.prefault({}),
  checkpoint: checkpointConfigSchema.prefault({}),
  engine: engineConfigSchema,
});

export type TrainConfig = z.infer<typeof trainConfigSchema>;
export type TrainConfigInput = z.input<typeof trainConfigSchema>;
export type TrainingRecipe = z.infer<typeof recipeSchema>;
export type TrainingRecipeInput = z.input<typeof recipeSchema>;
export type OptimizerConfig = TrainConfig['optimizer'];
export type ScheduleConfig = TrainConfig['schedule'];
export type AugmentationConfig = TrainConfig['augmentation'];
export type SamplerConfig = TrainConfig['sampler'];

/** Validates a training recipe alone; errors name the field and the problem. */
export function parseRecipe(value: unknown, source = 'recipe'): TrainingRecipe {
  return parseConfig(recipeSchema, value, source);
}

/** Validates a training config (from a file, flags, or code); errors name the field and the problem. */
export function parseTrainConfig(value: unknown, source = 'config'): TrainConfig {
  return parseConfig(trainConfigSchema, value, source);
}
