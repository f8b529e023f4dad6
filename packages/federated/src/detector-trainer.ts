/**
 * LocalTrainer for any `@fedcxr/core` Detector (Faster R-CNN, or the tiny_grid test detector) on a site's
 * COCO split: loads the global weights, runs `plan.epochs` epochs of SGD with momentum on the detector's
 * own losses plus FedProx's (μ/2)·‖w − w_global‖² over its trainable variables, and returns the float
 * weights and aggregate metrics. `evaluate` is COCO mAP/AP50/AR@100 on the validation split.
 */
import {
  type DetectionDataset,
  type Detector,
  type DetectorImage,
  type DetectorTarget,
  detectionsToCocoResults,
  evaluateCoco,
  FedcxrError,
  type NamedTensors,
  tf,
} from '@fedcxr/core';
import type { Evaluation } from './protocol.js';
import { mulberry32 } from './tabular-trainer.js';
import type { LocalTrainer, LocalTrainPlan, LocalUpdateResult } from './trainer.js';

export interface DetectorTrainerOptions {
  learningRate?: number;
  momentum?: number;
  batchSize?: number;
}

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
  constructor(
    private readonly detector: Detector,
    private readonly train_: DetectionDataset,
    private readonly validation: DetectionDataset | undefined,
    private readonly options: DetectorTrainerOptions = {},
  ) {}

  async train(global: NamedTensors, plan: LocalTrainPlan, signal?: AbortSignal): Promise<LocalUpdateResult> {
    const n = this.train_.size;
    if (n === 0) throw new FedcxrError('detector_data', 'no training images at this site');
    this.detector.setWeights(global, { strict: false });
    const variables = this.detector.trainableVariables();
    const anchors = variables.map((v) => tf.clone(v));
    const optimizer = tf.train.momentum(
      plan.learningRate ?? this.options.learningRate ?? 0.01,
      this.options.momentum ?? 0.9,
    );
    const batchSize = plan.batchSize ?? this.options.batchSize ?? 2;
    const random = mulberry32(plan.seed);
    const order = Array.from({ length: n }, (_, i) => i);
    const sums: Record<string, number> = {};
    let steps = 0;
    try {
      for (let epoch = 0; epoch < plan.epochs; epoch++) {
        for (let i = n - 1; i > 0; i--) {
          const j = Math.floor(random() * (i + 1));
          [order[i], order[j]] = [order[j], order[i]];
        }
        for (let start = 0; start < n; start += batchSize) {
          if (signal?.aborted) throw new FedcxrError('training_aborted', 'local training was aborted');
          const rows = order.slice(start, start + batchSize);
          const images: DetectorImage[] = await Promise.all(rows.map((r) => this.train_.loadImage(r)));
          const targets: DetectorTarget[] = rows.map((r) => this.train_.target(r));
          const parts: Record<string, number> = {};
          const loss = optimizer.minimize(
            () => {
              const losses = this.detector.losses(images, targets);
              for (const [name, value] of Object.entries(losses)) parts[name] = value.dataSync()[0];
              let total = tf.addN(Object.values(losses)) as tf.Scalar;
              if (plan.mu > 0) {
                const proximal = tf.addN(variables.map((v, k) => tf.sum(tf.square(tf.sub(v, anchors[k])))));
                total = tf.add(total, tf.mul(plan.mu / 2, proximal)) as tf.Scalar;
              }
              return total;
            },
            true,
            variables,
          );
          const value = (await loss!.data())[0];
          loss!.dispose();
          if (epoch === plan.epochs - 1) {
            sums.loss = (sums.loss ?? 0) + value;
            for (const [name, v] of Object.entries(parts)) sums[name] = (sums[name] ?? 0) + v;
            steps++;
          }
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
      const metrics = Object.fromEntries(Object.entries(sums).map(([k, v]) => [metricName(k), v / Math.max(1, steps)]));
      return { weights: federatedWeights(this.detector), numExamples: n, metrics };
    } finally {
      optimizer.dispose();
      for (const a of anchors) a.dispose();
    }
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
