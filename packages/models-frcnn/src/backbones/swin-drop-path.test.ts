/**
 * Swin's drop path (stochastic depth) draws from a seeded stream, not from tfjs' unseeded generator: the
 * masks are a function of the stream's state, which training reseeds from (seed, epoch, step) before every
 * step — so a resumed swin_t_fpn run drops exactly the rows the uninterrupted run dropped.
 */
import { backbones, deriveSeed, initEngine, Rng, tf } from '@fedcxr/core';
import { beforeAll, describe, expect, it } from 'vitest';
import './index.js';
import { dropPathMask, type SwinTFpnBackbone } from './swin.js';

beforeAll(async () => {
  // One thread: multi-threaded reductions may sum in a different order from run to run.
  await initEngine({ backend: 'wasm', threads: 1 }).catch(() => initEngine({ backend: 'cpu' }));
});

const stepStream = (rng: Rng, epoch: number, step: number) => rng.setState(deriveSeed(9, 'detector', epoch, step));

describe('Swin drop path', () => {
  it('masks are reproducible from the seed and step, and follow stochastic_depth (row mode)', () => {
    const rng = new Rng(0);
    stepStream(rng, 2, 5);
    const first = [dropPathMask(4, 0.2, rng), dropPathMask(4, 0.1, rng)];
    stepStream(rng, 2, 5);
    expect([dropPathMask(4, 0.2, rng), dropPathMask(4, 0.1, rng)]).toEqual(first);
    stepStream(rng, 2, 6);
    const other = [dropPathMask(64, 0.5, rng)];
    stepStream(rng, 2, 5);
    expect([dropPathMask(64, 0.5, rng)]).not.toEqual(other);
    // Each row is kept (scaled by 1 / (1 − p)) or dropped; about 1 − p of them kept.
    let kept = 0;
    const draws = 20000;
    const mask = dropPathMask(draws, 0.2, rng);
    for (const v of mask) {
      expect(v === 0 || v === Math.fround(1 / 0.8)).toBe(true);
      if (v > 0) kept++;
    }
    expect(kept / draws).toBeGreaterThan(0.78);
    expect(kept / draws).toBeLessThan(0.82);
  });

  it('swin_t_fpn in training draws its masks from the stream it is given: same state, bit-identical features', () => {
    const rng = new Rng(0);
    const backbone = backbones.build('swin_t_fpn', { seed: 1, random: rng }) as SwinTFpnBackbone;
    const image = tf.tidy(() => tf.randomUniform([2, 32, 32, 3], 0, 1, 'float32', 3)) as tf.Tensor4D;
    const features = (training: boolean) =>
      tf.tidy(() => backbone.applyBody(image, training).map((t) => Array.from(t.dataSync())));
    stepStream(rng, 0, 1);
    const a = features(true);
    stepStream(rng, 0, 1);
    const b = features(true);
    expect(b).toEqual(a);
    stepStream(rng, 0, 2);
    expect(features(true)).not.toEqual(a);
    // Inference draws nothing.
    const before = rng.getState();
    features(false);
    expect(rng.getState()).toBe(before);
    image.dispose();
    backbone.dispose();
  }, 120_000);
});
