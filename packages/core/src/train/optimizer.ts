/**
 * SGD with momentum, Nesterov and decoupled-from-frozen weight decay, with exactly PyTorch's
 * `torch.optim.SGD(params, lr, momentum, weight_decay, nesterov=True)` update (dampening 0):
 *
 *   g ← g + wd·p                      (L2 weight decay folded into the gradient, skipped for no-decay params)
 *   b ← g                on the first step, else  b ← μ·b + g
 *   g ← g + μ·b  (Nesterov)   or   g ← b
 *   p ← p − lr·g
 *
 * Why not tfjs' MomentumOptimizer: its Nesterov rule is the same, but it has no weight decay, keys its
 * momentum slots by position in whatever gradient map it is handed (fragile to save and restore), and its
 * `setMomentum` does not update the scalar it actually multiplies by. This one names its slots, takes the
 * learning rate per step (schedules), and saves/restores its state for exact resumption.
 */
import { FedcxrError } from '@fedcxr/base';
import type { NamedTensors } from '../tensors.js';
import { tf } from '../tf.js';

export interface SgdOptions {
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  /** Variables (by tfjs variable name) that get no weight decay. */
  noDecay?: (variableName: string) => boolean;
}

export class SgdOptimizer {
  private readonly buffers = new Map<string, tf.Variable>();
  /** Optimizer steps taken (PyTorch's per-parameter `step`; also saved for resumption). */
  iterations = 0;

  constructor(private readonly options: SgdOptions) {
    if (options.nesterov && options.momentum <= 0) {
      throw new FedcxrError('invalid_config', 'Nesterov momentum requires momentum > 0 (as in PyTorch)');
    }
  }

  /**
   * Applies one update. `grads` maps tfjs variable names to gradients (what tf.variableGrads returns);
   * `slotNames` gives each variable its stable slot name (defaults to the variable's own name).
   */
  applyGradients(
    variables: readonly tf.Variable[],
    grads: Record<string, tf.Tensor>,
    lr: number,
    slotNames?: readonly string[],
  ): void {
    const { momentum, nesterov, weightDecay } = this.options;
    variables.forEach((variable, i) => {
      const grad = grads[variable.name];
      if (!grad) return; // no gradient (unused in this batch): PyTorch skips params whose grad is None
      const slot = slotNames?.[i] ?? variable.name;
      const decay = weightDecay > 0 && !this.options.noDecay?.(variable.name) ? weightDecay : 0;
      tf.tidy(() => {
        let g: tf.Tensor = decay > 0 ? tf.add(grad, tf.mul(variable, decay)) : grad;
        if (momentum > 0) {
          const previous = this.buffers.get(slot);
          let buffer: tf.Tensor;
          if (previous) {
            buffer = tf.add(tf.mul(previous, momentum), g);
            previous.assign(buffer);
          } else {
            buffer = g;
            this.buffers.set(slot, tf.keep(tf.variable(tf.clone(g), false, `sgd_momentum/${slot}/${uniqueId++}`)));
          }
          g = nesterov ? tf.add(g, tf.mul(buffer, momentum)) : buffer;
        }
        variable.assign(tf.sub(variable, tf.mul(g, lr)));
      });
    });
    this.iterations++;
  }

  /** Momentum buffers by slot name, on the host (for checkpoints). */
  async getSlots(): Promise<NamedTensors> {
    const slots: NamedTensors = new Map();
    for (const [name, buffer] of this.buffers) {
      slots.set(name, { dtype: 'float32', shape: [...buffer.shape], data: (await buffer.data()) as Float32Array });
    }
    return slots;
  }

  setSlots(slots: NamedTensors): void {
    this.disposeBuffers();
    for (const [name, host] of slots) {
      if (host.dtype !== 'float32') {
        throw new FedcxrError('bad_checkpoint', `optimizer slot ${name} is ${host.dtype}, expected float32`);
      }
      this.buffers.set(
        name,
        tf.variable(tf.tensor(host.data as Float32Array, host.shape), false, `sgd_momentum/${name}/${uniqueId++}`),
      );
    }
  }

  /** Checks that restored slots fit the variables they will update (a checkpoint from another model fails here). */
  checkSlots(variables: readonly tf.Variable[], slotNames: readonly string[]): void {
    variables.forEach((variable, i) => {
      const buffer = this.buffers.get(slotNames[i]);
      if (buffer && buffer.shape.join('x') !== variable.shape.join('x')) {
        throw new FedcxrError(
          'bad_checkpoint',
          `optimizer slot ${slotNames[i]} has shape [${buffer.shape}], the model's variable has [${variable.shape}]`,
        );
      }
    });
  }

  dispose(): void {
    this.disposeBuffers();
  }

  private disposeBuffers(): void {
    for (const buffer of this.buffers.values()) buffer.dispose();
    this.buffers.clear();
  }
}

let uniqueId = 0;
