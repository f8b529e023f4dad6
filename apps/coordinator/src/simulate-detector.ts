/**
 * `cxr fed simulate --model faster_rcnn`: the product's real promise on loopback. N site processes each train
 * Faster R-CNN on a patient-disjoint shard of a COCO data set (PNG images on disk, as `cxr dataset import`
 * writes them), the coordinator aggregates; then the same detector, same recipe (core's training step:
 * SGD-Nesterov, weight decay, clipping, warm-up), is trained centrally on the union of the sites' training
 * images for the same total epochs (rounds × local epochs), and both are scored with COCO mAP on one held-out,
 * patient-disjoint test split that no site trained on. Both sides start from the same weights: the recipe's
 * random initialization, or a checkpoint (`init`) as hospitals start from a shared pretrained model; the
 * starting model is scored on the test split too.
 *
 * Data: `synthetic` (squares and discs on a noisy background, two images per "patient": CI and the demo) or a
 * COCO file. The parent process prepares each site's COCO files (it plays each hospital's own data
 * preparation); from then on each site process reads only its own files.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import {
  type BackendChoice,
  type CocoDataset,
  encodeGreyPng,
  FedcxrError,
  initEngine,
  loadModelDir,
  type NamedTensors,
  openCocoDataset,
  Rng,
  synthesizeShapes,
  type TrainConfig,
  writeFileAtomic,
  writeJsonAtomic,
} from '@fedcxr/core';
import {
  buildSiteDetector,
  DetectorTrainer,
  type DetectorTrainerConfig,
  detectorTrainerOptions,
  federatedWeights,
  type LabelledRows,
  type SplitMode,
  selectRows,
  shardByPatient,
} from '@fedcxr/federated';
import { COMPACT_HEADS } from '@fedcxr/models-frcnn';
import type { RoundSummary } from './coordinator.js';
import { runSimulatedFederation, type SimulationCommonOptions } from './federation-run.js';

export interface DetectorSimulationOptions extends SimulationCommonOptions {
  /** A registered backbone (default resnet18_fpn). */
  backbone?: string;
  /** Detector input size in pixels (minSize = maxSize; default 128). */
  size?: number;
  /** Synthetic images (default 96) before the test split is held out. */
  images?: number;
  /** Use at most this many images of a COCO file (its first N). */
  limit?: number;
  /** Tensor engine backend of the sites and the centralized baseline (default: the best available). */
  backend?: BackendChoice;
  /** Epochs (1-based, of rounds × local epochs) where the lr drops ×0.1; default: at 3/4 of the run (≥ 4 epochs). */
  lrMilestones?: number[];
  /**
   * A `cxr train` config (parsed): the sites and the centralized baseline build its model (detector, backbone,
   * minSize, trainable layers, head options) and train with its recipe (batch, optimizer, schedule,
   * augmentation, sampler) instead of the simulation's defaults; `learningRate`/`batchSize` still override.
   */
  train?: Pick<TrainConfig, 'model' | 'batchSize' | 'optimizer' | 'schedule' | 'augmentation' | 'sampler'>;
  /**
   * A model directory (a `cxr train` checkpoint) both the federation and the centralized baseline start from,
   * as hospitals start from a shared pretrained model; it must be the same detector, backbone and classes.
   * Default: the recipe's own random initialization.
   */
  init?: string;
}

/** One ×0.1 step at three quarters of the run, as torchvision's detection schedules do; none for short runs. */
function defaultMilestones(totalEpochs: number): number[] {
  return totalEpochs >= 4 ? [Math.floor(totalEpochs * 0.75) + 1] : [];
}

export interface DetectionScores {
  /** COCO AP@[.5:.95] (pycocotools' stats[0]), AP50, AR@100 on the test split. */
  ap: number;
  ap50: number;
  ar100: number;
}

export interface DetectorSimulationReport {
  model: { detector: 'faster_rcnn'; backbone: string; size: number };
  /** Each site's shard; `note` says why a site has no validation images (a single patient trains on all). */
  sites: { id: string; trainImages: number; validationImages: number; patients: number; note?: string }[];
  testImages: number;
  categories: string[];
  rounds: RoundSummary[];
  totalEpochs: number;
  /** The starting point both sides share: `init`'s directory, or null for a random initialization. */
  init: string | null;
  /** The initial model on the test split (what training added is measured from here). */
  initial: DetectionScores;
  federated: DetectionScores;
  centralized: DetectionScores;
  /** federated mAP / centralized mAP on the same test split; null when the centralized mAP is 0 (see ratioNote). */
  mapRatio: number | null;
  ap50Ratio: number | null;
  /** Why a ratio is null: what a division by a zero centralized score would hide. */
  ratioNote?: string;
  siteValidation: { numExamples: number; metrics: Record<string, number> };
  data: string;
  split: SplitMode;
  aggregation: { rule: string; serverLearningRate: number; mu: number };
  seconds: { total: number; federated: number; centralized: number };
}

/** The plugin that registers `faster_rcnn` in each site process (imported above for this process). */
const FRCNN_PLUGIN = '@fedcxr/models-frcnn';

export async function simulateDetector(options: DetectorSimulationOptions): Promise<DetectorSimulationReport> {
  const started = performance.now();
  const progress = options.onProgress ?? (() => {});
  const seed = options.seed ?? 1;
  const epochs = options.epochs ?? 1;
  const size = options.train?.model.minSize ?? options.size ?? 128;
  const backbone = options.train?.model.backbone ?? options.backbone ?? 'resnet18_fpn';
  if (options.sites < 1 || options.rounds < 1) throw new FedcxrError('usage', '--sites and --rounds must be ≥ 1');
  if (!Number.isInteger(size) || size < 32)
    throw new FedcxrError('usage', `--size must be an integer ≥ 32, got ${size}`);

  const ownDir = !options.workDir;
  const workDir = resolve(options.workDir ?? mkdtempSync(join(tmpdir(), 'fedcxr-fedsim-')));
  mkdirSync(workDir, { recursive: true });
  try {
    const source =
      options.data === 'synthetic'
        ? await writeSyntheticData(join(workDir, 'data'), options.images ?? 96, size, seed)
        : await readCocoWithAbsolutePaths(options.data, options.limit);
    const coco = source.coco;
    const categories = coco.categories.map((c) => c.name);
    const rows = rowsOf(coco);

    // Hold out ~20 % of patients as the common test split, then shard the rest by patient.
    const { train: poolRows, validation: testRows } = splitIndices(rows, 0.2, seed);
    const pool = selectRows(rows, poolRows);
    const shards = shardByPatient(pool, options.sites, options.split, seed).map((shard) =>
      shard.map((i) => poolRows[i]),
    );
    const siteIds = shards.map((_, i) => `site-${i + 1}`);
    const recipe: Omit<DetectorTrainerConfig, 'train' | 'val'> = options.train
      ? recipeFromTrainConfig(options.train, {
          seed,
          epochs: options.rounds * epochs,
          learningRate: options.learningRate,
          batchSize: options.batchSize,
        })
      : {
          kind: 'detector',
          detector: 'faster_rcnn',
          backbone,
          size,
          seed,
          batchSize: options.batchSize ?? 4,
          // From random weights on CPU-sized batches: a higher lr than the seed's 0.003, gradients clipped.
          optimizer: { lr: options.learningRate ?? 0.01, clipGradNorm: 10 },
          schedule: {
            // Warm up over the first epoch (torchvision's recipe): each site over its first round, the centralized
            // baseline over its first epoch of the union; counted in steps, sites would warm up over more epochs.
            warmupEpochs: 1,
            // torchvision's step decay near the end (both sides decay at the same epoch).
            milestones: options.lrMilestones ?? defaultMilestones(options.rounds * (options.epochs ?? 1)),
          },
          augmentation: null,
          // Each site keeps its momentum between rounds (the default, said here because the result depends on it).
          momentumAcrossRounds: true,
          // CPU-sized heads (as `cxr demo`).
          options: structuredClone(COMPACT_HEADS) as Record<string, unknown>,
        };
    const trainers = new Map<string, DetectorTrainerConfig>();
    const summaries: DetectorSimulationReport['sites'] = [];
    const unionTrain: number[] = [];
    for (let i = 0; i < shards.length; i++) {
      const shard = selectRows(rows, shards[i]);
      // At least one validation patient per site that has two or more (a site's val AP drives the rounds' charts).
      const { train, validation } = splitIndices(shard, 0.2, seed + i + 1);
      const trainImages = train.map((k) => shards[i][k]);
      const valImages = validation.map((k) => shards[i][k]);
      if (trainImages.length === 0)
        throw new FedcxrError('usage', `${siteIds[i]} got no training images: use fewer sites or more data`);
      unionTrain.push(...trainImages);
      await writeJsonAtomic(join(workDir, `${siteIds[i]}.train.json`), subset(coco, trainImages));
      await writeJsonAtomic(join(workDir, `${siteIds[i]}.val.json`), subset(coco, valImages));
      trainers.set(siteIds[i], {
        ...recipe,
        kind: 'detector',
        train: `${siteIds[i]}.train.json`,
        ...(valImages.length > 0 ? { val: `${siteIds[i]}.val.json` } : {}),
      });
      const sitePatients = new Set(shard.patientIds).size;
      summaries.push({
        id: siteIds[i],
        trainImages: trainImages.length,
        validationImages: valImages.length,
        patients: sitePatients,
        ...(valImages.length === 0
          ? { note: `no validation images: its only patient (of ${sitePatients}) is kept for training` }
          : {}),
      });
    }
    const testFile = join(workDir, 'test.json');
    const unionFile = join(workDir, 'centralized.train.json');
    await writeJsonAtomic(testFile, subset(coco, testRows));
    await writeJsonAtomic(unionFile, subset(coco, unionTrain));

    const engine = await initEngine({ backend: options.backend ?? 'auto' }, 'training');
    const cores = (await import('node:os')).availableParallelism();
    const initialDetector = buildSiteDetector({ ...recipe, train: unionFile }, categories);
    const initialModel = options.init
      ? await initialWeightsFrom(options.init, federatedWeights(initialDetector), { backbone, categories })
      : federatedWeights(initialDetector);
    initialDetector.dispose();
    progress(
      `Faster R-CNN (${backbone}, ${size} px, ${engine.backend}): ${summaries.length} sites, ` +
        `${unionTrain.length} training and ${testRows.length} test images`,
    );

    const federation = await runSimulatedFederation({
      workDir,
      trainers,
      initialModel,
      rounds: options.rounds,
      round: {
        epochs,
        mu: options.mu ?? 0,
        encoding: options.encoding ?? 'float32',
        aggregation: options.aggregation ?? 'fedavg',
        aggregationOptions: options.aggregationOptions ?? {},
        serverLearningRate: options.serverLearningRate ?? 1,
        timeoutMs: 3_600_000,
        // Whole-weight updates of a freshly initialized detector move far in round 1: bound them loosely.
        normBound: 1e6,
        seed,
      },
      site: {
        plugins: [FRCNN_PLUGIN],
        // The sites share this machine's cores.
        engine: { backend: engine.backend, threads: Math.max(1, Math.floor(cores / summaries.length)) },
      },
      readyTimeoutMs: 180_000,
      evaluateTimeoutMs: 1_800_000,
      progress,
      describeRound: (s) =>
        `round ${s.round}: ${s.sites.length} sites, train loss ${s.train.loss?.toFixed(4)}, ` +
        `val AP50 (model ${s.round - 1}) ${s.validation.ap50?.toFixed(4)}`,
      onCoordinator: options.onCoordinator,
      beforeRound: options.beforeRound,
    });

    // One detector in this process (its variables are named): it scores the federated model, then trains
    // the centralized baseline from the same initial weights, then scores that.
    const test = await openCocoDataset(testFile);
    const union = await openCocoDataset(unionFile, { categories: test.categories });
    const detector = buildSiteDetector({ ...recipe, train: unionFile }, categories);
    const totalEpochs = options.rounds * epochs;
    let initial: DetectionScores;
    let federated: DetectionScores;
    let centralized: DetectionScores;
    let centralSeconds: number;
    const trainer = new DetectorTrainer(detector, union, test, detectorTrainerOptions({ ...recipe, train: unionFile }));
    try {
      const scoreOn = async (weights: typeof initialModel): Promise<DetectionScores> => {
        const { metrics } = await trainer.evaluate(weights);
        return { ap: metrics.ap, ap50: metrics.ap50, ar100: metrics.ar100 };
      };
      initial = await scoreOn(initialModel);
      federated = await scoreOn(federation.globalModel);
      progress(
        `federated model on the test split: mAP ${federated.ap.toFixed(4)}, AP50 ${federated.ap50.toFixed(4)}; ` +
          `centralized baseline: ${totalEpochs} epochs on the union of the sites' ${unionTrain.length} images`,
      );
      const centralStarted = performance.now();
      const central = await trainer.train(initialModel, { round: 1, epochs: totalEpochs, mu: 0, seed });
      centralSeconds = (performance.now() - centralStarted) / 1000;
      centralized = await scoreOn(central.weights ?? initialModel);
    } finally {
      trainer.dispose();
      detector.dispose();
    }
    return {
      model: { detector: 'faster_rcnn', backbone, size },
      sites: summaries,
      testImages: testRows.length,
      categories,
      rounds: federation.rounds,
      totalEpochs,
      init: options.init ? resolve(options.init) : null,
      initial,
      federated,
      centralized,
      ...scoreRatios(federated, centralized),
      siteValidation: {
        numExamples: federation.siteValidation.numExamples,
        metrics: federation.siteValidation.metrics,
      },
      data: options.data,
      split: options.split,
      aggregation: {
        rule: options.aggregation ?? 'fedavg',
        serverLearningRate: options.serverLearningRate ?? 1,
        mu: options.mu ?? 0,
      },
      seconds: {
        total: (performance.now() - started) / 1000,
        federated: federation.seconds,
        centralized: centralSeconds,
      },
    };
  } finally {
    if (ownDir) rmSync(workDir, { recursive: true, force: true });
  }
}

/**
 * The starting weights from a model directory: every weight the recipe's detector has, taken from the
 * checkpoint (same name, same shape), after checking it is the same detector and classes.
 */
export async function initialWeightsFrom(
  dir: string,
  expected: NamedTensors,
  model: { backbone: string; categories: string[] },
): Promise<NamedTensors> {
  const { card, weights } = await loadModelDir(dir);
  const file = join(dir, 'model.json');
  if (card.architecture !== 'faster_rcnn' || card.backbone !== model.backbone)
    throw new FedcxrError(
      'init_mismatch',
      `--init is a ${card.architecture} with ${card.backbone}; the sites train faster_rcnn with ${model.backbone}`,
      { file },
    );
  const classes = card.classes.slice(1);
  if (classes.join('\n') !== model.categories.join('\n'))
    throw new FedcxrError(
      'init_mismatch',
      `--init detects ${classes.join(', ')}; the data's categories are ${model.categories.join(', ')}`,
      { file },
    );
  const out: NamedTensors = new Map();
  for (const [name, want] of expected) {
    const have = weights.get(name);
    if (!have) throw new FedcxrError('init_mismatch', `--init has no weight ${name}`, { file });
    if (have.shape.join('x') !== want.shape.join('x') || !(have.data instanceof Float32Array))
      throw new FedcxrError(
        'init_mismatch',
        `--init's ${name} is ${have.dtype} [${have.shape.join(', ')}]; the sites' model has float32 [${want.shape.join(', ')}] (other head options?)`,
        { file },
      );
    out.set(name, { ...want, data: Float32Array.from(have.data) });
  }
  return out;
}

/** Synthetic shapes written as 8-bit PNGs + COCO (two images per patient), as a hospital export would be. */
async function writeSyntheticData(
  dir: string,
  count: number,
  size: number,
  seed: number,
): Promise<{ coco: CocoDataset }> {
  const set = synthesizeShapes({ count, negatives: Math.round(count / 8), size, seed });
  mkdirSync(join(dir, 'images'), { recursive: true });
  const images = [];
  for (let i = 0; i < set.coco.images.length; i++) {
    const image = set.coco.images[i];
    const pixels = set.images[i].pixels;
    const bytes = Uint8Array.from(pixels, (v) => Math.round(Math.min(1, Math.max(0, v)) * 255));
    const file = join(dir, 'images', `${String(image.id).padStart(5, '0')}.png`);
    await writeFileAtomic(file, encodeGreyPng({ width: size, height: size, channels: 1, bitDepth: 8, data: bytes }));
    images.push({ ...image, file_name: file, patient_id: `SYN${String(Math.floor(i / 2)).padStart(5, '0')}` });
  }
  const coco: CocoDataset = { ...set.coco, images };
  await writeJsonAtomic(join(dir, 'annotations.json'), coco);
  return { coco };
}

async function readCocoWithAbsolutePaths(path: string, limit?: number): Promise<{ coco: CocoDataset }> {
  let coco: CocoDataset;
  try {
    coco = JSON.parse(await readFile(path, 'utf8')) as CocoDataset;
  } catch (error) {
    throw new FedcxrError('coco_unreadable', `cannot read COCO file: ${(error as Error).message}`, { file: path });
  }
  if (!Array.isArray(coco.images) || !Array.isArray(coco.annotations) || !Array.isArray(coco.categories))
    throw new FedcxrError('coco_invalid', 'not a COCO detection file (images/annotations/categories missing)', {
      file: path,
    });
  const base = dirname(resolve(path));
  const images = (limit ? coco.images.slice(0, limit) : coco.images).map((image) => ({
    ...image,
    file_name: isAbsolute(image.file_name) ? image.file_name : join(base, image.file_name),
  }));
  const kept = new Set(images.map((i) => i.id));
  return { coco: { ...coco, images, annotations: coco.annotations.filter((a) => kept.has(a.image_id)) } };
}

/** One row per image for the patient-disjoint splitters: label = its first finding's category (0: none). */
function rowsOf(coco: CocoDataset): LabelledRows {
  const firstCategory = new Map<number, number>();
  for (const a of coco.annotations) if (!firstCategory.has(a.image_id)) firstCategory.set(a.image_id, a.category_id);
  const categoryIndex = new Map(coco.categories.map((c, i) => [c.id, i + 1]));
  return {
    features: 0,
    classes: coco.categories.length + 1,
    x: new Float32Array(0),
    y: Int32Array.from(coco.images, (image) => categoryIndex.get(firstCategory.get(image.id) ?? -1) ?? 0),
    patientIds: coco.images.map((image) => String(image.patient_id ?? `image-${image.id}`)),
  };
}

/** The site recipe a `cxr train` config describes: its model and its training recipe, for every site alike. */
function recipeFromTrainConfig(
  train: NonNullable<DetectorSimulationOptions['train']>,
  run: { seed: number; epochs: number; learningRate?: number; batchSize?: number },
): Omit<DetectorTrainerConfig, 'train' | 'val'> {
  const modelOptions = structuredClone(train.model.options) as Record<string, unknown>;
  return {
    kind: 'detector',
    detector: train.model.detector,
    backbone: train.model.backbone,
    size: train.model.minSize,
    seed: run.seed,
    // Sizes a cosine schedule: the federation's rounds × local epochs.
    epochs: run.epochs,
    batchSize: run.batchSize ?? train.batchSize,
    optimizer: { ...train.optimizer, ...(run.learningRate === undefined ? {} : { lr: run.learningRate }) },
    schedule: train.schedule,
    augmentation: train.augmentation,
    sampler: train.sampler,
    momentumAcrossRounds: true,
    options: {
      ...modelOptions,
      // `cxr train` gives the backbone model.trainableLayers; so does each site.
      backboneOptions: {
        trainableLayers: train.model.trainableLayers,
        ...((modelOptions.backboneOptions as Record<string, unknown> | undefined) ?? {}),
      },
    },
  };
}

/**
 * federated / centralized mAP and AP50, null where the centralized score is 0 (a ratio of zeros means
 * nothing: shown as n/a with the reason, never as 0).
 */
export function scoreRatios(
  federated: DetectionScores,
  centralized: DetectionScores,
): Pick<DetectorSimulationReport, 'mapRatio' | 'ap50Ratio' | 'ratioNote'> {
  const ratio = (f: number, c: number) => (c > 0 ? f / c : null);
  const mapRatio = ratio(federated.ap, centralized.ap);
  const ap50Ratio = ratio(federated.ap50, centralized.ap50);
  if (mapRatio !== null) return { mapRatio, ap50Ratio };
  const both = federated.ap === 0;
  return {
    mapRatio,
    ap50Ratio,
    ratioNote: both
      ? 'n/a: both detectors scored mAP 0 on the test split (neither learnt to find the boxes: train longer or on more data)'
      : `n/a: the centralized detector scored mAP 0 on the test split (federated ${federated.ap.toFixed(4)})`,
  };
}

/**
 * A patient-disjoint split answering indices into `rows`: round(fraction × patients) patients, drawn by the
 * seed, go to validation, at least one when there are two or more patients (splitValidation's coin per
 * patient can leave a small shard with none), never all of them.
 */
function splitIndices(rows: LabelledRows, fraction: number, seed: number): { train: number[]; validation: number[] } {
  const byPatient = new Map<string, number[]>();
  rows.patientIds.forEach((id, i) => {
    const list = byPatient.get(id);
    if (list) list.push(i);
    else byPatient.set(id, [i]);
  });
  const patients = new Rng(seed).shuffle([...byPatient.keys()]);
  const count =
    patients.length < 2 ? 0 : Math.min(patients.length - 1, Math.max(1, Math.round(fraction * patients.length)));
  const held = new Set(patients.slice(0, count));
  const train: number[] = [];
  const validation: number[] = [];
  rows.patientIds.forEach((id, i) => {
    (held.has(id) ? validation : train).push(i);
  });
  return { train, validation };
}

function subset(coco: CocoDataset, indices: readonly number[]): CocoDataset {
  const images = indices.map((i) => coco.images[i]);
  const ids = new Set(images.map((i) => i.id));
  return {
    ...coco,
    images,
    annotations: coco.annotations.filter((a) => ids.has(a.image_id)),
    categories: coco.categories,
  };
}
