import { tf } from '@fedcxr/core';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeOnnxModel, floatInitializer, OnnxDataType } from './proto.js';

describe('ONNX writer', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('writes a conv/relu/maxpool/resize/add graph that ONNX Runtime runs with the same numbers as tfjs', async () => {
    const rng = (seed: number) => () => {
      seed = (seed * 1664525 + 1013904223) >>> 0;
      return seed / 2 ** 32 - 0.5;
    };
    const r = rng(3);
    const kernelHwio = Float32Array.from({ length: 3 * 3 * 2 * 4 }, r);
    const bias = Float32Array.from({ length: 4 }, r);
    const input = Float32Array.from({ length: 1 * 2 * 8 * 10 }, r); // NCHW
    // OIHW for ONNX from HWIO.
    const oihw = tf.tidy(
      () => tf.transpose(tf.tensor4d(kernelHwio, [3, 3, 2, 4]), [3, 2, 0, 1]).dataSync() as Float32Array,
    );
    const model = encodeOnnxModel({
      graphName: 'tiny',
      opset: 17,
      nodes: [
        {
          opType: 'Conv',
          inputs: ['x', 'w', 'b'],
          outputs: ['c'],
          attributes: { pads: [1, 1, 1, 1], strides: [1, 1], kernel_shape: [3, 3] },
        },
        { opType: 'Relu', inputs: ['c'], outputs: ['r'] },
        { opType: 'MaxPool', inputs: ['r'], outputs: ['p'], attributes: { kernel_shape: [2, 2], strides: [2, 2] } },
        {
          opType: 'Resize',
          inputs: ['p', '', 'scales'],
          outputs: ['u'],
          attributes: { mode: 'nearest', nearest_mode: 'floor', coordinate_transformation_mode: 'asymmetric' },
        },
        { opType: 'Add', inputs: ['u', 'c'], outputs: ['y'] },
      ],
      initializers: [
        floatInitializer('w', [4, 2, 3, 3], oihw),
        floatInitializer('b', [4], bias),
        floatInitializer('scales', [4], new Float32Array([1, 1, 2, 2])),
      ],
      inputs: [{ name: 'x', dataType: OnnxDataType.FLOAT, shape: [1, 2, 'height', 'width'] }],
      outputs: [{ name: 'y', dataType: OnnxDataType.FLOAT, shape: [1, 4, 'height', 'width'] }],
      metadata: { classes: 'a,b' },
    });
    const session = await ort.InferenceSession.create(model);
    const result = await session.run({ x: new ort.Tensor('float32', input, [1, 2, 8, 10]) });
    const onnxOut = result.y.data as Float32Array;

    const expected = tf.tidy(() => {
      const x = tf.transpose(tf.tensor4d(input, [1, 2, 8, 10]), [0, 2, 3, 1]) as tf.Tensor4D;
      const c = tf.add(tf.conv2d(x, tf.tensor4d(kernelHwio, [3, 3, 2, 4]), 1, 'same'), bias) as tf.Tensor4D;
      const p = tf.maxPool(tf.relu(c), 2, 2, 'valid');
      const u = tf.image.resizeNearestNeighbor(p, [8, 10]);
      return tf.transpose(tf.add(u, c), [0, 3, 1, 2]).dataSync() as Float32Array;
    });
    expect(result.y.dims).toEqual([1, 4, 8, 10]);
    expect(onnxOut.length).toBe(expected.length);
    let worst = 0;
    onnxOut.forEach((v, i) => {
      worst = Math.max(worst, Math.abs(v - expected[i]));
    });
    expect(worst).toBeLessThan(1e-5);
  });
});
