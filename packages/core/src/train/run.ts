/**
 * `cxr train` as a library call: config → engine → datasets → detector (from the registry) → training →
 * report. The loop itself (loop.ts) knows nothing of files or registries; this is the wiring.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FedcxrError, Rng } from '@fedcxr/base';
import type { EngineInfo } from '../engine/engine.js';
import { initEngine } from '../engine/engine.js';
import { type Detector, detectors } from '../model.js';
import { writeRunReport } from '../report/run-report.js';
import { readSafetensors } from '../safetensors.js';
import type { TrainConfig } from './config.js';
import { type DetectionDataset, openCocoDataset } from './dataset.js';
import { type TrainEvent, type TrainRunSummary, trainDetector, type ValidationDetail } from './loop.js';
import { registerTinyGridDetector } from './tiny-detector.js';

export interface RunTrainingOptions {
  resume?: boolean;
  onEvent?: (event: TrainEvent) => void;
  /** Log lines for people (engine choice, data sizes). */
  log?: (message: string) => void;
  signal?: AbortSignal;
  /** Write `<runDir>/report.html` after every epoch (default true). */
  report?: boolean;
  /** Called after every epoch; gets the datasets for pictures. */
  afterEpoch?: (
    run: TrainRunSummary,
    detail: ValidationDetail | undefined,
    data: { train: DetectionDataset; val?: DetectionDataset },
  ) => Promise<void>;
}

export interface TrainingOutcome extends TrainRunSummary {
  engine: EngineInfo;
  /** Path of report.html (absent when reports are off). */
  report?: string;
  trainImages: number;
  valImages: number;
}

/**
 * The detector options that make a detector draw its training-time randomness from `stepRandom`, which
 * the epoch engine reseeds from (seed, epoch, step) before every step: `permutation` (faster_rcnn's
 * balanced RPN/RoI samplers), `random` (any other draw), and `backboneOptions.random` (Swin's drop path).
 * A step's draws are then a function of the training state alone, so a resumed run is bit-identical.
 */
export function trainingRandomness(stepRandom: Rng): {
  random: () => number;
  permutation: (n: number) => Int32Array;
  backboneOptions: { random: Rng };
} {
  return {
    random: () => stepRandom.next(),
    permutation: (n) => stepRandom.permutation(n),
    backboneOptions: { random: stepRandom },
  };
}

/** Builds the configured detector with the run's random source wired in (see `trainingRandomness`). */
export function buildTrainingDetector(config: TrainConfig, classNames: readonly string[], stepRandom: Rng): Detector {
  registerTinyGridDetector();
  const numClasses = config.model.numClasses ?? classNames.length;
  if (numClasses !== classNames.length) {
    throw new FedcxrError(
      'invalid_config',
      `model.numClasses is ${numClasses} but the training data has ${classNames.length} categories (${classNames.join(', ')})`,
    );
  }
  const { backboneOptions, ...streams } = trainingRandomness(stepRandom);
  return detectors.build(config.model.detector, {
    backbone: config.model.backbone,
    numClasses,
    classes: ['__background__', ...classNames],
    // The seed also fixes the backbone's random initial weights (models-frcnn's backbones honour it).
    backboneOptions: { trainableLayers: config.model.trainableLayers, seed: config.seed, ...backboneOptions },
    minSize: config.model.minSize,
    maxSize: config.model.maxSize,
    seed: config.seed,
    ...streams,
    ...config.model.options,
  });
}

/** Loads starting weights (transfer learning): a model directory or a .safetensors file. */
export async function loadInitialWeights(detector: Detector, path: string): Promise<void> {
  let file = path;
  try {
    if ((await stat(path)).isDirectory()) file = join(path, 'weights.safetensors');
  } catch (error) {
    throw new FedcxrError('weights_unreadable', `cannot read: ${(error as Error).message}`, { file: path });
  }
  if (!file.endsWith('.safetensors')) {
    throw new FedcxrError(
      'weights_unreadable',
      'model.weights must be a model directory or a .safetensors file (import .pth files with `cxr weights import` first)',
      { file },
    );
  }
  const { tensors } = await readSafetensors(file);
  // Not strict: as in the seed, a COCO checkpoint's box predictor may not fit the new class count.
  detector.setWeights(tensors, { strict: false });
}

export async function runTraining(config: TrainConfig, options: RunTrainingOptions = {}): Promise<TrainingOutcome> {
  const engine = await initEngine(config.engine, 'training');
  options.log?.(`engine: ${engine.reason}`);
  const train = await openCocoDataset(config.data.train, { imageDir: config.data.imageDir, limit: config.data.limit });
  const val = config.data.val
    ? await openCocoDataset(config.data.val, {
        imageDir: config.data.imageDir,
        limit: config.data.limit,
        categories: train.categories,
      })
    : undefined;
  if (train.size === 0) throw new FedcxrError('bad_annotations', 'no training images', { file: config.data.train });
  options.log?.(
    `data: ${train.size} training images${val ? `, ${val.size} validation images` : ', no validation set'}`,
  );
  const stepRandom = new Rng(config.seed);
  const detector = buildTrainingDetector(
    config,
    train.categories.map((c) => c.name),
    stepRandom,
  );
  try {
    if (config.model.weights && !options.resume) await loadInitialWeights(detector, config.model.weights);
    const run = await trainDetector({
      config,
      detector,
      train,
      val,
      resume: options.resume,
      stepRandom,
      onEvent: options.onEvent,
      signal: options.signal,
      afterEpoch: async (summary, detail) => {
        if (options.report !== false) await writeRunReport(summary, { val });
        await options.afterEpoch?.(summary, detail, { train, val });
      },
    });
    return {
      ...run,
      engine,
      trainImages: train.size,
      valImages: val?.size ?? 0,
      report: options.report !== false ? join(run.runDir, 'report.html') : undefined,
    };
  } finally {
    detector.dispose();
  }
}
