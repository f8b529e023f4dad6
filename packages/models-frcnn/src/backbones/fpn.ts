/**
 * torchvision's FeaturePyramidNetwork with LastLevelMaxPool, in NHWC: 1×1 lateral convs (inner_blocks),
 * nearest-neighbour top-down upsampling to each lateral's size, 3×3 output convs (layer_blocks), and a
 * 'pool' level = max_pool2d(kernel 1, stride 2) of the last output.
 */
import { type FeatureSpec, tf } from '@fedcxr/core';
import { kaimingUniform, type ParamStore } from './params.js';

export const FPN_CHANNELS = 256;

/** Defines `fpn.inner_blocks.i.0.*` and `fpn.layer_blocks.i.0.*` (torchvision's init: kaiming_uniform a=1, bias 0). */
export function defineFpn(params: ParamStore, inChannels: readonly number[], outChannels = FPN_CHANNELS): void {
  inChannels.forEach((channels, i) => {
    params.add(`fpn.inner_blocks.${i}.0.weight`, kaimingUniform(1, 1, channels, outChannels, 1), 'conv', true);
    params.add(`fpn.inner_blocks.${i}.0.bias`, tf.zeros([outChannels]), 'plain', true);
    params.add(`fpn.layer_blocks.${i}.0.weight`, kaimingUniform(3, 3, outChannels, outChannels, 1), 'conv', true);
    params.add(`fpn.layer_blocks.${i}.0.bias`, tf.zeros([outChannels]), 'plain', true);
  });
}

/** Outputs '0'…'n-1' at the input strides, then 'pool' at twice the last stride. */
export function fpnOutputs(strides: readonly number[], outChannels = FPN_CHANNELS): FeatureSpec[] {
  const specs = strides.map((stride, i) => ({ name: String(i), stride, channels: outChannels }));
  specs.push({ name: 'pool', stride: strides[strides.length - 1] * 2, channels: outChannels });
  return specs;
}

/** features: the body's maps, finest first. Returns the FPN maps in fpnOutputs order. */
export function applyFpn(params: ParamStore, features: readonly tf.Tensor4D[]): tf.Tensor4D[] {
  const conv = (block: string, i: number, x: tf.Tensor4D, pad: number) =>
    tf.fused.conv2d({
      x,
      filter: params.get(`fpn.${block}.${i}.0.weight`) as tf.Tensor4D,
      strides: 1,
      pad,
      bias: params.get(`fpn.${block}.${i}.0.bias`),
    });
  const last = features.length - 1;
  let lastInner = conv('inner_blocks', last, features[last], 0);
  const results: tf.Tensor4D[] = [conv('layer_blocks', last, lastInner, 1)];
  for (let i = last - 1; i >= 0; i--) {
    const lateral = conv('inner_blocks', i, features[i], 0);
    const topDown = tf.image.resizeNearestNeighbor(lastInner, [lateral.shape[1], lateral.shape[2]], false, false);
    lastInner = tf.add(lateral, topDown);
    results.unshift(conv('layer_blocks', i, lastInner, 1));
  }
  results.push(lastLevelMaxPool(results[results.length - 1]));
  return results;
}

/**
 * LastLevelMaxPool: max_pool2d(kernel 1, stride 2) = every other row and column, starting at 0. Written
 * with pad/reshape/slice (whose gradients every backend has) because the wasm backend's MaxPoolGrad is
 * wrong for kernel 1, stride 2 on odd sizes (measured against cpu).
 */
export function lastLevelMaxPool(x: tf.Tensor4D): tf.Tensor4D {
  const [batch, height, width, channels] = x.shape;
  const padded =
    height % 2 || width % 2
      ? tf.pad(x, [
          [0, 0],
          [0, height % 2],
          [0, width % 2],
          [0, 0],
        ])
      : x;
  const h2 = Math.ceil(height / 2);
  const w2 = Math.ceil(width / 2);
  const pairs = tf.reshape(padded, [batch * h2, 2, w2, 2 * channels]);
  return tf.reshape(tf.slice(pairs, [0, 0, 0, 0], [-1, 1, -1, channels]), [batch, h2, w2, channels]);
}
