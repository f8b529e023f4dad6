/**
 * The seam between the federation and a model: a site agent only talks to a LocalTrainer. The Faster
 * R-CNN trainer plugs in by implementing it (see README.md "Plugging in a trainer"); the federation never
 * sees images, only NamedTensors in and a delta (or weights), an example count and aggregate metrics out.
 */
import type { NamedTensors } from '@fedcxr/core';
import type { Evaluation, Metrics } from './protocol.js';

/** What the coordinator asks of one local training run. */
export interface LocalTrainPlan {
  /** 1-based; the detector trainer trains epochs (round − 1)·epochs … round·epochs − 1 of one run. */
  round: number;
  /** Local epochs this round. */
  epochs: number;
  /** FedProx μ: the local objective adds (μ/2)·‖w − w_global‖². 0 is plain FedAvg. */
  mu: number;
  /** Overrides the site recipe's `optimizer.lr` when set. */
  learningRate?: number;
  /** Overrides the site recipe's `batchSize` when set. */
  batchSize?: number;
  /** Seeds the round's streams (epoch order, augmentation, the detector's draws; core's Rng). */
  seed: number;
}

export interface LocalUpdateResult {
  /** Either the new local weights or their difference from the global model (the agent derives the other). */
  weights?: NamedTensors;
  delta?: NamedTensors;
  /** Training examples seen per epoch: the FedAvg weight. */
  numExamples: number;
  /** Aggregate training metrics only (mean loss, accuracy, ...), never per-example values. */
  metrics: Metrics;
}

export interface LocalTrainer {
  /** Trains from `global` (same names/shapes as the coordinator's model); honours `signal` between steps. */
  train(global: NamedTensors, plan: LocalTrainPlan, signal?: AbortSignal): Promise<LocalUpdateResult>;
  /** Evaluates `global` on the site's validation split: aggregate metrics only. */
  evaluate(global: NamedTensors): Promise<Evaluation>;
  dispose?(): void;
}
