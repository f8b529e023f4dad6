/**
 * A real, small LocalTrainer: a softmax-regression or one-hidden-layer MLP classifier in tfjs, trained
 * with minibatch SGD on the site's feature vectors, with FedProx's proximal term in the loss. It proves
 * the federation end to end (and runs the simulation) while the detector trainer is written; weights are
 * named like torch's nn.Linear (`fc1.weight` is [out, in]).
 */
import { FedcxrError, type NamedTensors, Rng, tf } from '@fedcxr/core';
import type { Evaluation } from './protocol.js';
import type { LocalTrainer, LocalTrainPlan, LocalUpdateResult } from './trainer.js';

export interface TabularModelOptions {
  features: number;
  classes: number;
  /** Hidden units; 0 = softmax regression. */
  hidden: number;
}

export interface TabularData {
  /** Row-major [n, features]. */
  x: Float32Array;
  /** Class index per row. */
  y: Int32Array;
}

export function tabularRows(data: TabularData): number {
  return data.y.length;
}

/**
 * @deprecated Use core's `Rng` (`new Rng(seed).next()`), the repo's one generator; this is that stream
 * (mulberry32 from `seed`) as a plain function, kept for callers of the old export.
 */
export function mulberry32(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.next();
}

/**
 * Box–Muller over any uniform source: dp.ts feeds it the OS CSPRNG (DP noise must be unpredictable, so it is
 * the one draw that does not come from core's seeded Rng, whose `normal()` is this same transform).
 */
export function gaussian(random: () => number): number {
  const u = Math.max(random(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/** Makes each round's tf variable names unique (tfjs keeps a global registry of names). */
let variableGeneration = 0;

function layerShapes(options: TabularModelOptions): [string, number[]][] {
  const { features, classes, hidden } = options;
  if (hidden === 0)
    return [
      ['fc1.weight', [classes, features]],
      ['fc1.bias', [classes]],
    ];
  return [
    ['fc1.weight', [hidden, features]],
    ['fc1.bias', [hidden]],
    ['fc2.weight', [classes, hidden]],
    ['fc2.bias', [classes]],
  ];
}

/** Initial global model (Glorot-uniform weights, zero biases), reproducible from the seed. */
export function createTabularModel(options: TabularModelOptions, seed: number): NamedTensors {
  const rng = new Rng(seed);
  const out: NamedTensors = new Map();
  for (const [name, shape] of layerShapes(options)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (name.endsWith('.weight')) {
      const limit = Math.sqrt(6 / (shape[0] + shape[1]));
      for (let i = 0; i < n; i++) data[i] = (rng.next() * 2 - 1) * limit;
    }
    out.set(name, { dtype: 'float32', shape, data });
  }
  return out;
}

export class TabularTrainer implements LocalTrainer {
  constructor(
    private readonly options: TabularModelOptions,
    private readonly train_: TabularData,
    private readonly validation: TabularData,
    private readonly defaults: { learningRate: number; batchSize: number } = { learningRate: 0.1, batchSize: 32 },
  ) {
    for (const [label, data] of [
      ['training', train_],
      ['validation', validation],
    ] as const) {
      if (data.x.length !== data.y.length * options.features)
        throw new FedcxrError('tabular_data', `${label} data: ${data.x.length} values for ${data.y.length} rows`);
    }
  }

  /** Local steps per round happen in one tf.tidy scope per batch; variables are disposed at the end. */
  async train(global: NamedTensors, plan: LocalTrainPlan, signal?: AbortSignal): Promise<LocalUpdateResult> {
    const n = tabularRows(this.train_);
    if (n === 0) throw new FedcxrError('tabular_data', 'no training rows');
    const names = layerShapes(this.options).map(([name]) => name);
    const globals = names.map((name) => this.tensorOf(global, name));
    const generation = ++variableGeneration;
    const variables = globals.map((g, i) => tf.variable(g, true, `${names[i]}_${plan.round}_${generation}`));
    const optimizer = tf.train.sgd(plan.learningRate ?? this.defaults.learningRate);
    const batchSize = plan.batchSize ?? this.defaults.batchSize;
    const rng = new Rng(plan.seed);
    const order = Array.from({ length: n }, (_, i) => i);
    let lossSum = 0;
    let batches = 0;
    let correct = 0;
    try {
      for (let epoch = 0; epoch < plan.epochs; epoch++) {
        rng.shuffle(order);
        const lastEpoch = epoch === plan.epochs - 1;
        for (let start = 0; start < n; start += batchSize) {
          if (signal?.aborted) throw new FedcxrError('training_aborted', 'local training was aborted');
          const rows = order.slice(start, start + batchSize);
          const { x, y } = this.batch(this.train_, rows);
          const loss = optimizer.minimize(
            () =>
              tf.tidy(() => {
                const logits = this.forward(variables, x);
                let objective = tf.losses.softmaxCrossEntropy(y, logits) as tf.Scalar;
                if (plan.mu > 0) {
                  // FedProx: pull the local weights toward the round's global model.
                  const proximal = tf.addN(variables.map((v, k) => tf.sum(tf.square(tf.sub(v, globals[k])))));
                  objective = tf.add(objective, tf.mul(plan.mu / 2, proximal)) as tf.Scalar;
                }
                if (lastEpoch) {
                  const hits = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), tf.argMax(y, 1)), 'int32'));
                  correct += hits.dataSync()[0];
                }
                return objective;
              }),
            true,
          );
          if (lastEpoch) {
            lossSum += (await loss!.data())[0];
            batches++;
          }
          loss?.dispose();
          x.dispose();
          y.dispose();
          // Yield to the event loop so sockets stay alive (heartbeats) during long local training.
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
      const weights: NamedTensors = new Map();
      for (let k = 0; k < names.length; k++) {
        weights.set(names[k], {
          dtype: 'float32',
          shape: [...variables[k].shape],
          data: Float32Array.from(await variables[k].data()),
        });
      }
      return { weights, numExamples: n, metrics: { loss: lossSum / Math.max(1, batches), accuracy: correct / n } };
    } finally {
      optimizer.dispose();
      for (const v of variables) v.dispose();
      for (const g of globals) g.dispose();
    }
  }

  async evaluate(global: NamedTensors): Promise<Evaluation> {
    return evaluateTabular(this.options, global, this.validation);
  }

  private tensorOf(model: NamedTensors, name: string): tf.Tensor {
    const t = model.get(name);
    if (!t) throw new FedcxrError('federated_missing_tensor', `global model lacks ${name}`);
    return tf.tensor(t.data as Float32Array, t.shape, 'float32');
  }

  private batch(data: TabularData, rows: number[]): { x: tf.Tensor2D; y: tf.Tensor2D } {
    const d = this.options.features;
    const x = new Float32Array(rows.length * d);
    rows.forEach((row, i) => {
      x.set(data.x.subarray(row * d, row * d + d), i * d);
    });
    const labels = Int32Array.from(rows.map((row) => data.y[row]));
    return {
      x: tf.tensor2d(x, [rows.length, d]),
      y: tf.tidy(() => tf.oneHot(tf.tensor1d(labels, 'int32'), this.options.classes).toFloat()) as tf.Tensor2D,
    };
  }

  private forward(weights: tf.Tensor[], x: tf.Tensor2D): tf.Tensor2D {
    return forwardTabular(this.options, weights, x);
  }
}

function forwardTabular(options: TabularModelOptions, w: tf.Tensor[], x: tf.Tensor2D): tf.Tensor2D {
  const first = tf.add(tf.matMul(x, w[0], false, true), w[1]) as tf.Tensor2D;
  if (options.hidden === 0) return first;
  return tf.add(tf.matMul(tf.relu(first), w[2], false, true), w[3]) as tf.Tensor2D;
}

/** Mean cross-entropy and accuracy of `model` on `data` (also what the centralized baseline reports). */
export function evaluateTabular(options: TabularModelOptions, model: NamedTensors, data: TabularData): Evaluation {
  const n = tabularRows(data);
  if (n === 0) return { numExamples: 0, metrics: { loss: 0, accuracy: 0 } };
  return tf.tidy(() => {
    const weights = layerShapes(options).map(([name, shape]) => {
      const t = model.get(name);
      if (!t) throw new FedcxrError('federated_missing_tensor', `model lacks ${name}`);
      return tf.tensor(t.data as Float32Array, shape, 'float32');
    });
    const x = tf.tensor2d(data.x, [n, options.features]);
    const y = tf.oneHot(tf.tensor1d(data.y, 'int32'), options.classes).toFloat();
    const logits = forwardTabular(options, weights, x);
    const loss = tf.losses.softmaxCrossEntropy(y, logits).dataSync()[0];
    const hits = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), tf.argMax(y, 1)), 'int32')).dataSync()[0];
    return { numExamples: n, metrics: { loss, accuracy: hits / n } };
  });
}

/**
 * Centralized baseline: the same model, optimizer and total epochs on the union of the sites' data.
 * (FedProx's term is 0 here: there is no global model to stay near.)
 */
export async function trainCentralized(
  options: TabularModelOptions,
  initial: NamedTensors,
  data: TabularData,
  epochs: number,
  hyper: { learningRate: number; batchSize: number; seed: number },
): Promise<NamedTensors> {
  const trainer = new TabularTrainer(options, data, { x: new Float32Array(0), y: new Int32Array(0) }, hyper);
  const result = await trainer.train(initial, {
    round: 1,
    epochs,
    mu: 0,
    seed: hyper.seed,
    learningRate: hyper.learningRate,
    batchSize: hyper.batchSize,
  });
  return result.weights!;
}
