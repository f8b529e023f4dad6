import { tf } from '@fedcxr/core';
import { expect, it } from 'vitest';
import { denseLayer } from './faster-rcnn.js';

it('denseLayer: value and gradients equal tfjs matMul + add (its own gradient)', () => {
  const x = tf.randomNormal([5, 7], 0, 1, 'float32', 1) as tf.Tensor2D;
  const w = tf.randomNormal([7, 3], 0, 1, 'float32', 2) as tf.Tensor2D;
  const b = tf.randomNormal([3], 0, 1, 'float32', 3) as tf.Tensor1D;
  const probe = tf.randomNormal([5, 3], 0, 1, 'float32', 4);
  const ours = tf.grads((a, c, d) =>
    tf.sum(tf.mul(denseLayer(a as tf.Tensor2D, c as tf.Tensor2D, d as tf.Tensor1D), probe)),
  )([x, w, b]);
  const reference = tf.grads((a, c, d) =>
    tf.sum(tf.mul(tf.add(tf.matMul(a as tf.Tensor2D, c as tf.Tensor2D), d), probe)),
  )([x, w, b]);
  expect(tf.max(tf.abs(tf.sub(denseLayer(x, w, b), tf.add(tf.matMul(x, w), b)))).dataSync()[0]).toBeLessThan(1e-5);
  ours.forEach((g, i) => {
    expect(g.shape).toEqual(reference[i].shape);
    expect(tf.max(tf.abs(tf.sub(g, reference[i]))).dataSync()[0]).toBeLessThan(1e-4);
  });
});
