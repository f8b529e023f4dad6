/**
 * The epoch engine: THE training loop. `cxr train` (`trainDetector`, loop.ts) and the federated site trainer
 * (`DetectorTrainer` in @fedcxr/federated) both run their epochs here, from the same recipe (config.ts):
 *
 *   for each epoch: the sampler's indices (repeat factors, negatives, shuffle) → batches of `batchSize`
 *   for each step:  load + augment each image → reseed the detector's step stream → lr (warm-up + schedule)
 *                   → losses, gradients (+ FedProx), global-norm clipping → SGD update → hooks
 *
 * What differs between the two callers lives in hooks: progress events, mid-epoch checkpoints and stop
 * requests (`afterStep`), validation and epoch-end checkpoints (`epochEnd`), abort checks (`beforeStep`).
 * Resuming is starting from a saved `EnginePosition`.
 *
 * Determinism: every random draw comes from a stream derived from (seed, purpose, epoch, position) — the
 * sampler's order (seed, 'sampler', epoch), each image's augmentation (seed, 'augment', epoch, index in the
 * epoch), and the detector's own sampling and Swin's drop path (`stepRandom`, reseeded to
 * (seed, 'detector', epoch, step) before each step) — so on the cpu backend a run is a pure function of the
 * recipe, the data and the position it starts from: a run resumed from a mid-epoch checkpoint produces the
 * same weights as one never stopped, and a federated round does not depend on the rounds before it except
 * through the weights (and the momentum it keeps).
 */
import { deriveSeed, FedcxrError, type Rng, rngFor } from '@fedcxr/base';
import type { Detector } from '../model.js';
import { tf } from '../tf.js';
import { buildAugmentation, type Sample } from '../transforms/transforms.js';
import type { OptimizerConfig, TrainingRecipe } from './config.js';
import type { DetectionDataset } from './dataset.js';
import { SgdOptimizer } from './optimizer.js';
import { EpochSampler } from './sampler.js';
import { learningRateAt } from './schedule.js';

/** Where training stands: what a checkpoint saves (beside weights and momentum) and a resume starts from. */
export interface EnginePosition {
  /** Next epoch to run, 0-based, counted from the start of training (federated: across rounds). */
  epoch: number;
  /** Next step inside that epoch. */
  stepInEpoch: number;
  /** Optimizer steps taken so far (the step-counted warm-up counts these). */
  globalStep: number;
  /** Sums of each loss over the steps done in the current epoch (so a resumed epoch's means are exact). */
  epochSums: Record<string, number>;
  /** Seconds spent in the current epoch's steps so far. */
  epochSeconds: number;
}

/** The position at the start of epoch `epoch` (0-based), its optimizer steps counted from the sampler. */
export function positionAtEpoch(
  data: DetectionDataset,
  recipe: Pick<TrainingRecipe, 'batchSize' | 'sampler'>,
  seed: number,
  epoch: number,
): EnginePosition {
  let globalStep = 0;
  if (epoch > 0) {
    if (recipe.sampler.repeatFactorThreshold === null && recipe.sampler.negativesRatio === null) {
      globalStep = epoch * Math.ceil(data.size / recipe.batchSize); // every epoch visits every image once
    } else {
      const sampler = epochSampler(data, recipe, seed);
      for (let e = 0; e < epoch; e++) globalStep += Math.ceil(sampler.epochIndices(e).length / recipe.batchSize);
    }
  }
  return { epoch, stepInEpoch: 0, globalStep, epochSums: {}, epochSeconds: 0 };
}

/** FedProx's proximal term (μ/2)·‖w − w_anchor‖², anchors aligned with the trained variables. */
export interface ProximalTerm {
  mu: number;
  anchors: readonly tf.Tensor[];
}

export interface EngineStepInfo {
  epoch: number;
  step: number;
  steps: number;
}

export interface EngineStepReport extends EngineStepInfo {
  lr: number;
  /** This step's losses, `loss` (their sum), and `grad_norm` when clipping. */
  losses: Record<string, number>;
  /** The epoch's last step (its end follows: `epochEnd`). */
  last: boolean;
}

export interface EngineEpochReport {
  epoch: number;
  steps: number;
  /** Images the epoch visited (repeats included). */
  images: number;
  /** The learning rate of the epoch's last step. */
  lr: number;
  /** Mean training losses over the epoch's steps. */
  train: Record<string, number>;
  /** Seconds the epoch's steps took (resumed epochs included). */
  seconds: number;
}

/** What callers do around the engine's steps. A hook that throws stops training there. */
export interface EngineHooks {
  epochStart?(info: { epoch: number; steps: number; startStep: number; images: number }): void | Promise<void>;
  /** Before each step (abort checks). */
  beforeStep?(info: EngineStepInfo): void | Promise<void>;
  /** After each step, the position already past it (progress, mid-epoch checkpoints, stop requests). */
  afterStep?(report: EngineStepReport): void | Promise<void>;
  /** After an epoch's last step, the position already at the next epoch (validation, checkpoints, logs). */
  epochEnd?(report: EngineEpochReport): void | Promise<void>;
}

export interface EpochEngineOptions {
  detector: Detector;
  data: DetectionDataset;
  recipe: TrainingRecipe;
  /** Seeds every stream (sampler, augmentation, the detector's step stream). */
  seed: number;
  /** The optimizer (its momentum is the caller's to keep, save and dispose): `createOptimizer(recipe.optimizer)`. */
  optimizer: SgdOptimizer;
  /** Where to start; advanced in place as steps are taken (a checkpoint saves it). */
  position: EnginePosition;
  /** Run up to this epoch (exclusive); default `recipe.epochs`. */
  untilEpoch?: number;
  /** The detector's random source (`trainingRandomness` wires it in), reseeded before each step. */
  stepRandom?: Rng;
  proximal?: ProximalTerm;
  hooks?: EngineHooks;
}

/** The recipe's optimizer: SGD with (Nesterov) momentum, weight decay except on normalization layers. */
export function createOptimizer(config: OptimizerConfig): SgdOptimizer {
  const noDecay = config.noDecayPatterns.map((p) => new RegExp(p));
  return new SgdOptimizer({
    momentum: config.momentum,
    nesterov: config.nesterov,
    weightDecay: config.weightDecay,
    noDecay: (name) => noDecay.some((re) => re.test(name)),
  });
}

/** Runs epochs `position.epoch` … `untilEpoch − 1` of `recipe` (see the module comment). */
export async function runEpochs(options: EpochEngineOptions): Promise<EnginePosition> {
  const { detector, data, recipe, seed, optimizer, hooks = {} } = options;
  const at = options.position;
  const untilEpoch = options.untilEpoch ?? recipe.epochs;
  const variables = detector.trainableVariables();
  const slotNames = variables.map((_, i) => `momentum.${i}`);
  const sampler = epochSampler(data, recipe, seed);
  const augment = buildAugmentation(recipe.augmentation);
  const batchSize = recipe.batchSize;
  while (at.epoch < untilEpoch) {
    const epoch = at.epoch;
    const indices = sampler.epochIndices(epoch);
    const steps = Math.ceil(indices.length / batchSize);
    await hooks.epochStart?.({ epoch, steps, startStep: at.stepInEpoch, images: indices.length });
    let lr = 0;
    for (let step = at.stepInEpoch; step < steps; step++) {
      await hooks.beforeStep?.({ epoch, step, steps });
      const started = performance.now();
      const batch = indices.slice(step * batchSize, (step + 1) * batchSize);
      const samples = await Promise.all(
        batch.map(async (imageIndex, k) => {
          const sample: Sample = { image: await data.loadImage(imageIndex), target: data.target(imageIndex) };
          return augment(sample, rngFor(seed, 'augment', epoch, step * batchSize + k));
        }),
      );
      options.stepRandom?.setState(deriveSeed(seed, 'detector', epoch, step));
      lr = learningRateAt(recipe.optimizer.lr, recipe.schedule, {
        globalStep: at.globalStep,
        epoch,
        epochFraction: step / steps,
        totalEpochs: recipe.epochs,
      });
      const losses = trainStep(
        detector,
        optimizer,
        variables,
        slotNames,
        samples,
        lr,
        recipe.optimizer.clipGradNorm,
        options.proximal,
      );
      for (const [name, value] of Object.entries(losses)) at.epochSums[name] = (at.epochSums[name] ?? 0) + value;
      at.globalStep++;
      at.stepInEpoch = step + 1;
      at.epochSeconds += (performance.now() - started) / 1000;
      await hooks.afterStep?.({ epoch, step, steps, lr, losses, last: step + 1 === steps });
    }
    const train = Object.fromEntries(Object.entries(at.epochSums).map(([k, v]) => [k, v / Math.max(1, steps)]));
    const seconds = at.epochSeconds;
    at.epoch = epoch + 1;
    at.stepInEpoch = 0;
    at.epochSums = {};
    at.epochSeconds = 0;
    await hooks.epochEnd?.({ epoch, steps, images: indices.length, lr, train, seconds });
  }
  return at;
}

function epochSampler(data: DetectionDataset, recipe: Pick<TrainingRecipe, 'sampler'>, seed: number): EpochSampler {
  const imageClasses = Array.from({ length: data.size }, (_, i) => Array.from(data.target(i).labels));
  return new EpochSampler({ imageClasses }, recipe.sampler, seed);
}

/**
 * One SGD step of the detector's summed losses on a batch (finite-loss check, optional FedProx gradient
 * μ(w − w_anchor), optional global-norm clipping, then the optimizer). Returns each loss, `loss`, and
 * `grad_norm` when clipping.
 */
export function trainStep(
  detector: Detector,
  optimizer: SgdOptimizer,
  variables: tf.Variable[],
  slotNames: string[],
  samples: Sample[],
  lr: number,
  clipGradNorm: number | null,
  proximal?: ProximalTerm,
): Record<string, number> {
  const images = samples.map((s) => s.image);
  const targets = samples.map((s) => s.target);
  const parts: Record<string, tf.Scalar> = {};
  const { value, grads } = tf.variableGrads(() => {
    const losses = detector.losses(images, targets);
    const names = Object.keys(losses).sort();
    if (names.length === 0) throw new FedcxrError('internal', `${detector.architecture} returned no losses`);
    for (const name of names) parts[name] = tf.keep(losses[name].clone());
    return tf.addN(names.map((n) => losses[n])) as tf.Scalar;
  }, variables);
  const out: Record<string, number> = {};
  for (const [name, tensor] of Object.entries(parts)) {
    out[name] = tensor.dataSync()[0];
    tensor.dispose();
  }
  out.loss = value.dataSync()[0];
  value.dispose();
  if (!Number.isFinite(out.loss)) {
    tf.dispose(Object.values(grads));
    throw new FedcxrError('diverged', `training loss is ${out.loss} (lower the learning rate?)`);
  }
  if (proximal && proximal.mu > 0) {
    // The gradient of (μ/2)·‖w − w_anchor‖² is μ(w − w_anchor); it joins the loss gradient before clipping.
    variables.forEach((variable, i) => {
      const g = grads[variable.name];
      if (!g) return;
      grads[variable.name] = tf.tidy(() => tf.add(g, tf.mul(tf.sub(variable, proximal.anchors[i]), proximal.mu)));
      g.dispose();
    });
  }
  if (clipGradNorm !== null) {
    // torch.nn.utils.clip_grad_norm_: scale every gradient by max / (total L2 norm + 1e-6) when the norm exceeds max.
    const norm = Math.sqrt(
      Object.values(grads).reduce((sum, g) => sum + tf.tidy(() => tf.sum(tf.square(g)).dataSync()[0]), 0),
    );
    out.grad_norm = norm;
    if (norm > clipGradNorm) {
      const scale = clipGradNorm / (norm + 1e-6);
      for (const [name, g] of Object.entries(grads)) {
        grads[name] = tf.mul(g, scale);
        g.dispose();
      }
    }
  }
  optimizer.applyGradients(variables, grads, lr, slotNames);
  tf.dispose(Object.values(grads));
  return out;
}
