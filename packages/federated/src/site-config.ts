/**
 * `site.yaml` for `cxr fed site --config site.yaml`, and the registry of local trainers it can name. The
 * detector trainer joins by registering itself: `localTrainers.register('frcnn', async (o) => ...)`.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import {
  augmentationConfigSchema,
  type Detector,
  detectors,
  engineConfigSchema,
  FedcxrError,
  initEngine,
  openCocoDataset,
  Registry,
  registerTinyGridDetector,
} from '@fedcxr/core';
import { z } from 'zod';
import { readSiteData } from './data.js';
import { DetectorTrainer, type DetectorTrainerOptions } from './detector-trainer.js';
import { siteIdSchema } from './protocol.js';
import { SiteAgent } from './site-agent.js';
import { mulberry32, TabularTrainer } from './tabular-trainer.js';
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

const detectorTrainerSchema = z.strictObject({
  kind: z.literal('detector'),
  /** A registered detector (`tiny_grid` here; Faster R-CNN once @fedcxr/models-frcnn registers it). */
  detector: z.string().min(1),
  backbone: z.string().default('tiny'),
  /** The site's COCO training and validation files (never leave the site). */
  train: z.string(),
  val: z.string().optional(),
  imageDir: z.string().optional(),
  learningRate: z.number().positive().default(0.01),
  momentum: z.number().min(0).max(1).default(0.9),
  nesterov: z.boolean().default(true),
  weightDecay: z.number().min(0).default(1e-4),
  clipGradNorm: z.number().positive().nullable().default(10),
  warmupSteps: z.number().int().min(0).default(50),
  /** Warm up over this many epochs of the site's own data instead (overrides warmupSteps; null: off). */
  warmupEpochs: z.number().min(0).nullable().default(null),
  /** lr × lrGamma at the start of each of these epochs (1-based, counted across rounds). */
  lrMilestones: z.array(z.number().int().positive()).default([]),
  lrGamma: z.number().gt(0).max(1).default(0.1),
  /** Keep the site's momentum buffers from round to round (they stay at the site). */
  momentumAcrossRounds: z.boolean().default(true),
  batchSize: z.number().int().positive().default(2),
  /** `cxr train`'s augmentation (null: none). */
  augmentation: augmentationConfigSchema.nullable().default(null),
  /** Detector input size (minSize = maxSize), as `model.minSize/maxSize` in a training config. */
  size: z.number().int().positive().optional(),
  /** Seed of the detector's own random draws (RPN/RoI sampling). */
  seed: z.number().int().min(0).default(1),
  options: z.record(z.string(), z.unknown()).default({}),
});

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
    const detector = buildSiteDetector(t, classes);
    return new DetectorTrainer(detector, train, val, detectorTrainerOptions(t));
  },
  'any registered Detector on the site COCO split (FedProx-aware), COCO metrics for evaluation',
);

export type DetectorTrainerConfig = z.input<typeof detectorTrainerSchema>;

/** The training recipe a `kind: detector` trainer section describes (also used for centralized baselines). */
export function detectorTrainerOptions(config: DetectorTrainerConfig): DetectorTrainerOptions {
  const t = detectorTrainerSchema.parse(config);
  return {
    learningRate: t.learningRate,
    momentum: t.momentum,
    nesterov: t.nesterov,
    weightDecay: t.weightDecay,
    clipGradNorm: t.clipGradNorm,
    warmupSteps: t.warmupSteps,
    warmupEpochs: t.warmupEpochs,
    milestones: t.lrMilestones,
    gamma: t.lrGamma,
    momentumAcrossRounds: t.momentumAcrossRounds,
    batchSize: t.batchSize,
    augmentation: t.augmentation,
  };
}

/** The detector a `kind: detector` trainer section describes (also used for centralized baselines). */
export function buildSiteDetector(config: DetectorTrainerConfig, classNames: readonly string[]): Detector {
  const t = detectorTrainerSchema.parse(config);
  // The detector's balanced samplers draw from a seeded stream, so a site's run is reproducible.
  const random = mulberry32(t.seed);
  const permutation = (n: number): Int32Array => {
    const out = Int32Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  };
  return detectors.build(t.detector, {
    ...t.options,
    backbone: t.backbone,
    numClasses: classNames.length,
    classes: ['__background__', ...classNames],
    backboneOptions: { seed: t.seed, ...(t.options.backboneOptions as object | undefined) },
    ...(t.size ? { minSize: t.size, maxSize: t.size } : {}),
    seed: t.seed,
    permutation,
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
