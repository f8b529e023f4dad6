/**
 * `site.yaml` for `cxr fed site --config site.yaml`, and the registry of local trainers it can name. The
 * detector trainer joins by registering itself: `localTrainers.register('frcnn', async (o) => ...)`.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import {
  DEFAULT_BACKBONE,
  type Detector,
  detectors,
  engineConfigSchema,
  FedcxrError,
  initEngine,
  openCocoDataset,
  Registry,
  Rng,
  registerTinyGridDetector,
  trainingRandomness,
} from '@fedcxr/core';
import { z } from 'zod';
import { readSiteData } from './data.js';
import {
  DetectorTrainer,
  type DetectorTrainerOptions,
  federatedRecipeShape,
  type LegacyRecipeFields,
  recipeOf,
  withLegacyRecipeFields,
} from './detector-trainer.js';
import { siteIdSchema } from './protocol.js';
import { SiteAgent } from './site-agent.js';
import { TabularTrainer } from './tabular-trainer.js';
import type { LocalTrainer } from './trainer.js';

export const siteConfigSchema = z.strictObject({
  siteId: siteIdSchema,
  token: z.string().min(16),
  /** http(s)://host:port of the coordinator. */
  coordinator: z.string().url(),
  /** CA certificate (PEM file) that signed the coordinator's certificate. */
  ca: z.string().optional(),
  /** Client certificate and key (PEM files) for mutual TLS. */
  cert: z.string().optional(),
  key: z.string().optional(),
  trainer: z.looseObject({ kind: z.string().min(1) }),
  /**
   * Reconnection back-off, also at start: a coordinator that is down is retried (first after
   * `initialDelayMs`, doubling up to `maxDelayMs`), `startAttempts` times (absent: until it answers).
   * A refusal (token, certificate) ends the agent at once.
   */
  retry: z
    .strictObject({
      initialDelayMs: z.number().int().min(10).default(500),
      maxDelayMs: z.number().int().min(10).default(10_000),
      startAttempts: z.number().int().min(1).optional(),
    })
    .prefault({}),
  /** The tensor engine the site trains on (`auto` picks the best available). */
  engine: engineConfigSchema.optional(),
  /**
   * Modules imported before the trainer is built, so their detectors and backbones register by name
   * (e.g. `@fedcxr/models-frcnn` for `detector: faster_rcnn`).
   */
  plugins: z.array(z.string().min(1)).default([]),
});
export type SiteConfig = z.infer<typeof siteConfigSchema>;
/** A site config as written (defaults not yet applied). */
export type SiteConfigInput = z.input<typeof siteConfigSchema>;

export interface TrainerBuildOptions {
  /** The `trainer:` section of site.yaml (its own fields are the trainer's to validate). */
  config: Record<string, unknown> & { kind: string };
  /** Directory of the config file: relative paths in it resolve from here. */
  baseDir: string;
}

export const localTrainers = new Registry<TrainerBuildOptions, Promise<LocalTrainer>>('local trainer');

const tabularTrainerSchema = z.strictObject({
  kind: z.literal('tabular'),
  /** Site data file (see data.ts: features, classes, train, validation). */
  data: z.string(),
  hidden: z.number().int().min(0).default(0),
  learningRate: z.number().positive().default(0.1),
  batchSize: z.number().int().positive().default(32),
});

localTrainers.register(
  'tabular',
  async ({ config, baseDir }) => {
    const parsed = tabularTrainerSchema.safeParse(config);
    if (!parsed.success)
      throw new FedcxrError(
        'invalid_config',
        `trainer: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      );
    const t = parsed.data;
    const data = await readSiteData(resolve(baseDir, t.data));
    return new TabularTrainer(
      { features: data.features, classes: data.classes, hidden: t.hidden },
      data.train,
      data.validation,
      {
        learningRate: t.learningRate,
        batchSize: t.batchSize,
      },
    );
  },
  'softmax regression / small MLP on feature vectors (tfjs), FedProx-aware',
);

/** `kind: detector`: the detector, the site's data, and `cxr train`'s recipe (see detector-trainer.ts). */
const detectorSectionSchema = z.strictObject({
  kind: z.literal('detector'),
  /** A registered detector (`tiny_grid` here; Faster R-CNN once @fedcxr/models-frcnn registers it). */
  detector: z.string().min(1),
  /** A registered backbone, as `model.backbone` in a training config (and with its default). */
  backbone: z.string().min(1).default(DEFAULT_BACKBONE),
  /** The site's COCO training and validation files (never leave the site). */
  train: z.string(),
  val: z.string().optional(),
  imageDir: z.string().optional(),
  /** `cxr train`'s recipe: epochs, batchSize, optimizer, schedule, augmentation, sampler; momentumAcrossRounds. */
  ...federatedRecipeShape,
  /** Detector input size (minSize = maxSize), as `model.minSize/maxSize` in a training config. */
  size: z.number().int().positive().optional(),
  /** Seed of the detector's own random draws (RPN/RoI sampling). */
  seed: z.number().int().min(0).default(1),
  options: z.record(z.string(), z.unknown()).default({}),
});
/** The old flat recipe names (`learningRate`, `lrMilestones`, …) are still read, with a deprecation warning. */
const detectorTrainerSchema = withLegacyRecipeFields(detectorSectionSchema);

localTrainers.register(
  'detector',
  async ({ config, baseDir }) => {
    const parsed = detectorTrainerSchema.safeParse(config);
    if (!parsed.success)
      throw new FedcxrError(
        'invalid_config',
        `trainer: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      );
    const t = parsed.data;
    registerTinyGridDetector();
    const imageDir = t.imageDir ? resolve(baseDir, t.imageDir) : undefined;
    const train = await openCocoDataset(resolve(baseDir, t.train), { imageDir });
    const val = t.val
      ? await openCocoDataset(resolve(baseDir, t.val), { imageDir, categories: train.categories })
      : undefined;
    const classes = train.categories.map((c) => c.name);
    // The detector's training draws come from a stream the trainer reseeds before every step.
    const stepRandom = new Rng(t.seed);
    const detector = buildSiteDetector(t, classes, stepRandom);
    return new DetectorTrainer(detector, train, val, { ...recipeOf(t), stepRandom });
  },
  'any registered Detector on the site COCO split (FedProx-aware), COCO metrics for evaluation',
);

export type DetectorTrainerConfig = z.input<typeof detectorSectionSchema> & LegacyRecipeFields;

/** The training recipe a `kind: detector` trainer section describes (also used for centralized baselines). */
export function detectorTrainerOptions(config: DetectorTrainerConfig): DetectorTrainerOptions {
  return recipeOf(detectorTrainerSchema.parse(config));
}

/**
 * The detector a `kind: detector` trainer section describes (also used for centralized baselines). Its
 * training-time draws (RPN/RoI sampling, drop path) come from `stepRandom`; pass the same Rng to the
 * DetectorTrainer so it reseeds it before every step.
 */
export function buildSiteDetector(
  config: DetectorTrainerConfig,
  classNames: readonly string[],
  stepRandom?: Rng,
): Detector {
  const t = detectorTrainerSchema.parse(config);
  const { backboneOptions, ...streams } = trainingRandomness(stepRandom ?? new Rng(t.seed));
  return detectors.build(t.detector, {
    ...t.options,
    backbone: t.backbone,
    numClasses: classNames.length,
    classes: ['__background__', ...classNames],
    backboneOptions: { seed: t.seed, ...backboneOptions, ...(t.options.backboneOptions as object | undefined) },
    ...(t.size ? { minSize: t.size, maxSize: t.size } : {}),
    seed: t.seed,
    ...streams,
  });
}

/** Builds the agent a site.yaml describes (not yet connected). */
export async function siteAgentFromConfig(
  config: SiteConfig,
  configPath: string,
  log?: (message: string) => void,
): Promise<SiteAgent> {
  const baseDir = dirname(resolve(configPath));
  const read = async (path: string | undefined) => {
    if (!path) return undefined;
    try {
      return await readFile(resolve(baseDir, path), 'utf8');
    } catch (error) {
      throw new FedcxrError('config_unreadable', `cannot read ${path}: ${(error as Error).message}`, {
        file: configPath,
      });
    }
  };
  for (const plugin of config.plugins) {
    try {
      await import(plugin);
    } catch (error) {
      throw new FedcxrError('plugin_unavailable', `cannot import plugin ${plugin}: ${(error as Error).message}`, {
        file: configPath,
      });
    }
  }
  if (config.engine) await initEngine(config.engine, 'training');
  const trainer = await localTrainers.build(config.trainer.kind, { config: config.trainer, baseDir });
  return new SiteAgent({
    url: config.coordinator,
    siteId: config.siteId,
    token: config.token,
    trainer,
    ca: await read(config.ca),
    cert: await read(config.cert),
    key: await read(config.key),
    retry: config.retry,
    log,
  });
}
