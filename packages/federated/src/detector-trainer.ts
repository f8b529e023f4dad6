/**
 * LocalTrainer for any `@fedcxr/core` Detector (Faster R-CNN, or the tiny_grid test detector) on a site's
 * COCO split. It runs core's epoch engine (`runEpochs`, the very loop `cxr train` runs) with the same recipe
 * schema (`cxr train`'s `epochs`, `batchSize`, `optimizer`, `schedule`, `augmentation`, `sampler`, and their
 * defaults: the seed study's recipe), plus FedProx's (μ/2)·‖w − w_global‖² when the round's μ > 0.
 *
 * Rounds continue one run: round r trains epochs (r − 1)·E … r·E − 1 of it (E local epochs a round), so
 * warm-up (in steps, or with `schedule.warmupEpochs` in epochs of the site's own data), step milestones and
 * the cosine schedule are counted across rounds, and the sampler, augmentation and detector streams are those
 * epochs' (seeded by the round plan's seed). The momentum buffers are kept from round to round
 * (`momentumAcrossRounds`, default on; they never leave the site) and start afresh each round with
 * `momentumAcrossRounds: false` (FedAvg averages weights, not optimizer state). `evaluate` is COCO
 * mAP/AP50/AR@100 on the validation split.
 */
import {
  createOptimizer,
  type DetectionDataset,
  type Detector,
  detectionsToCocoResults,
  evaluateCoco,
  FedcxrError,
  type NamedTensors,
  parseConfig,
  positionAtEpoch,
  type Rng,
  recipeShape,
  runEpochs,
  type SgdOptimizer,
  type TrainingRecipe,
  tf,
} from '@fedcxr/core';
import { z } from 'zod';
import type { Evaluation } from './protocol.js';
import type { LocalTrainer, LocalTrainPlan, LocalUpdateResult } from './trainer.js';

/** The federated trainer's recipe: `cxr train`'s recipe plus what only a federation has. */
export const federatedRecipeShape = {
  ...recipeShape,
  /**
   * Keep this site's momentum buffers from one round to the next (they never leave the site). A round of a
   * few local steps otherwise spends most of them rebuilding momentum: with μ = 0.9 and 9 steps a round, the
   * steps move on average 0.39× as far as in a continuous run, so a federation lags a centralized run of the
   * same epochs (measured: mAP 0.94× → 0.99× of centralized). Default on; lost when the site process restarts
   * (the next round then starts afresh).
   */
  momentumAcrossRounds: z.boolean().default(true),
};
const strictFederatedRecipe = z.strictObject(federatedRecipeShape);
export type FederatedRecipe = z.infer<typeof strictFederatedRecipe>;

/**
 * The federated trainer's field names before it shared `cxr train`'s recipe. Still read (mapped to their
 * place in the recipe, with a one-time deprecation warning); write the recipe's names instead.
 */
export type LegacyRecipeFields = {
  /** @deprecated `optimizer.lr` */
  learningRate?: number;
  /** @deprecated `optimizer.momentum` */
  momentum?: number;
  /** @deprecated `optimizer.nesterov` */
  nesterov?: boolean;
  /** @deprecated `optimizer.weightDecay` */
  weightDecay?: number;
  /** @deprecated `optimizer.clipGradNorm` */
  clipGradNorm?: number | null;
  /** @deprecated `schedule.warmupSteps` */
  warmupSteps?: number;
  /** @deprecated `schedule.warmupEpochs` */
  warmupEpochs?: number | null;
  /** @deprecated `schedule.milestones` */
  milestones?: number[];
  /** @deprecated `schedule.milestones` */
  lrMilestones?: number[];
  /** @deprecated `schedule.gamma` */
  gamma?: number;
  /** @deprecated `schedule.gamma` */
  lrGamma?: number;
};

const LEGACY_FIELDS: Readonly<Record<keyof LegacyRecipeFields, readonly ['optimizer' | 'schedule', string]>> = {
  learningRate: ['optimizer', 'lr'],
  momentum: ['optimizer', 'momentum'],
  nesterov: ['optimizer', 'nesterov'],
  weightDecay: ['optimizer', 'weightDecay'],
  clipGradNorm: ['optimizer', 'clipGradNorm'],
  warmupSteps: ['schedule', 'warmupSteps'],
  warmupEpochs: ['schedule', 'warmupEpochs'],
  milestones: ['schedule', 'milestones'],
  lrMilestones: ['schedule', 'milestones'],
  gamma: ['schedule', 'gamma'],
  lrGamma: ['schedule', 'gamma'],
};
const warnedLegacyFields = new Set<string>();

/**
 * Moves the old flat field names (`learningRate`, `lrMilestones`, …) to their place in the recipe
 * (`optimizer.lr`, `schedule.milestones`, …). A field given both ways is an error naming both. As before,
 * `momentum: 0` without `nesterov` means plain SGD.
 */
function upgradeLegacyFields(value: unknown, ctx: z.core.$RefinementCtx): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const input = value as Record<string, unknown>;
  const legacy = Object.keys(LEGACY_FIELDS).filter((key) => input[key] !== undefined) as (keyof LegacyRecipeFields)[];
  if (legacy.length === 0) return value;
  const out: Record<string, unknown> = { ...input };
  const sections: Record<string, Record<string, unknown>> = {};
  for (const key of legacy) {
    const [section, field] = LEGACY_FIELDS[key];
    const given = input[section];
    if (given !== undefined && (typeof given !== 'object' || given === null)) continue; // the schema names it
    sections[section] ??= { ...((given as Record<string, unknown> | undefined) ?? {}) };
    if (sections[section][field] !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: [key],
        message: `also given as ${section}.${field} (${key} is its old name): keep ${section}.${field}`,
        input: value,
      });
      continue;
    }
    sections[section][field] = input[key];
    delete out[key];
  }
  if (input.momentum === 0 && input.nesterov === undefined && sections.optimizer) sections.optimizer.nesterov = false;
  Object.assign(out, sections);
  const fresh = legacy.filter((key) => !warnedLegacyFields.has(key));
  if (fresh.length > 0) {
    for (const key of fresh) warnedLegacyFields.add(key);
    process.emitWarning(
      `detector trainer: ${fresh.map((k) => `${k} → ${LEGACY_FIELDS[k].join('.')}`).join(', ')} ` +
        "(the federated trainer takes `cxr train`'s recipe now; the old names still work)",
      { type: 'DeprecationWarning', code: 'FEDCXR_RECIPE_FIELDS' },
    );
  }
  return out;
}

/** `schema` reading the old flat field names too (see `LegacyRecipeFields`). */
export function withLegacyRecipeFields<T extends z.ZodType>(schema: T) {
  return z.preprocess(upgradeLegacyFields, schema);
}

export const federatedRecipeSchema = withLegacyRecipeFields(strictFederatedRecipe);

/** The recipe fields of a parsed config that holds them (a site.yaml `trainer:` section, say). */
export function recipeOf(config: FederatedRecipe): FederatedRecipe {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(federatedRecipeShape)) out[key] = config[key as keyof FederatedRecipe];
  return out as FederatedRecipe;
}

export type DetectorTrainerOptions = z.input<typeof strictFederatedRecipe> &
  LegacyRecipeFields & {
    /**
     * The detector's training-time random stream (core's `trainingRandomness(stepRandom)` built into it), so
     * the engine reseeds it before every step: RPN/RoI sampling and drop path become a function of (round
     * plan seed, epoch, step). Without it the detector draws from its own stream.
     */
    stepRandom?: Rng;
  };

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
  private readonly recipe: FederatedRecipe;
  private readonly stepRandom: Rng | undefined;

  constructor(
    private readonly detector: Detector,
    private readonly train_: DetectionDataset,
    private readonly validation: DetectionDataset | undefined,
    options: DetectorTrainerOptions = {},
  ) {
    const { stepRandom, ...recipe } = options;
    this.recipe = parseConfig(federatedRecipeSchema, recipe, 'detector trainer') as FederatedRecipe;
    this.stepRandom = stepRandom;
  }

  async train(global: NamedTensors, plan: LocalTrainPlan, signal?: AbortSignal): Promise<LocalUpdateResult> {
    const n = this.train_.size;
    if (n === 0) throw new FedcxrError('detector_data', 'no training images at this site');
    // The round plan may set the learning rate and batch size; everything else is the site's recipe.
    const recipe: TrainingRecipe = {
      ...this.recipe,
      batchSize: plan.batchSize ?? this.recipe.batchSize,
      optimizer: { ...this.recipe.optimizer, lr: plan.learningRate ?? this.recipe.optimizer.lr },
    };
    this.detector.setWeights(global, { strict: false });
    const variables = this.detector.trainableVariables();
    const anchors = plan.mu > 0 ? variables.map((v) => tf.clone(v)) : [];
    const optimizer = this.keptOptimizer ?? createOptimizer(recipe.optimizer);
    this.keptOptimizer = this.recipe.momentumAcrossRounds ? optimizer : undefined;
    // This round's epochs of the one run the rounds make (same plan each round).
    const firstEpoch = Math.max(0, plan.round - 1) * plan.epochs;
    const lastEpoch = firstEpoch + plan.epochs - 1;
    let metrics: Record<string, number> = {};
    try {
      await runEpochs({
        detector: this.detector,
        data: this.train_,
        recipe,
        seed: plan.seed,
        optimizer,
        position: positionAtEpoch(this.train_, recipe, plan.seed, firstEpoch),
        untilEpoch: lastEpoch + 1,
        stepRandom: this.stepRandom,
        proximal: plan.mu > 0 ? { mu: plan.mu, anchors } : undefined,
        hooks: {
          beforeStep: () => {
            if (signal?.aborted) throw new FedcxrError('training_aborted', 'local training was aborted');
          },
          // Let socket.io heartbeats through between steps.
          afterStep: () => new Promise((resolve) => setImmediate(resolve)),
          epochEnd: ({ epoch, train }) => {
            if (epoch === lastEpoch)
              metrics = Object.fromEntries(Object.entries(train).map(([k, v]) => [metricName(k), v]));
          },
        },
      });
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
