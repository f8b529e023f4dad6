/**
 * The one place where PyTorch weight layouts meet TensorFlow.js layouts: convolution kernels are OIHW in
 * torch and HWIO in tfjs; linear weights are [out, in] in torch and [in, out] for tf.matMul.
 */
import type { HostTensor } from '@fedcxr/core';
import { FedcxrError, tf } from '@fedcxr/core';

export type WeightLayout = 'conv' | 'linear' | 'plain';

/** The tfjs permutation that takes a torch-layout tensor of this kind to the tfjs layout. */
function toTfjsPermutation(layout: WeightLayout, rank: number): number[] | null {
  if (layout === 'conv' && rank === 4) return [2, 3, 1, 0];
  if (layout === 'linear' && rank === 2) return [1, 0];
  return null;
}

/** A torch-layout host tensor → a tfjs-layout float32 tensor. */
export function torchToTfjs(name: string, host: HostTensor, layout: WeightLayout): tf.Tensor {
  const rank = host.shape.length;
  if ((layout === 'conv' && rank !== 4) || (layout === 'linear' && rank !== 2)) {
    throw new FedcxrError('weight_shape', `${name}: expected a ${layout} weight, got shape [${host.shape.join(', ')}]`);
  }
  return tf.tidy(() => {
    const t = tf.tensor(Float32Array.from(host.data), host.shape, 'float32');
    const perm = toTfjsPermutation(layout, rank);
    return perm ? tf.transpose(t, perm) : t;
  });
}

/** A tfjs-layout tensor → a torch-layout host tensor. */
export function tfjsToTorch(tensor: tf.Tensor, layout: WeightLayout): HostTensor {
  const perm = layout === 'conv' ? [3, 2, 0, 1] : layout === 'linear' ? [1, 0] : null;
  const t = perm && tensor.rank === perm.length ? tf.transpose(tensor, perm) : tensor;
  const data = t.dataSync() as Float32Array;
  const shape = [...t.shape];
  if (t !== tensor) t.dispose();
  return { dtype: 'float32', shape, data: Float32Array.from(data) };
}

/** The torch shape of a tfjs-layout tensor shape. */
export function torchShape(shape: readonly number[], layout: WeightLayout): number[] {
  if (layout === 'conv' && shape.length === 4) return [shape[3], shape[2], shape[0], shape[1]];
  if (layout === 'linear' && shape.length === 2) return [shape[1], shape[0]];
  return [...shape];
}
