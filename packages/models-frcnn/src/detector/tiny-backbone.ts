/**
 * A three-convolution backbone (strides 4, 8, 16; 16 channels) mirrored by the TinyBackbone of
 * tools/reference/frcnn_make_fixtures.py. It exists to prove the detector's heads against torchvision
 * quickly and independently of the ResNet/Swin backbones; it is not meant for real training.
 */
import type { Backbone, FeatureSpec } from '@fedcxr/core';
import { tf } from '@fedcxr/core';

let instances = 0;

export class TinyTestBackbone implements Backbone {
  readonly name = 'tiny_test';
  readonly outputs: readonly FeatureSpec[] = [
    { name: '0', stride: 4, channels: 16 },
    { name: '1', stride: 8, channels: 16 },
    { name: 'pool', stride: 16, channels: 16 },
  ];
  private readonly weights = new Map<string, tf.Variable>();

  constructor(seed = 0) {
    // Variable names are engine-wide: one scope per instance, so several tiny backbones can coexist.
    const scope = `tiny${instances++}`;
    const add = (name: string, shape: number[], i: number) =>
      this.weights.set(
        name,
        tf.variable(tf.randomNormal(shape, 0, 0.1, 'float32', seed + i), true, `${scope}/${name}`),
      );
    add('conv1.weight', [3, 3, 3, 8], 1);
    add('conv1.bias', [8], 2);
    add('conv2.weight', [3, 3, 8, 16], 3);
    add('conv2.bias', [16], 4);
    add('lateral.weight', [1, 1, 8, 16], 5);
    add('lateral.bias', [16], 6);
  }

  private w(name: string): tf.Variable {
    const v = this.weights.get(name);
    if (!v) throw new Error(`tiny backbone has no ${name}`);
    return v;
  }

  apply(images: tf.Tensor4D): Map<string, tf.Tensor4D> {
    // tf.tidy keeps tensors returned in arrays and plain objects, not in Maps.
    const [lateral, c2, pool] = tf.tidy(() => {
      const c1 = tf.relu(tf.add(tf.conv2d(images, this.w('conv1.weight') as tf.Tensor4D, 4, 1), this.w('conv1.bias')));
      const c2 = tf.relu(
        tf.add(tf.conv2d(c1 as tf.Tensor4D, this.w('conv2.weight') as tf.Tensor4D, 2, 1), this.w('conv2.bias')),
      ) as tf.Tensor4D;
      const lateral = tf.add(
        tf.conv2d(c1 as tf.Tensor4D, this.w('lateral.weight') as tf.Tensor4D, 1, 'valid'),
        this.w('lateral.bias'),
      ) as tf.Tensor4D;
      return [lateral, c2, tf.maxPool(c2, 1, 2, 'valid')];
    });
    return new Map([
      ['0', lateral],
      ['1', c2],
      ['pool', pool],
    ]);
  }

  variables(): Map<string, tf.Variable> {
    return new Map(this.weights);
  }
}
