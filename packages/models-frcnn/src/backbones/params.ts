/**
 * The variables of one network part, keyed by torchvision state_dict name, each with its layout (so
 * torchvision checkpoints load and save through ops/layout.ts, the one place layouts are converted).
 * tfjs variables get auto-generated engine names: several models with the same keys can coexist.
 */
import { FedcxrError, type HostTensor, type NamedTensors, tf, type WeightLoadReport } from '@fedcxr/core';
import { tfjsToTorch, torchShape, torchToTfjs, type WeightLayout } from '../ops/layout.js';

/** Buffers torchvision saves that are derived or bookkeeping: accepted on load, never stored. */
export function isIgnoredBuffer(name: string): boolean {
  return name.endsWith('.num_batches_tracked') || name.endsWith('.relative_position_index');
}

/** One weight of a network part: its tfjs variable and how it converts to torchvision's layout. */
export interface Parameter {
  variable: tf.Variable;
  layout: WeightLayout;
}

export class ParamStore {
  private readonly vars = new Map<string, tf.Variable>();
  private readonly layouts = new Map<string, WeightLayout>();
  /** Integer buffers the architecture fixes (e.g. Swin's relative_position_index): checked on load. */
  private readonly fixedBuffers = new Map<string, Int32Array>();

  constructor(readonly prefix: string) {}

  /** Registers `prefix + name` with an initial value in tfjs layout. */
  add(name: string, initial: tf.Tensor, layout: WeightLayout, trainable: boolean): tf.Variable {
    const key = this.prefix + name;
    if (this.vars.has(key)) throw new FedcxrError('internal', `variable ${key} defined twice`);
    const variable = tf.variable(initial, trainable);
    initial.dispose();
    this.vars.set(key, variable);
    this.layouts.set(key, layout);
    return variable;
  }

  /** The variable `prefix + name`. */
  get(name: string): tf.Variable {
    const variable = this.vars.get(this.prefix + name);
    if (!variable) throw new FedcxrError('internal', `no variable ${this.prefix + name}`);
    return variable;
  }

  fixBuffer(name: string, values: Int32Array): void {
    this.fixedBuffers.set(this.prefix + name, values);
  }

  variables(): Map<string, tf.Variable> {
    return new Map(this.vars);
  }

  layoutOf(key: string): WeightLayout | undefined {
    return this.layouts.get(key);
  }

  /** Every variable with its layout, in the order they were added (torchvision's state_dict order). */
  parameters(): Map<string, Parameter> {
    return new Map([...this.vars].map(([key, variable]) => [key, { variable, layout: this.layouts.get(key)! }]));
  }

  /** Marks variables trainable or frozen by full key. */
  setTrainable(isTrainable: (key: string) => boolean): void {
    for (const [key, variable] of this.vars) variable.trainable = isTrainable(key);
  }

  loadWeights(weights: NamedTensors, options: { strict?: boolean; file?: string } = {}): WeightLoadReport {
    const report: WeightLoadReport = { loaded: [], missing: [], unexpected: [], ignored: [] };
    const fail = (message: string) => new FedcxrError('weights_mismatch', message, { file: options.file });
    const pending: [tf.Variable, HostTensor, string][] = [];
    for (const [key, tensor] of weights) {
      if (!key.startsWith(this.prefix)) continue;
      const variable = this.vars.get(key);
      if (!variable) {
        const fixed = this.fixedBuffers.get(key);
        if (fixed) {
          const same = tensor.data.length === fixed.length && fixed.every((v, i) => v === tensor.data[i]);
          if (!same) throw fail(`${key} differs from this architecture's (another window size?)`);
          report.ignored.push(key);
        } else if (isIgnoredBuffer(key)) report.ignored.push(key);
        else report.unexpected.push(key);
        continue;
      }
      const layout = this.layouts.get(key)!;
      const expected = torchShape(variable.shape, layout);
      if (expected.length !== tensor.shape.length || expected.some((d, i) => d !== tensor.shape[i])) {
        throw fail(`${key} has shape [${tensor.shape.join(', ')}], this model needs [${expected.join(', ')}]`);
      }
      pending.push([variable, tensor, key]);
    }
    const given = new Set(pending.map(([, , key]) => key));
    report.missing = [...this.vars.keys()].filter((key) => !given.has(key));
    if (options.strict && (report.missing.length > 0 || report.unexpected.length > 0)) {
      const list = (keys: string[]) =>
        `${keys.slice(0, 5).join(', ')}${keys.length > 5 ? ` (+${keys.length - 5})` : ''}`;
      const parts = [];
      if (report.missing.length > 0) parts.push(`missing ${report.missing.length}: ${list(report.missing)}`);
      if (report.unexpected.length > 0)
        parts.push(`unexpected ${report.unexpected.length}: ${list(report.unexpected)}`);
      throw fail(`weights do not match the ${this.prefix || 'model'} layout: ${parts.join('; ')}`);
    }
    for (const [variable, tensor, key] of pending) {
      const value = torchToTfjs(key, tensor, this.layouts.get(key)!);
      variable.assign(value);
      value.dispose();
      report.loaded.push(key);
    }
    return report;
  }

  getWeights(): NamedTensors {
    const out: NamedTensors = new Map();
    for (const [key, variable] of this.vars) out.set(key, tfjsToTorch(variable, this.layouts.get(key)!));
    return out;
  }

  dispose(): void {
    for (const variable of this.vars.values()) variable.dispose();
    this.vars.clear();
  }
}

// Initializers (torchvision's defaults), producing tfjs layouts.

let randomInitSkipped = false;
/** When set, each initializer draws from its own seed (base, base + 1, …): a seeded build is reproducible. */
let initSeed: { next: number } | null = null;

/** Runs a (synchronous) model construction whose random initial values follow `seed`. */
export function withInitSeed<T>(seed: number, build: () => T): T {
  const previous = initSeed;
  initSeed = { next: (Math.abs(Math.trunc(seed)) * 7919 + 17) % 2 ** 31 };
  try {
    return build();
  } finally {
    initSeed = previous;
  }
}

function drawSeed(): number | undefined {
  return initSeed ? initSeed.next++ : undefined;
}

/**
 * Runs a (synchronous) model construction with zeros instead of random draws: for models whose weights are
 * loaded right after (tfjs draws random numbers in JavaScript, seconds for ResNet-101).
 */
export function withoutRandomInit<T>(build: () => T): T {
  const previous = randomInitSkipped;
  randomInitSkipped = true;
  try {
    return build();
  } finally {
    randomInitSkipped = previous;
  }
}

/** kaiming_normal_(mode='fan_out', nonlinearity='relu') for a conv [kh, kw, in, out] (torchvision ResNet). */
export function kaimingNormalFanOut(kh: number, kw: number, inChannels: number, outChannels: number): tf.Tensor {
  if (randomInitSkipped) return tf.zeros([kh, kw, inChannels, outChannels]);
  const std = Math.sqrt(2 / (outChannels * kh * kw));
  return tf.randomNormal([kh, kw, inChannels, outChannels], 0, std, 'float32', drawSeed());
}

/** kaiming_uniform_(a) for a conv [kh, kw, in, out] (a = 1: torchvision's FPN; a = √5: nn.Conv2d's default). */
export function kaimingUniform(kh: number, kw: number, inChannels: number, outChannels: number, a: number): tf.Tensor {
  if (randomInitSkipped) return tf.zeros([kh, kw, inChannels, outChannels]);
  const gain = Math.sqrt(2 / (1 + a * a));
  const bound = gain * Math.sqrt(3 / (inChannels * kh * kw));
  return tf.randomUniform([kh, kw, inChannels, outChannels], -bound, bound, 'float32', drawSeed());
}

/** trunc_normal_(std) within ±2 (absolute, as torch's defaults) for a linear [in, out] or a table. */
export function truncatedNormal(shape: number[], std: number): tf.Tensor {
  if (randomInitSkipped) return tf.zeros(shape);
  const seed = drawSeed();
  return tf.tidy(() => tf.clipByValue(tf.truncatedNormal(shape, 0, std, 'float32', seed), -2, 2));
}

/** xavier_uniform_ for a linear [in, out]. */
export function xavierUniform(inFeatures: number, outFeatures: number): tf.Tensor {
  if (randomInitSkipped) return tf.zeros([inFeatures, outFeatures]);
  const bound = Math.sqrt(6 / (inFeatures + outFeatures));
  return tf.randomUniform([inFeatures, outFeatures], -bound, bound, 'float32', drawSeed());
}

/** normal(0, std) for small vectors (e.g. swin's MLP biases). */
export function normal(shape: number[], std: number): tf.Tensor {
  if (randomInitSkipped) return tf.zeros(shape);
  return tf.randomNormal(shape, 0, std, 'float32', drawSeed());
}
