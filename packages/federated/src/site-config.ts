/**
 * `site.yaml` for `cxr fed site --config site.yaml`, and the registry of local trainers it can name. The
 * detector trainer joins by registering itself: `localTrainers.register('frcnn', async (o) => ...)`.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { detectors, FedcxrError, openCocoDataset, Registry, registerTinyGridDetector } from '@fedcxr/core';
import { z } from 'zod';
import { readSiteData } from './data.js';
import { DetectorTrainer } from './detector-trainer.js';
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
});
export type SiteConfig = z.infer<typeof siteConfigSchema>;

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
  batchSize: z.number().int().positive().default(2),
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
    const detector = detectors.build(t.detector, {
      ...t.options,
      backbone: t.backbone,
      numClasses: classes.length + 1,
      classes: ['__background__', ...classes],
    });
    return new DetectorTrainer(detector, train, val, {
      learningRate: t.learningRate,
      momentum: t.momentum,
      batchSize: t.batchSize,
    });
  },
  'any registered Detector on the site COCO split (FedProx-aware), COCO metrics for evaluation',
);

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
  const trainer = await localTrainers.build(config.trainer.kind, { config: config.trainer, baseDir });
  return new SiteAgent({
    url: config.coordinator,
    siteId: config.siteId,
    token: config.token,
    trainer,
    ca: await read(config.ca),
    cert: await read(config.cert),
    key: await read(config.key),
    log,
  });
}
