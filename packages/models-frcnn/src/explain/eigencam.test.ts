import { readFileSync } from 'node:fs';
import { tf } from '@fedcxr/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { concatenateLevels, firstComponentProjection, scaleCam } from './eigencam.js';

interface Fixture {
  levels: Record<string, { shape: number[]; data: number[] }>;
  cases: { target: [number, number]; concatenated_sum: number; projection: number[]; cam_32x48: number[] }[];
}
const fixture: Fixture = JSON.parse(
  readFileSync(new URL('../../../../tools/reference/fixtures/explain/eigencam.json', import.meta.url), 'utf8'),
);

/** The fixture's NCHW levels as NHWC tensors. */
function levels(): Map<string, tf.Tensor4D> {
  const out = new Map<string, tf.Tensor4D>();
  for (const [name, { shape, data }] of Object.entries(fixture.levels)) {
    const [n, c, h, w] = shape;
    out.set(
      name,
      tf.tidy(() => tf.transpose(tf.tensor4d(data, [n, c, h, w]), [0, 2, 3, 1]) as tf.Tensor4D),
    );
  }
  return out;
}

describe('EigenCAM matches pytorch-grad-cam on the same activations', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  for (const [index, reference] of fixture.cases.entries()) {
    it(`case ${index}: target ${reference.target.join('×')}`, () => {
      const stacked = concatenateLevels(levels(), reference.target);
      const [, h, w, c] = stacked.shape;
      expect(stacked.sum().dataSync()[0]).toBeCloseTo(reference.concatenated_sum, 2);
      const projection = firstComponentProjection(stacked.dataSync() as Float32Array, h * w, c);
      // The SVD's sign is arbitrary: align ours to the reference's before comparing values.
      const dot = projection.reduce((s, v, i) => s + v * reference.projection[i], 0);
      const sign = Math.sign(dot);
      const scale = Math.max(...reference.projection.map(Math.abs));
      projection.forEach((v, i) => {
        expect(Math.abs(sign * v - reference.projection[i]) / scale).toBeLessThan(1e-4);
      });
      const cam = scaleCam(
        projection.map((v) => sign * v),
        h,
        w,
        32,
        48,
      );
      cam.forEach((v, i) => {
        expect(Math.abs(v - reference.cam_32x48[i])).toBeLessThan(1e-4);
      });
    });
  }

  it('points the map at the strongest response (sign convention)', () => {
    const stacked = concatenateLevels(levels(), [8, 12]);
    const [, h, w, c] = stacked.shape;
    const data = stacked.dataSync() as Float32Array;
    const projection = firstComponentProjection(data, h * w, c);
    let hottest = 0;
    projection.forEach((v, i) => {
      if (v > projection[hottest]) hottest = i;
    });
    // The fixture's blob is centred at 30% of the height and 60% of the width.
    expect(Math.abs(Math.floor(hottest / w) - 0.3 * h)).toBeLessThanOrEqual(1.5);
    expect(Math.abs((hottest % w) - 0.6 * w)).toBeLessThanOrEqual(1.5);
  });
});
