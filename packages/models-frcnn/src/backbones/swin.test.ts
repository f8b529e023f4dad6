import { backbones } from '@fedcxr/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { readPth } from '../weights/pth.js';
import './index.js';
import { compareGradients, compareWithFixture, readBackboneFixture, weightsChecksum } from './parity.js';
import { relativePositionIndex, type SwinTFpnBackbone, shiftedWindowMask } from './swin.js';
import { cachedCheckpoint, parityBackendMissing, useFastestBackend } from './testing.js';

const TOLERANCE = 1e-4;
let backend = '';
const missingBackend = parityBackendMissing();
if (missingBackend) console.warn(`backbone parity skipped: ${missingBackend}`);
beforeAll(async () => {
  if (!missingBackend) backend = await useFastestBackend();
});

const checkpoint = cachedCheckpoint('swin_t_fpn');
if (!checkpoint.path) console.log(`swin_t_fpn parity skipped: ${checkpoint.reason}`);

describe.skipIf(Boolean(missingBackend) || !checkpoint.path)(
  "swin_t_fpn matches torchvision's swin_t features + FeaturePyramidNetwork",
  () => {
    it(`feature maps within ${TOLERANCE} (relative), incl. padded and shifted windows at odd sizes`, async () => {
      const fixture = readBackboneFixture('swin_t_fpn');
      const weights = await readPth(checkpoint.path!);
      expect(weights.size).toBe(fixture.num_tensors);
      expect(Math.abs(weightsChecksum(weights) - fixture.weights_checksum) / fixture.weights_checksum).toBeLessThan(
        1e-9,
      );
      const backbone = backbones.build('swin_t_fpn', { randomInit: false }) as SwinTFpnBackbone;
      const report = backbone.loadWeights(weights, { strict: true });
      expect(report.missing).toEqual([]);
      expect(report.ignored.length).toBe(12); // one relative_position_index per block, checked against ours
      const started = performance.now();
      const comparisons = compareWithFixture(backbone, fixture);
      const seconds = (performance.now() - started) / 1000;
      fixture.cases.forEach((testCase, i) => {
        for (const level of comparisons[i]) {
          console.log(
            `swin_t_fpn ${backend} [${testCase.input}] level ${level.name}: sample ${level.worstSampleError.toExponential(2)} std ${level.stdError.toExponential(2)} mean ${level.meanError.toExponential(2)}`,
          );
          expect(level.shapeOk, level.name).toBe(true);
          expect(level.worstSampleError, level.name).toBeLessThan(TOLERANCE);
          expect(level.stdError, level.name).toBeLessThan(TOLERANCE);
          expect(level.meanError, level.name).toBeLessThan(TOLERANCE);
        }
      });
      console.log(`swin_t_fpn: forward of ${fixture.cases.length} case(s) on ${backend} in ${seconds.toFixed(2)} s`);
      backbone.dispose();
    });
  },
);

describe.skipIf(Boolean(missingBackend))('Swin-T pieces', () => {
  it('relative_position_index equals torchvision’s (spot values for a 7×7 window)', () => {
    const index = relativePositionIndex(7);
    expect(index.length).toBe(2401);
    // token 0 vs token 0: (6, 6) → 6·13 + 6; token 0 vs token 48: (−6+6, −6+6) → 0; token 48 vs 0 → 12·13 + 12.
    expect(index[0]).toBe(84);
    expect(index[48]).toBe(0);
    expect(index[48 * 49]).toBe(168);
    expect(Math.max(...index)).toBe(168);
  });

  it('shifted-window mask separates the rolled-in regions only', () => {
    // 14×14 padded map, window 7, shift 3: the top-left window is one region (all zeros); the last one mixes 4.
    const mask = shiftedWindowMask(14, 14, 7, 3, 3);
    const window = (w: number) => mask.subarray(w * 2401, (w + 1) * 2401);
    expect(window(0).every((v) => v === 0)).toBe(true);
    expect(window(3).filter((v) => v === -100).length).toBeGreaterThan(0);
    // With no shift along H (window covers it), regions differ along W only.
    const wOnly = shiftedWindowMask(7, 14, 7, 0, 3);
    expect(wOnly.subarray(0, 2401).every((v) => v === 0)).toBe(true);
    expect(wOnly.subarray(2401).some((v) => v === -100)).toBe(true);
  });

  it('has swin_t keys and stage-wise trainable layers', () => {
    const backbone = backbones.build('swin_t_fpn', { trainableLayers: 1, randomInit: false }) as SwinTFpnBackbone;
    const vars = backbone.variables();
    expect(vars.get('backbone.body.features.0.0.weight')?.shape).toEqual([4, 4, 3, 96]);
    expect(vars.get('backbone.body.features.5.3.attn.qkv.weight')?.shape).toEqual([384, 1152]);
    expect(vars.get('backbone.body.features.6.reduction.weight')?.shape).toEqual([1536, 768]);
    expect(vars.get('backbone.body.features.7.1.attn.relative_position_bias_table')?.shape).toEqual([169, 24]);
    const trainable = [...vars].filter(([, v]) => v.trainable).map(([k]) => k);
    expect(trainable.every((k) => /features\.[67]\.|\.fpn\./.test(k))).toBe(true);
    expect(trainable).toContain('backbone.body.features.6.norm.weight');
    expect(backbone.outputs.map((o) => o.stride)).toEqual([4, 8, 16, 32, 64]);
    backbone.dispose();
  });
});

describe.skipIf(Boolean(missingBackend) || !checkpoint.path)('swin_t_fpn gradients', () => {
  it(`match torch autograd within ${TOLERANCE} (relative): attention, relative bias, LayerNorm, patch merging`, async () => {
    const fixture = readBackboneFixture('swin_t_fpn');
    const backbone = backbones.build('swin_t_fpn', { randomInit: false });
    backbone.loadWeights?.(await readPth(checkpoint.path!), { strict: true });
    const started = performance.now();
    const result = compareGradients(backbone, fixture);
    console.log(`swin_t_fpn gradients on ${backend} in ${((performance.now() - started) / 1000).toFixed(2)} s`);
    console.log(`loss ${result.loss} (torch ${fixture.gradients?.loss}) error ${result.lossError.toExponential(2)}`);
    expect(result.lossError).toBeLessThan(TOLERANCE);
    for (const p of result.params) {
      console.log(`  ${p.name}: sample ${p.worstSampleError.toExponential(2)} std ${p.stdError.toExponential(2)}`);
      expect(p.shapeOk, p.name).toBe(true);
      expect(p.worstSampleError, p.name).toBeLessThan(TOLERANCE);
      expect(p.stdError, p.name).toBeLessThan(TOLERANCE);
    }
    backbone.dispose?.();
  });
});

describe.skipIf(Boolean(missingBackend))('Swin-T layouts', () => {
  it('reports per-variable layouts (bias tables are plain though rank 2)', () => {
    const backbone = backbones.build('swin_t_fpn', { randomInit: false });
    expect(backbone.layoutOf?.('backbone.body.features.1.0.attn.relative_position_bias_table')).toBe('plain');
    expect(backbone.layoutOf?.('backbone.body.features.1.0.attn.qkv.weight')).toBe('linear');
    expect(backbone.layoutOf?.('backbone.body.features.0.0.weight')).toBe('conv');
    expect(backbone.layoutOf?.('backbone.fpn.layer_blocks.0.0.bias')).toBe('plain');
    backbone.dispose?.();
  });
});
