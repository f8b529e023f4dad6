/**
 * LocalTrainer for any `@fedcxr/core` Detector (Faster R-CNN, or the tiny_grid test detector) on a site's
 * COCO split, with exactly `cxr train`'s step (core's `trainStep`: SGD with Nesterov momentum and weight
 * decay, finite-loss check, optional global-norm clipping, linear warm-up, the same augmentation moving boxes
 * with pixels) plus FedProx's (μ/2)·‖w − w_global‖². The momentum buffers start afresh each round (FedAvg
 * averages weights, not optimizer state) only with `momentumAcrossRounds: false`; by default each site keeps its
 * own. Warm-up continues across rounds, counted in optimizer steps or, with `warmupEpochs`, in epochs of the
 * site's own data (so a federation and a centralized run of the same recipe warm up over the same epochs). `evaluate` is COCO mAP/AP50/AR@100 on the validation split.
 */
import {
  type AugmentationConfig,
  buildAugmentation,
  type DetectionDataset,
  type Detector,
  detectionsToCocoResults,
  evaluateCoco,
  FedcxrError,
  learningRateAt,
  type NamedTensors,
  rngFor,
  type Sample,
  SgdOptimizer,
  tf,
  trainStep,
} from '@fedcxr/core';
import type { Evaluation } from './protocol.js';
import { mulberry32 } from './tabular-trainer.js';
import type { LocalTrainer, LocalTrainPlan, LocalUpdateResult } from './trainer.js';

export interface DetectorTrainerOptions {
  learningRate?: number;
  momentum?: number;
  nesterov?: boolean;
  weightDecay?: number;
  /** Global gradient-norm clipping (torch's clip_grad_norm_); null: off. */
  clipGradNorm?: number | null;
  batchSize?: number;
  /** Linear warm-up from lr·0.001 over this many optimizer steps (counted across rounds). */
  warmupSteps?: number;
  /**
   * Linear warm-up over this many epochs of the trainer's own data instead (overrides warmupSteps), as
   * torchvision warms up over the first epoch: a site holding half the data warms up over the same epochs
   * (rounds) as a centralized run of the union, not over twice as many.
   */
  warmupEpochs?: number | null;
  /**
   * Step decay (torchvision's detection recipe): lr × gamma at the start of each of these epochs (1-based,
   * counted across rounds as round−1 × local epochs + epoch, so a federation and a centralized run of the
   * same total epochs decay at the same point).
   */
  milestones?: number[];
  gamma?: number;
  /** `cxr train`'s augmentation; null: none. */
  augmentation?: AugmentationConfig | null;
  /**
   * Keep this site's momentum buffers from one round to the next (they never leave the site). A round of a
   * few local steps otherwise spends most of them rebuilding momentum: with μ = 0.9 and 9 steps a round, the
   * steps move on average 0.39× as far as in a continuous run, so a federation lags a centralized run of the
   * same epochs (measured: mAP 0.94× → 0.99× of centralized). Default on; lost when the site process restarts
   * (the next round then starts afresh).
   */
  momentumAcrossRounds?: boolean;
}

/** Defaults: the seed recipe's optimizer, with clipping on (small federated batches are noisy). */
const DEFAULTS = {
  learningRate: 0.01,
  momentum: 0.9,
  nesterov: true,
  weightDecay: 1e-4,
  clipGradNorm: 10,
  batchSize: 2,
  warmupSteps: 50,
  warmupEpochs: null as number | null,
  milestones: [] as number[],
  gamma: 0.1,
  momentumAcrossRounds: true,
};

/** Normalization parameters take no weight decay (as in `cxr train`). */
const NO_DECAY = [/(^|[./])bn\d*([./]|$)/, /downsample[./]1([./]|$)/, /(^|[./])norm\d*([./]|$)/, /batch_?norm/];

/** The tensors a detector federates: its float weights (integer buffers stay local). */
export function federatedWeights(detector: Detector): NamedTensors {
  const out: NamedTensors = new Map();
  for (const [name, t] of detector.getWeights()) {
    if (t.dtype === 'float32' && t.data instanceof Float32Array)
      out.set(name, { ...t, data: Float32Array.from(t.data) });
  }
  return out;
}

export class DetectorTrainer implements LocalTrainer {
  /** The optimizer kept between rounds when `momentumAcrossRounds` is on (released by `dispose`). */
  private keptOptimizer: SgdOptimizer | undefined;

  constructor(
    private readonly detector: Detector,
    private readonly train_: DetectionDataset,
    private readonly validation: DetectionDataset | undefined,
    private readonly options: DetectorTrainerOptions = {},
  ) {}

  async train(global: NamedTensors, plan: LocalTrainPlan, signal?: AbortSignal): Promise<LocalUpdateResult> {
    const n = this.train_.size;
    if (n === 0) throw new FedcxrError('detector_data', 'no training images at this site');
    const o = { ...DEFAULTS, ...definedOnly(this.options) };
    this.detector.setWeights(global, { strict: false });
    const variables = this.detector.trainableVariables();
    const slotNames = variables.map((_, i) => `momentum.${i}`);
    const anchors = plan.mu > 0 ? variables.map((v) => tf.clone(v)) : [];
    const optimizer =
      this.keptOptimizer ??
      new SgdOptimizer({
        momentum: o.momentum,
        nesterov: o.nesterov && o.momentum > 0,
        weightDecay: o.weightDecay,
        noDecay: (name) => NO_DECAY.some((re) => re.test(name)),
      });
    this.keptOptimizer = o.momentumAcrossRounds ? optimizer : undefined;
    const baseLr = plan.learningRate ?? o.learningRate;
    const batchSize = plan.batchSize ?? o.batchSize;
    const augment = o.augmentation ? buildAugmentation(o.augmentation) : undefined;
    const stepsPerEpoch = Math.ceil(n / batchSize);
    // Steps this site took in earlier rounds (same plan each round): warm-up continues where it stopped.
    const stepsBefore = Math.max(0, plan.round - 1) * plan.epochs * stepsPerEpoch;
    const epochsBefore = Math.max(0, plan.round - 1) * plan.epochs;
    const schedule = {
      warmupSteps: o.warmupEpochs != null ? Math.round(o.warmupEpochs * stepsPerEpoch) : o.warmupSteps,
      warmupFactor: 0.001,
      type: 'step' as const,
      milestones: o.milestones,
      gamma: o.gamma,
      minFactor: 0,
    };
    const random = mulberry32(plan.seed);
    const order = Array.from({ length: n }, (_, i) => i);
    const sums: Record<string, number> = {};
    let steps = 0;
    let step = 0;
    try {
      for (let epoch = 0; epoch < plan.epochs; epoch++) {
        for (let i = n - 1; i > 0; i--) {
          const j = Math.floor(random() * (i + 1));
          [order[i], order[j]] = [order[j], order[i]];
        }
        for (let start = 0; start < n; start += batchSize, step++) {
          if (signal?.aborted) throw new FedcxrError('training_aborted', 'local training was aborted');
          const rows = order.slice(start, start + batchSize);
          const samples: Sample[] = await Promise.all(
            rows.map(async (row, k) => {
              const sample: Sample = { image: await this.train_.loadImage(row), target: this.train_.target(row) };
              return augment ? augment(sample, rngFor(plan.seed, 'augment', plan.round, epoch, start + k)) : sample;
            }),
          );
          const lr = learningRateAt(baseLr, schedule, {
            globalStep: stepsBefore + step,
            epoch: epochsBefore + epoch,
            epochFraction: 0,
            totalEpochs: 1,
          });
          const losses = trainStep(
            this.detector,
            optimizer,
            variables,
            slotNames,
            samples,
            lr,
            o.clipGradNorm,
            plan.mu > 0 ? { mu: plan.mu, anchors } : undefined,
          );
          if (epoch === plan.epochs - 1) {
            for (const [name, v] of Object.entries(losses)) sums[name] = (sums[name] ?? 0) + v;
            steps++;
          }
          // Let socket.io heartbeats through between steps.
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
      const metrics = Object.fromEntries(Object.entries(sums).map(([k, v]) => [metricName(k), v / Math.max(1, steps)]));
      return { weights: federatedWeights(this.detector), numExamples: n, metrics };
    } finally {
      if (optimizer !== this.keptOptimizer) optimizer.dispose();
      for (const a of anchors) a.dispose();
    }
  }

  /** Releases the momentum kept between rounds (the detector is its owner's to dispose). */
  dispose(): void {
    this.keptOptimizer?.dispose();
    this.keptOptimizer = undefined;
  }

  async evaluate(global: NamedTensors): Promise<Evaluation> {
    const val = this.validation;
    if (!val || val.size === 0) return { numExamples: 0, metrics: {} };
    this.detector.setWeights(global, { strict: false });
    const ids: number[] = [];
    const detections = [];
    for (let i = 0; i < val.size; i++) {
      const [found] = await this.detector.predict([await val.loadImage(i)]);
      detections.push(found);
      ids.push(val.coco.images[i].id);
    }
    const results = detectionsToCocoResults(
      ids,
      detections,
      // Index 0 is the background label.
      [0, ...val.categories.map((c) => c.id)],
    );
    const stats = evaluateCoco(val.coco, results).stats;
    return {
      numExamples: val.size,
      metrics: { ap: finite(stats[0]), ap50: finite(stats[1]), ar100: finite(stats[8]) },
    };
  }
}

/** COCO eval reports -1 when a quantity is undefined (no ground truth): send 0 instead. */
function finite(value: number | undefined): number {
  return value !== undefined && Number.isFinite(value) && value >= 0 ? value : 0;
}

/** Loss names from a detector (e.g. `loss_rpn_box_reg`) made protocol-safe. */
function metricName(name: string): string {
  const clean = name.replace(/[^A-Za-z0-9_.@-]/g, '_').slice(0, 48);
  return /^[A-Za-z]/.test(clean) ? clean : `m_${clean}`.slice(0, 48);
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
