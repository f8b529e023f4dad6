/**
 * `cxr train`'s run around the epoch engine (engine.ts): the seed's recipe (SGD-Nesterov, warm-up then
 * step/cosine, batch 4, augmentation moving boxes with pixels) run by `runEpochs`, with validation every
 * epoch (loss + COCO metrics from the evaluator), `best` and `last` checkpoints written atomically, and
 * exact resumption: a checkpoint saves the engine's position, and `--resume` restarts the engine there.
 *
 * Determinism: see engine.ts — every random draw comes from a stream derived from (seed, purpose, epoch,
 * position), validation's detector draws from (seed, 'validation', epoch, batch), so the run is a pure
 * function of the config and the data on the cpu backend, and a run resumed from a mid-epoch checkpoint
 * produces the same weights as one never stopped.
 */
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { deriveSeed, FedcxrError, type Rng, writeJsonAtomic } from '@fedcxr/base';
import type { CocoResult } from '../coco.js';
import { COCO_STAT_NAMES, type CocoEvalResult, evaluateCoco, precisionRecallCurve } from '../eval/coco-eval.js';
import { froc } from '../eval/froc.js';
import { detectionsToCocoResults } from '../eval/results.js';
import type { Detection, Detector, DetectorImage } from '../model.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../model-dir.js';
import { tf } from '../tf.js';
import {
  type CheckpointCard,
  pointCheckpoint,
  pruneSnapshots,
  readSnapshot,
  type Snapshot,
  writeJsonl,
  writeSnapshot,
} from './checkpoint.js';
import { type NormalizationPreset, normalizationPreset, type TrainConfig } from './config.js';
import type { DetectionDataset } from './dataset.js';
import { createOptimizer, type EnginePosition, positionAtEpoch, runEpochs } from './engine.js';

const VERSION = '0.1.0';

/** One line of `log.jsonl`: what an epoch did. */
export interface EpochRecord {
  epoch: number;
  steps: number;
  images: number;
  lr: number;
  seconds: number;
  /** Mean training losses over the epoch (each named loss and their sum, `loss`). */
  train: Record<string, number>;
  /** Validation: mean losses, `loss`, and COCO metrics (AP, AP50, … ARl) when validated this epoch. */
  val?: Record<string, number>;
  perCategory?: { id: number; name: string; AP: number; AP50: number }[];
  best?: boolean;
}

/** Curves and sample predictions of one validation, kept for the report. */
export interface ValidationDetail {
  epoch: number;
  pr: { id: number; name: string; recall: number[]; precision: number[] }[];
  /** FROC (IoU ≥ 0.5 hits, LUNA16 operating points): the curve and the sensitivity at each FP rate. */
  froc: { fpRates: number[]; sensitivities: number[]; score: number; fpsPerImage: number[]; sensitivity: number[] };
  /** Detections per validation image (original pixels), for the first `reportImages` images. */
  samples: { index: number; imageId: number; detections: Detection[]; boxes: number[]; labels: number[] }[];
  results: CocoResult[];
}

/** `state.json`: the engine's position (epoch, step, loss sums) plus the run's history and best epoch. */
export interface TrainState extends EnginePosition {
  format: 'fedcxr-train-state';
  version: 1;
  optimizerIterations: number;
  history: EpochRecord[];
  best: { epoch: number; metric: string; value: number; tag: string } | null;
  config: TrainConfig;
}

export type TrainEvent =
  | { type: 'epoch-start'; epoch: number; epochs: number; steps: number; startStep: number }
  | { type: 'step'; epoch: number; step: number; steps: number; lr: number; losses: Record<string, number> }
  | { type: 'validation-start'; epoch: number; images: number }
  | { type: 'epoch-end'; record: EpochRecord }
  | { type: 'checkpoint'; kind: 'last' | 'best'; dir: string };

export interface TrainRunOptions {
  config: TrainConfig;
  detector: Detector;
  train: DetectionDataset;
  val?: DetectionDataset;
  /** Where the run lives (default `<config.runsDir>/<config.name>`). */
  runDir?: string;
  /** Continue from `<runDir>/checkpoints/last.json`. */
  resume?: boolean;
  /** The detector's random source, reseeded before every step (pass the same Rng the detector draws from). */
  stepRandom?: Rng;
  onEvent?: (event: TrainEvent) => void;
  /** Stops after the current step (a checkpoint is written first when `stopCheckpoint` is set). */
  signal?: AbortSignal;
  /** Called after each epoch with the run so far (the report hooks in here). */
  afterEpoch?: (run: TrainRunSummary, detail: ValidationDetail | undefined) => Promise<void>;
}

export interface TrainRunSummary {
  runDir: string;
  history: EpochRecord[];
  best: TrainState['best'];
  config: TrainConfig;
  classes: readonly string[];
  stepsDone: number;
}

export async function trainDetector(options: TrainRunOptions): Promise<TrainRunSummary> {
  const { config, detector, train, val } = options;
  const runDir = options.runDir ?? join(config.runsDir, config.name);
  await mkdir(runDir, { recursive: true });
  const variables = detector.trainableVariables();
  const slotNames = variables.map((_, i) => `momentum.${i}`);
  const optimizer = createOptimizer(config.optimizer);
  const logFile = join(runDir, 'log.jsonl');
  // Every optimizer step's losses and learning rate, one line each (bench:quality compares runs step by step).
  const stepsFile = join(runDir, 'steps.jsonl');

  let state: TrainState = {
    format: 'fedcxr-train-state',
    version: 1,
    ...positionAtEpoch(train, config, config.seed, 0),
    optimizerIterations: 0,
    history: [],
    best: null,
    config,
  };
  if (options.resume) {
    const snapshot = await readSnapshot<TrainState>(runDir, 'last');
    if (!snapshot) {
      throw new FedcxrError('no_checkpoint', 'nothing to resume: no checkpoints/last.json', { file: runDir });
    }
    if (snapshot.state.format !== 'fedcxr-train-state') {
      throw new FedcxrError('bad_checkpoint', 'not a fedcxr training state', {
        file: join(snapshot.dir, 'state.json'),
      });
    }
    detector.setWeights(snapshot.weights, { strict: true });
    optimizer.setSlots(snapshot.optimizerSlots);
    optimizer.checkSlots(variables, slotNames);
    optimizer.iterations = snapshot.state.optimizerIterations;
    state = { ...snapshot.state, config };
    await writeJsonl(logFile, state.history);
    await writeJsonl(stepsFile, await stepsBefore(stepsFile, state.globalStep));
  } else {
    await writeJsonl(logFile, []);
    await writeJsonl(stepsFile, []);
  }
  await writeJsonAtomic(join(runDir, 'config.json'), config);

  const snapshotNow = async (extra: { metrics?: Record<string, number> } = {}): Promise<string> => {
    const snapshot: Snapshot<TrainState> = {
      weights: detector.getWeights(),
      optimizerSlots: await optimizer.getSlots(),
      card: modelCard(config, detector, train, state, extra.metrics ?? {}),
      state: { ...state, optimizerIterations: optimizer.iterations },
    };
    const tag = snapshotTag(state);
    await writeSnapshot(runDir, tag, snapshot);
    return tag;
  };

  try {
    await runEpochs({
      detector,
      data: train,
      recipe: config,
      seed: config.seed,
      optimizer,
      // The engine advances the state's position in place, so every snapshot saves where training stands.
      position: state,
      stepRandom: options.stepRandom,
      hooks: {
        epochStart: ({ epoch, steps, startStep }) =>
          options.onEvent?.({ type: 'epoch-start', epoch, epochs: config.epochs, steps, startStep }),
        afterStep: async ({ epoch, step, steps, lr, losses, last }) => {
          options.onEvent?.({ type: 'step', epoch, step, steps, lr, losses });
          // The engine has already counted this step in globalStep.
          await appendFile(
            stepsFile,
            `${JSON.stringify({ globalStep: state.globalStep - 1, epoch: epoch + 1, step, lr, losses })}\n`,
          );
          if (last) return; // the epoch end checkpoints (and honours a stop request)
          const stopping = options.signal?.aborted === true;
          const periodic = config.checkpoint.everySteps > 0 && state.globalStep % config.checkpoint.everySteps === 0;
          if (periodic || stopping) {
            const tag = await snapshotNow();
            await pointCheckpoint(runDir, 'last', tag);
            await pruneSnapshots(runDir);
            options.onEvent?.({ type: 'checkpoint', kind: 'last', dir: join(runDir, 'checkpoints', tag) });
          }
          if (stopping) throw stopped(epoch, step);
        },
        epochEnd: async ({ epoch, steps, images, lr, train: losses, seconds }) => {
          // Validate, log, checkpoint (the position is already at the next epoch).
          const record: EpochRecord = { epoch: epoch + 1, steps, images, lr, seconds, train: losses };
          let detail: ValidationDetail | undefined;
          const validateNow = val && ((epoch + 1) % config.validation.everyEpochs === 0 || epoch + 1 === config.epochs);
          if (val && validateNow) {
            options.onEvent?.({ type: 'validation-start', epoch, images: val.size });
            const started = performance.now();
            const validation = await validate(detector, val, config, epoch, options.stepRandom);
            record.seconds += (performance.now() - started) / 1000;
            record.val = validation.metrics;
            record.perCategory = validation.perCategory;
            detail = validation.detail;
          }
          const metricValue = pickMetric(record, config.validation.metric);
          const improved =
            metricValue !== undefined &&
            (state.best === null ||
              (config.validation.mode === 'max' ? metricValue > state.best.value : metricValue < state.best.value));
          if (improved) record.best = true;
          state.history.push(record);
          const tag = snapshotTag(state);
          if (improved && metricValue !== undefined) {
            state.best = { epoch: epoch + 1, metric: config.validation.metric, value: metricValue, tag };
          } else if (!val) {
            // Without validation data, "best" is simply the latest epoch.
            state.best = { epoch: epoch + 1, metric: 'epoch', value: epoch + 1, tag };
          }
          const written = await snapshotNow({ metrics: record.val });
          await pointCheckpoint(runDir, 'last', written);
          options.onEvent?.({ type: 'checkpoint', kind: 'last', dir: join(runDir, 'checkpoints', written) });
          if (state.best?.tag === written) {
            await pointCheckpoint(runDir, 'best', written);
            options.onEvent?.({ type: 'checkpoint', kind: 'best', dir: join(runDir, 'checkpoints', written) });
            if (detail) await writeJsonAtomic(join(runDir, 'best-validation.json'), detail);
          }
          await pruneSnapshots(runDir);
          await appendFile(logFile, `${JSON.stringify(record)}\n`);
          options.onEvent?.({ type: 'epoch-end', record });
          if (detail) await writeJsonAtomic(join(runDir, 'last-validation.json'), detail);
          await options.afterEpoch?.(summary(), detail);
          if (options.signal?.aborted && epoch + 1 < config.epochs) throw stopped(epoch, steps - 1);
        },
      },
    });
  } finally {
    optimizer.dispose();
  }
  return summary();

  function summary(): TrainRunSummary {
    return {
      runDir,
      history: state.history,
      best: state.best,
      config,
      classes: detector.classes,
      stepsDone: state.globalStep,
    };
  }
}

/** A snapshot's name: where training stands (next epoch, steps taken). */
function snapshotTag(at: EnginePosition): string {
  return `e${String(at.epoch).padStart(3, '0')}-s${String(at.globalStep).padStart(7, '0')}`;
}

/** The step lines a resumed run keeps: those before the step it resumes at (later ones are redone). */
async function stepsBefore(file: string, globalStep: number): Promise<unknown[]> {
  let text = '';
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return [];
  }
  const kept: unknown[] = [];
  for (const line of text.split('\n')) {
    try {
      const record = JSON.parse(line) as { globalStep?: unknown };
      if (typeof record.globalStep === 'number' && record.globalStep < globalStep) kept.push(record);
    } catch {
      // an empty line, or one cut short by a crash mid-write: that step is redone
    }
  }
  return kept;
}

/** Validation loss (mean over batches) and COCO metrics of the detector's predictions. */
export async function validate(
  detector: Detector,
  val: DetectionDataset,
  config: TrainConfig,
  epoch: number,
  stepRandom?: Rng,
): Promise<{ metrics: Record<string, number>; perCategory: EpochRecord['perCategory']; detail: ValidationDetail }> {
  const sums: Record<string, number> = {};
  let batches = 0;
  const results: CocoResult[] = [];
  const samples: ValidationDetail['samples'] = [];
  const categoryIds = [0, ...val.categories.map((c) => c.id)];
  for (let start = 0; start < val.size; start += config.batchSize) {
    const indices = range(Math.min(config.batchSize, val.size - start)).map((k) => start + k);
    const images: DetectorImage[] = await Promise.all(indices.map((i) => val.loadImage(i)));
    const targets = indices.map((i) => val.target(i));
    stepRandom?.setState(deriveSeed(config.seed, 'validation', epoch, batches));
    const losses = tf.tidy(() => {
      const named = detector.losses(images, targets);
      return Object.fromEntries(Object.entries(named).map(([k, v]) => [k, v.dataSync()[0]]));
    });
    let total = 0;
    for (const [name, value] of Object.entries(losses)) {
      sums[name] = (sums[name] ?? 0) + value;
      total += value;
    }
    sums.loss = (sums.loss ?? 0) + total;
    batches++;
    const detections = await detector.predict(images);
    const imageIds = indices.map((index) => val.coco.images[index].id);
    // Labels are 1-based (0 is the background); a label without a dataset category is not scored.
    const scored = detections.map((list) => list.filter((d) => val.categories[d.label - 1] !== undefined));
    for (const result of detectionsToCocoResults(imageIds, scored, categoryIds)) results.push(result);
    detections.forEach((list, k) => {
      const index = indices[k];
      const imageId = imageIds[k];
      if (index < config.validation.reportImages) {
        const { boxes, labels } = targets[k];
        samples.push({ index, imageId, detections: list, boxes: Array.from(boxes), labels: Array.from(labels) });
      }
    });
  }
  const metrics: Record<string, number> = {};
  for (const [name, sum] of Object.entries(sums)) metrics[name] = sum / Math.max(1, batches);
  const evaluation: CocoEvalResult = evaluateCoco(val.coco, results);
  COCO_STAT_NAMES.forEach((name, i) => {
    metrics[name] = evaluation.stats[i];
  });
  const perCategory = evaluation.perCategory.map((c) => ({ id: c.id, name: c.name, AP: c.AP, AP50: c.AP50 }));
  const pr = evaluation.catIds.map((id, k) => {
    const curve = precisionRecallCurve(evaluation, k, 0.5) ?? { recall: [], precision: [] };
    const name = val.categories.find((c) => c.id === id)?.name ?? String(id);
    return { id, name, ...curve };
  });
  const frocResult = froc(val.coco, results);
  metrics.FROC = Number.isNaN(frocResult.score) ? -1 : frocResult.score;
  const frocDetail = {
    fpRates: frocResult.fpRates,
    sensitivities: frocResult.sensitivities,
    score: metrics.FROC,
    fpsPerImage: frocResult.curve.fpsPerImage,
    sensitivity: frocResult.curve.sensitivity,
  };
  return { metrics, perCategory, detail: { epoch: epoch + 1, pr, froc: frocDetail, samples, results } };
}

/** A metric of an epoch by name: `AP`, `AP50`, … from validation, `loss`/`val_loss` (validation loss), `train_loss`. */
export function pickMetric(record: EpochRecord, metric: string): number | undefined {
  if (metric === 'train_loss') return record.train.loss;
  if (!record.val) return undefined;
  return record.val[metric === 'val_loss' ? 'loss' : metric];
}

function stopped(epoch: number, step: number): FedcxrError {
  return new FedcxrError(
    'aborted',
    `training stopped after epoch ${epoch + 1}, step ${step + 1}; continue with --resume`,
  );
}

/**
 * How source files became the training images, from the importer's record in the annotations' `info`
 * (`cxr dataset import` writes preset, size and letterbox), so `cxr predict` prepares new DICOMs the same way.
 */
function importSettings(
  info: Record<string, unknown> | undefined,
  normalization: NormalizationPreset,
): { preset: NormalizationPreset; size: number | null; letterbox: boolean } {
  const preset = normalizationPreset(info?.preset) ?? normalization;
  const size = typeof info?.size === 'number' ? info.size : null;
  return { preset, size, letterbox: info?.letterbox === true };
}

function modelCard(
  config: TrainConfig,
  detector: Detector,
  train: DetectionDataset,
  state: TrainState,
  metrics: Record<string, number>,
): Omit<CheckpointCard, 'weights'> {
  const option = <T>(name: string, fallback: T): T => (config.model.options[name] as T | undefined) ?? fallback;
  return {
    format: 'fedcxr-model',
    version: 1,
    architecture: config.model.detector,
    backbone: config.model.backbone,
    classes: [...detector.classes],
    categoryIds: train.categories.map((c) => c.id),
    preprocessing: {
      preset: option('preprocessingPreset', 'torchvision-imagenet'),
      minSize: config.model.minSize,
      maxSize: config.model.maxSize,
      imageMean: option<[number, number, number]>('imageMean', [...IMAGENET_MEAN]),
      imageStd: option<[number, number, number]>('imageStd', [...IMAGENET_STD]),
      // Grey X-rays go in as one channel; the detector replicates it to three.
      inputChannels: 1,
      normalization: config.data.normalization,
      dicom: importSettings(train.coco.info, config.data.normalization),
    },
    options: config.model.options,
    recipe: {
      epochs: config.epochs,
      batchSize: config.batchSize,
      seed: config.seed,
      optimizer: config.optimizer,
      schedule: config.schedule,
      augmentation: config.augmentation,
      sampler: config.sampler,
      trainImages: train.size,
      trainData: config.data.train,
    },
    metrics,
    provenance: {
      createdAt: new Date().toISOString(),
      createdBy: `fedcxr ${VERSION} cxr train`,
      source: { kind: 'training', run: config.name, epoch: state.epoch, step: state.globalStep },
    },
  };
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
