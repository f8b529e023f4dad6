/**
 * What every FPN backbone here shares: checking the input, running the body then the FPN, and the weight
 * plumbing through its ParamStore (torchvision names and layouts). Subclasses supply the body.
 */
import {
  type Backbone,
  type FeatureSpec,
  FedcxrError,
  type NamedTensors,
  tf,
  type WeightLoadReport,
} from '@fedcxr/core';
import { applyFpn } from './fpn.js';
import type { ParamStore } from './params.js';

export abstract class FpnBackbone implements Backbone {
  abstract readonly name: string;
  abstract readonly outputs: readonly FeatureSpec[];
  protected abstract readonly params: ParamStore;

  /** The body's stage outputs (C2…C5), which the FPN turns into '0'…'3' and 'pool'. */
  protected abstract applyBody(images: tf.Tensor4D, training: boolean): tf.Tensor4D[];

  apply(images: tf.Tensor4D, training: boolean): Map<string, tf.Tensor4D> {
    if (images.rank !== 4 || images.shape[3] !== 3) {
      throw new FedcxrError(
        'invalid_input',
        `${this.name} expects [N, H, W, 3] images, got [${images.shape.join(', ')}]`,
      );
    }
    const maps = tf.tidy(() => applyFpn(this.params, this.applyBody(images, training)));
    return new Map(this.outputs.map((spec, i) => [spec.name, maps[i]]));
  }

  variables(): Map<string, tf.Variable> {
    return this.params.variables();
  }

  /** How a variable's tfjs layout maps to torchvision's ('conv' HWIO↔OIHW, 'linear' [in,out]↔[out,in], 'plain'). */
  layoutOf(name: string): 'conv' | 'linear' | 'plain' | undefined {
    return this.params.layoutOf(name);
  }

  loadWeights(weights: NamedTensors, options?: { strict?: boolean; file?: string }): WeightLoadReport {
    return this.params.loadWeights(weights, options);
  }

  getWeights(): NamedTensors {
    return this.params.getWeights();
  }

  dispose(): void {
    this.params.dispose();
  }
}
