import { type BackboneOptions, type FeatureSpec, FedcxrError, tf } from '@fedcxr/core';
import { defineFpn, fpnOutputs } from './fpn.js';
import { FpnBackbone } from './fpn-backbone.js';
import { kaimingNormalFanOut, ParamStore } from './params.js';

/** torchvision's FrozenBatchNorm2d eps. */
export const FROZEN_BN_EPS = 1e-5;

export interface ResNetSpec {
  block: 'basic' | 'bottleneck';
  layers: [number, number, number, number];
}

export const RESNET_SPECS: Record<string, ResNetSpec> = {
  resnet18: { block: 'basic', layers: [2, 2, 2, 2] },
  resnet34: { block: 'basic', layers: [3, 4, 6, 3] },
  resnet50: { block: 'bottleneck', layers: [3, 4, 6, 3] },
  resnet101: { block: 'bottleneck', layers: [3, 4, 23, 3] },
  resnet152: { block: 'bottleneck', layers: [3, 8, 36, 3] },
};

export interface ResNetFpnOptions extends BackboneOptions {
  /** torchvision's trainable_layers: how many of layer4, layer3, layer2, layer1, conv1 train (default 3). */
  trainableLayers?: number;
  /** Key prefix of every variable (default 'backbone.', as inside torchvision's FasterRCNN). */
  prefix?: string;
  /** false: zeros instead of random initial values (weights are loaded right after). Default true. */
  randomInit?: boolean;
}

interface BlockPlan {
  name: string;
  inChannels: number;
  width: number;
  outChannels: number;
  stride: number;
  downsample: boolean;
}

export class ResNetFpnBackbone extends FpnBackbone {
  readonly outputs: readonly FeatureSpec[];
  readonly trainableLayers: number;
  protected readonly params: ParamStore;
  private readonly stages: BlockPlan[][] = [];

  constructor(
    readonly name: string,
    readonly spec: ResNetSpec,
    options: ResNetFpnOptions = {},
  ) {
    super();
    const trainable = options.trainableLayers ?? 3;
    if (!Number.isInteger(trainable) || trainable < 0 || trainable > 5) {
      throw new FedcxrError('invalid_config', `trainableLayers must be an integer 0–5, got ${String(trainable)}`);
    }
    this.trainableLayers = trainable;
    this.params = new ParamStore(options.prefix ?? 'backbone.');
    const expansion = spec.block === 'bottleneck' ? 4 : 1;
    const p = this.params;
    p.add('body.conv1.weight', kaimingNormalFanOut(7, 7, 3, 64), 'conv', true);
    this.defineBn('body.bn1', 64);
    let inChannels = 64;
    const stageOut: number[] = [];
    spec.layers.forEach((count, stage) => {
      const planes = 64 * 2 ** stage;
      const blocks: BlockPlan[] = [];
      for (let b = 0; b < count; b++) {
        const stride = b === 0 && stage > 0 ? 2 : 1;
        const outChannels = planes * expansion;
        const plan: BlockPlan = {
          name: `body.layer${stage + 1}.${b}`,
          inChannels,
          width: planes,
          outChannels,
          stride,
          downsample: stride !== 1 || inChannels !== outChannels,
        };
        this.defineBlock(plan);
        blocks.push(plan);
        inChannels = outChannels;
      }
      this.stages.push(blocks);
      stageOut.push(inChannels);
    });
    defineFpn(p, stageOut);
    this.outputs = fpnOutputs([4, 8, 16, 32]);
    // torchvision's resnet_fpn_backbone: parameters outside layers_to_train are frozen; FPN always trains.
    const layersToTrain = ['layer4', 'layer3', 'layer2', 'layer1', 'conv1'].slice(0, trainable);
    if (trainable === 5) layersToTrain.push('bn1');
    const body = `${p.prefix}body.`;
    p.setTrainable((key) => {
      if (!key.startsWith(body)) return true;
      if (
        /\.(running_mean|running_var)$/.test(key) ||
        /bn\d\.|downsample\.1\./.test(key) ||
        key.startsWith(`${body}bn1.`)
      )
        return false; // FrozenBatchNorm2d holds buffers only
      const local = key.slice(body.length);
      return layersToTrain.some((layer) => local.startsWith(layer));
    });
  }

  private defineBn(name: string, channels: number): void {
    const p = this.params;
    p.add(`${name}.weight`, tf.ones([channels]), 'plain', false);
    p.add(`${name}.bias`, tf.zeros([channels]), 'plain', false);
    p.add(`${name}.running_mean`, tf.zeros([channels]), 'plain', false);
    p.add(`${name}.running_var`, tf.ones([channels]), 'plain', false);
  }

  private defineBlock(b: BlockPlan): void {
    const p = this.params;
    if (this.spec.block === 'bottleneck') {
      p.add(`${b.name}.conv1.weight`, kaimingNormalFanOut(1, 1, b.inChannels, b.width), 'conv', true);
      this.defineBn(`${b.name}.bn1`, b.width);
      p.add(`${b.name}.conv2.weight`, kaimingNormalFanOut(3, 3, b.width, b.width), 'conv', true);
      this.defineBn(`${b.name}.bn2`, b.width);
      p.add(`${b.name}.conv3.weight`, kaimingNormalFanOut(1, 1, b.width, b.outChannels), 'conv', true);
      this.defineBn(`${b.name}.bn3`, b.outChannels);
    } else {
      p.add(`${b.name}.conv1.weight`, kaimingNormalFanOut(3, 3, b.inChannels, b.width), 'conv', true);
      this.defineBn(`${b.name}.bn1`, b.width);
      p.add(`${b.name}.conv2.weight`, kaimingNormalFanOut(3, 3, b.width, b.outChannels), 'conv', true);
      this.defineBn(`${b.name}.bn2`, b.outChannels);
    }
    if (b.downsample) {
      p.add(`${b.name}.downsample.0.weight`, kaimingNormalFanOut(1, 1, b.inChannels, b.outChannels), 'conv', true);
      this.defineBn(`${b.name}.downsample.1`, b.outChannels);
    }
  }

  /**
   * conv (no bias) then FrozenBatchNorm2d, folded: conv(x, w·scale) + (bias − mean·scale) with
   * scale = weight·rsqrt(var + eps), exactly FrozenBatchNorm2d's affine form.
   */
  private convBn(x: tf.Tensor4D, conv: string, bn: string, stride: number, pad: number, relu: boolean): tf.Tensor4D {
    const p = this.params;
    const scale = tf.mul(p.get(`${bn}.weight`), tf.rsqrt(tf.add(p.get(`${bn}.running_var`), FROZEN_BN_EPS)));
    const shift = tf.sub(p.get(`${bn}.bias`), tf.mul(p.get(`${bn}.running_mean`), scale));
    const filter = tf.mul(p.get(`${conv}.weight`), scale) as tf.Tensor4D;
    return tf.fused.conv2d({ x, filter, strides: stride, pad, bias: shift, activation: relu ? 'relu' : 'linear' });
  }

  private block(x: tf.Tensor4D, b: BlockPlan): tf.Tensor4D {
    const identity = b.downsample
      ? this.convBn(x, `${b.name}.downsample.0`, `${b.name}.downsample.1`, b.stride, 0, false)
      : x;
    let out: tf.Tensor4D;
    if (this.spec.block === 'bottleneck') {
      out = this.convBn(x, `${b.name}.conv1`, `${b.name}.bn1`, 1, 0, true);
      out = this.convBn(out, `${b.name}.conv2`, `${b.name}.bn2`, b.stride, 1, true);
      out = this.convBn(out, `${b.name}.conv3`, `${b.name}.bn3`, 1, 0, false);
    } else {
      out = this.convBn(x, `${b.name}.conv1`, `${b.name}.bn1`, b.stride, 1, true);
      out = this.convBn(out, `${b.name}.conv2`, `${b.name}.bn2`, 1, 1, false);
    }
    return tf.relu(tf.add(out, identity)) as tf.Tensor4D;
  }

  /** The body's layer1..layer4 outputs (strides 4, 8, 16, 32). */
  applyBody(images: tf.Tensor4D): tf.Tensor4D[] {
    const features: tf.Tensor4D[] = [];
    // With conv1 frozen (trainableLayers < 5; its input is the image, so no gradient flows below it) the frozen
    // stem and stages run as gradient-free steps while a gradient is being recorded: tfjs' tape then keeps none
    // of their activations, the network's largest (conv1 and layer1 at 1/2 and 1/4 resolution). Same values.
    const frozen = this.trainableLayers < 5 && tapeIsRecording() ? 4 - this.trainableLayers : -1;
    let x: tf.Tensor4D;
    if (frozen >= 0) {
      x = withoutGradient(images, (input) => {
        const stem = this.stem(input);
        return frozen > 0 ? this.stage(stem, 0) : stem;
      });
      if (frozen > 0) features.push(x);
      for (let s = 1; s < frozen; s++) {
        x = withoutGradient(x, (input) => this.stage(input, s));
        features.push(x);
      }
    } else {
      x = this.stem(images);
    }
    for (let s = Math.max(frozen, 0); s < this.stages.length; s++) {
      x = this.stage(x, s);
      features.push(x);
    }
    return features;
  }

  private stem(images: tf.Tensor4D): tf.Tensor4D {
    const x = this.convBn(images, 'body.conv1', 'body.bn1', 2, 3, true);
    // After ReLU every value is ≥ 0, so tfjs' padding of max pools matches torch's −∞ padding.
    return tf.maxPool(x, 3, 2, 1);
  }

  private stage(x: tf.Tensor4D, index: number): tf.Tensor4D {
    let out = x;
    for (const b of this.stages[index]) out = this.block(out, b);
    return out;
  }
}

function tapeIsRecording(): boolean {
  return (tf.engine() as unknown as { state: { gradientDepth: number } }).state.gradientDepth > 0;
}

/** f(x) as one tape step with a zero gradient: a customGrad's forward ops are not recorded (nor kept). */
function withoutGradient(x: tf.Tensor4D, f: (input: tf.Tensor4D) => tf.Tensor4D): tf.Tensor4D {
  return tf.customGrad(((input: tf.Tensor4D) => ({
    value: f(input),
    gradFunc: () => [tf.zerosLike(input)],
  })) as unknown as Parameters<typeof tf.customGrad>[0])(x) as tf.Tensor4D;
}
