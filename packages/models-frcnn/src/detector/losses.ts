/**
 * Loss pieces shared by the RPN and the box head, as torch.nn.functional defines them. Selections are
 * applied as host-built masks rather than tf.gather: gather's gradient (a segment sum) is very slow on
 * tfjs' cpu backend.
 */
import { tf } from '@fedcxr/core';

export type Tensors = Record<string, tf.Tensor>;

/** F.smooth_l1_loss(..., beta, reduction='sum'). */
export function smoothL1(input: tf.Tensor, target: tf.Tensor, beta: number): tf.Scalar {
  return tf.tidy(() => tf.sum(smoothL1Elements(input, target, beta)));
}

/** F.smooth_l1_loss(..., beta, reduction='none'). */
export function smoothL1Elements(input: tf.Tensor, target: tf.Tensor, beta: number): tf.Tensor {
  return tf.tidy(() => {
    // 0.5 n²/β below β, n − β/2 above, written with min() so it stays differentiable in tfjs.
    const n = tf.abs(tf.sub(input, target));
    const inside = tf.minimum(n, beta);
    return tf.add(tf.div(tf.mul(tf.square(inside), 0.5), beta), tf.sub(n, inside));
  });
}

/** F.cross_entropy with integer labels, mean reduction. */
export function crossEntropy(logits: tf.Tensor2D, labels: Int32Array): tf.Scalar {
  return tf.tidy(() => {
    const oneHot = tf.oneHot(tf.tensor1d(labels, 'int32'), logits.shape[1]);
    return tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(logits), oneHot), 1)));
  }) as tf.Scalar;
}
