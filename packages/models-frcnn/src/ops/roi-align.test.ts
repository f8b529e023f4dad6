import { fileURLToPath } from 'node:url';
import { readSafetensors, tf } from '@fedcxr/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { parityBackend, parityBackendMissing, useFastestBackend } from '../backbones/testing.js';
import { maxDifference } from '../testing.js';
import { mapBoxLevels, roiAlign } from './roi-align.js';

const FIXTURE = fileURLToPath(
  new URL('../../../../tools/reference/fixtures/frcnn/roi_align.safetensors', import.meta.url),
);

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => maxDifference(a, b).diff;

const missingBackend = parityBackendMissing();
if (missingBackend) console.warn(`roiAlign parity skipped: ${missingBackend}`);
beforeAll(async () => {
  if (!missingBackend) await useFastestBackend();
});

describe.skipIf(Boolean(missingBackend))(
  `roiAlign against torchvision.ops.roi_align (forward and autograd, ${parityBackend})`,
  async () => {
    const { tensors } = await readSafetensors(FIXTURE);
    const get = (name: string) => {
      const t = tensors.get(name);
      if (!t) throw new Error(`fixture lacks ${name}`);
      return tf.tensor(Float32Array.from(t.data), t.shape, 'float32');
    };
    const features = tf.transpose(get('features'), [0, 2, 3, 1]) as tf.Tensor4D;
    const rois = Float32Array.from(tensors.get('rois')?.data ?? []);
    const cases = [
      ['s2', 2, false],
      ['adaptive', -1, false],
      ['aligned', 2, true],
    ] as const;
    for (const [name, samplingRatio, aligned] of cases) {
      it(`${name}: outputs within 1e-5 and feature gradients within 1e-5`, () => {
        const options = { outputSize: 7, spatialScale: 0.5, samplingRatio, aligned };
        const weights = tf.transpose(get(`${name}.weights`), [0, 2, 3, 1]);
        const output = roiAlign(features, rois, options);
        const expected = tf.transpose(get(`${name}.output`), [0, 2, 3, 1]);
        expect(maxAbsDiff(output.dataSync(), expected.dataSync())).toBeLessThan(1e-5);
        const grad = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(roiAlign(x as tf.Tensor4D, rois, options), weights)))(
          features,
        );
        const expectedGrad = tf.transpose(get(`${name}.grad`), [0, 2, 3, 1]);
        expect(maxAbsDiff(grad.dataSync(), expectedGrad.dataSync())).toBeLessThan(1e-5);
        // The gradient is not trivially zero: the fixture's RoIs touch both images.
        expect(tf.max(tf.abs(grad)).dataSync()[0]).toBeGreaterThan(0.1);
      });
    }

    it('gradient matches central finite differences', () => {
      const small = tf.randomNormal([1, 5, 6, 2], 0, 1, 'float32', 3) as tf.Tensor4D;
      const boxes = Float32Array.from([0, 0.5, 1.2, 9.0, 7.7, 0, -1, 2, 4, 11]);
      const options = { outputSize: 3, spatialScale: 0.5, samplingRatio: 2, aligned: false };
      const probe = tf.randomNormal([2, 3, 3, 2], 0, 1, 'float32', 4);
      const loss = (x: tf.Tensor) => tf.sum(tf.mul(roiAlign(x as tf.Tensor4D, boxes, options), probe));
      const analytic = tf.grad(loss)(small).dataSync();
      const base = small.dataSync();
      const h = 1e-2;
      for (let i = 0; i < base.length; i++) {
        const plus = Float32Array.from(base);
        const minus = Float32Array.from(base);
        plus[i] += h;
        minus[i] -= h;
        const numeric =
          (loss(tf.tensor4d(plus, small.shape)).dataSync()[0] - loss(tf.tensor4d(minus, small.shape)).dataSync()[0]) /
          (2 * h);
        // RoIAlign is linear in the features, so central differences are exact up to float32 rounding.
        expect(Math.abs(numeric - analytic[i])).toBeLessThan(2e-3);
      }
    });
  },
);

describe.skipIf(Boolean(missingBackend))('mapBoxLevels (torchvision LevelMapper, k0 = 4, canonical 224)', () => {
  it('sends a 224-pixel box to level 4, halves and doubles one level down and up, clamped', () => {
    const boxes = Float32Array.from([0, 0, 224, 224, 0, 0, 112, 112, 0, 0, 448, 448, 0, 0, 10, 10, 0, 0, 2000, 2000]);
    expect([...mapBoxLevels(boxes, 2, 5)]).toEqual([2, 1, 3, 0, 3]);
  });
});
