/**
 * bench/quality's configurations: one recipe drives both sides (torchvision_side.py reads it as JSON;
 * `oursConfig` turns it into fedcxr's `cxr train` config). The `seed` configuration takes its training
 * numbers from configs/seed-recipe.yaml, the file users get, so the two cannot drift apart.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface Recipe {
  name: string;
  seed: number;
  epochs: number;
  batchSize: number;
  threads?: number;
  /** Train on the first N training images only (smoke runs). */
  limit?: number;
  model: {
    backbone: 'resnet18_fpn' | 'resnet50_fpn';
    numClasses: number;
    minSize: number;
    maxSize: number;
    trainableLayers: number;
    heads: {
      rpn?: {
        preNmsTopN?: { training: number; testing: number };
        postNmsTopN?: { training: number; testing: number };
        batchSizePerImage?: number;
      };
      roi?: { batchSizePerImage?: number; representationSize?: number };
    };
  };
  data: { size: number; train: string; val: string; test: string };
  optimizer: { lr: number; momentum: number; nesterov: boolean; weightDecay: number; clipGradNorm: number | null };
  schedule: {
    warmupSteps: number;
    warmupFactor: number;
    type: 'step' | 'cosine' | 'constant';
    milestones: number[];
    gamma: number;
    minFactor: number;
  };
  augmentation: { rotationDegrees: number; brightness: number; contrast: number };
  /**
   * `fedcxr` (bench:quality --paired): the torchvision side takes fedcxr's epoch order, augmentation draws and
   * sampler permutations (bench/quality/fedcxr_draws.py), so both runs differ only by floating point.
   */
  draws?: 'fedcxr';
}

export type RecipeTemplate = Omit<Recipe, 'seed' | 'data'> & { imageSize: number };

const SGD = { momentum: 0.9, nesterov: true, weightDecay: 1e-4, clipGradNorm: null };
const SEED_AUGMENTATION = { rotationDegrees: 5, brightness: 0.1, contrast: 0.1 };
/** PRODUCT.md's CPU finding: ResNet-18-FPN from scratch learns at 256 px with these heads. */
const CPU_HEADS = {
  rpn: { preNmsTopN: { training: 1000, testing: 1000 }, postNmsTopN: { training: 500, testing: 500 } },
  roi: { batchSizePerImage: 128, representationSize: 256 },
};

export const CONFIGURATIONS: Record<string, RecipeTemplate> = {
  smoke: {
    name: 'smoke',
    epochs: 2,
    batchSize: 2,
    limit: 8,
    imageSize: 128,
    model: {
      backbone: 'resnet18_fpn',
      numClasses: 1,
      minSize: 128,
      maxSize: 128,
      trainableLayers: 5,
      heads: CPU_HEADS,
    },
    optimizer: { lr: 0.02, ...SGD },
    schedule: { warmupSteps: 2, warmupFactor: 0.001, type: 'cosine', milestones: [], gamma: 0.1, minFactor: 0 },
    augmentation: SEED_AUGMENTATION,
  },
  cpu: {
    name: 'cpu',
    epochs: 6,
    batchSize: 4,
    imageSize: 256,
    model: {
      backbone: 'resnet18_fpn',
      numClasses: 1,
      minSize: 256,
      maxSize: 256,
      trainableLayers: 5,
      heads: CPU_HEADS,
    },
    optimizer: { lr: 0.02, ...SGD },
    schedule: { warmupSteps: 100, warmupFactor: 0.001, type: 'cosine', milestones: [], gamma: 0.1, minFactor: 0 },
    augmentation: SEED_AUGMENTATION,
  },
  gpu: {
    name: 'gpu',
    epochs: 18,
    batchSize: 4,
    imageSize: 512,
    model: { backbone: 'resnet50_fpn', numClasses: 1, minSize: 512, maxSize: 512, trainableLayers: 5, heads: {} },
    optimizer: { lr: 0.02, ...SGD },
    schedule: { warmupSteps: 100, warmupFactor: 0.001, type: 'cosine', milestones: [], gamma: 0.1, minFactor: 0 },
    augmentation: SEED_AUGMENTATION,
  },
  /** configs/seed-recipe.yaml's numbers on a ResNet-50-FPN at 512 px, from the shared initial weights. */
  seed: seedRecipe(),
};

/** fedcxr's `cxr train` config for the recipe: the same numbers, in its own schema. */
export function oursConfig(recipe: Recipe, runsDir: string, weights: string, backend: string): Record<string, unknown> {
  return {
    name: 'ours',
    runsDir,
    seed: recipe.seed,
    epochs: recipe.epochs,
    batchSize: recipe.batchSize,
    model: {
      detector: 'faster_rcnn',
      backbone: recipe.model.backbone,
      minSize: recipe.model.minSize,
      maxSize: recipe.model.maxSize,
      trainableLayers: recipe.model.trainableLayers,
      weights,
      options: recipe.model.heads,
    },
    // Smoke runs already point at shortened annotation files (torchvision has no `limit`).
    data: { train: recipe.data.train, val: recipe.data.val, normalization: 'window' },
    optimizer: { type: 'sgd', ...recipe.optimizer },
    schedule: recipe.schedule,
    augmentation: { ...recipe.augmentation, scale: null, horizontalFlip: false },
    sampler: { repeatFactorThreshold: null, negativesRatio: null, shuffle: true },
    validation: { everyEpochs: 1, metric: 'AP', mode: 'max' },
    engine: { backend, ...(recipe.threads ? { threads: recipe.threads } : {}) },
  };
}

/** The `seed` configuration: configs/seed-recipe.yaml's epochs, batch, optimizer, schedule and augmentation. */
function seedRecipe(): RecipeTemplate {
  const file = YAML.parse(readFileSync(path.join(repoRoot, 'configs/seed-recipe.yaml'), 'utf8')) as {
    epochs: number;
    batchSize: number;
    model: { trainableLayers: number };
    optimizer: { lr: number; momentum: number; nesterov: boolean; weightDecay: number };
    schedule: RecipeTemplate['schedule'];
    augmentation: RecipeTemplate['augmentation'];
  };
  return {
    name: 'seed',
    epochs: file.epochs,
    batchSize: file.batchSize,
    imageSize: 512,
    model: {
      backbone: 'resnet50_fpn',
      numClasses: 1,
      minSize: 512,
      maxSize: 512,
      trainableLayers: file.model.trainableLayers,
      heads: {},
    },
    optimizer: { ...file.optimizer, clipGradNorm: null },
    schedule: { ...file.schedule, minFactor: file.schedule.minFactor ?? 0 },
    augmentation: {
      rotationDegrees: file.augmentation.rotationDegrees,
      brightness: file.augmentation.brightness,
      contrast: file.augmentation.contrast,
    },
  };
}
