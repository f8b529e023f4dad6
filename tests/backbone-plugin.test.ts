/**
 * The zoo is open: a separate package registers its own backbone on import, and a Faster R-CNN built from
 * config by name uses it, predicts and trains (its loss has gradients that reach the plugin's weights).
 */
import { backbones, detectors, tf } from '@fedcxr/core';
import '@fedcxr/models-frcnn';
import { beforeAll, describe, expect, it } from 'vitest';
import './fixtures/backbone-plugin/index.js';

describe('a third-party backbone package', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('registers by name beside the built-in backbones', () => {
    expect(backbones.list()).toEqual(
      expect.arrayContaining(['plugin_tiny_fpn', 'resnet18_fpn', 'resnet50_fpn', 'resnet101_fpn', 'swin_t_fpn']),
    );
  });

  it('is selected by a config line and serves a Faster R-CNN that predicts and trains', async () => {
    const detector = detectors.build('faster_rcnn', {
      backbone: 'plugin_tiny_fpn',
      numClasses: 1,
      minSize: 64,
      maxSize: 64,
      backboneOptions: { seed: 3 },
      roi: { representationSize: 32, featureNames: ['0'] },
    });
    const pixels = new Float32Array(64 * 64).map((_, i) => (i % 64 > 20 && i % 64 < 40 ? 0.9 : 0.1));
    const image = { pixels, width: 64, height: 64, channels: 1 as const };
    const predictions = await detector.predict([image]);
    expect(Array.isArray(predictions[0])).toBe(true);

    const pluginWeight = detector
      .trainableVariables()
      .find((v) => v.name.includes('body') || v.shape.join() === '3,3,3,8');
    expect(pluginWeight).toBeDefined();
    const { value, grads } = tf.variableGrads(() => {
      const losses = detector.losses(
        [image],
        [{ boxes: Float32Array.from([20, 10, 40, 50]), labels: Int32Array.from([1]) }],
      );
      return tf.addN(Object.values(losses)) as tf.Scalar;
    });
    expect(Number.isFinite(value.dataSync()[0])).toBe(true);
    const gradient = grads[pluginWeight!.name];
    expect(gradient).toBeDefined();
    expect(tf.abs(gradient).sum().dataSync()[0]).toBeGreaterThan(0);
    detector.dispose();
  }, 60_000);
});
