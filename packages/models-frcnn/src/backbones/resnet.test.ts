import { backbones, tf } from '@fedcxr/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { readPth } from '../weights/pth.js';
import './index.js';
import { compareGradients, compareWithFixture, readBackboneFixture, weightsChecksum } from './parity.js';
import type { ResNetFpnBackbone } from './resnet.js';
import { cachedCheckpoints, parityBackendMissing, useFastestBackend } from './testing.js';

const TOLERANCE = 1e-4;
let backend = '';
const missingBackend = parityBackendMissing();
if (missingBackend) console.warn(`backbone parity skipped: ${missingBackend}`);
beforeAll(async () => {
  if (!missingBackend) backend = await useFastestBackend();
});

const checkpoints = cachedCheckpoints(['resnet18_fpn', 'resnet50_fpn', 'resnet101_fpn']);
for (const arch of ['resnet18_fpn', 'resnet50_fpn', 'resnet101_fpn']) {
  const checkpoint = checkpoints[arch];
  const skip = checkpoint.path ? undefined : checkpoint.reason;
  if (skip) console.log(`${arch} parity skipped: ${skip}`);
  describe.skipIf(Boolean(missingBackend) || Boolean(skip))(`${arch} matches torchvision's resnet_fpn_backbone`, () => {
    it(`feature maps within ${TOLERANCE} (relative) of torchvision's`, async () => {
      const fixture = readBackboneFixture(arch);
      const weights = await readPth(checkpoint.path!);
      expect(weights.size).toBe(fixture.num_tensors);
      expect(Math.abs(weightsChecksum(weights) - fixture.weights_checksum) / fixture.weights_checksum).toBeLessThan(
        1e-9,
      );
      const backbone = backbones.build(arch, { randomInit: false }) as ResNetFpnBackbone;
      const report = backbone.loadWeights(weights, { strict: true });
      expect(report.missing).toEqual([]);
      expect(report.loaded.length + report.ignored.length).toBe(fixture.num_tensors);
      const started = performance.now();
      const comparisons = compareWithFixture(backbone, fixture);
      const seconds = (performance.now() - started) / 1000;
      fixture.cases.forEach((testCase, i) => {
        for (const level of comparisons[i]) {
          console.log(
            `${arch} ${backend} [${testCase.input}] level ${level.name}: sample ${level.worstSampleError.toExponential(2)} std ${level.stdError.toExponential(2)} mean ${level.meanError.toExponential(2)}`,
          );
          expect(level.shapeOk, level.name).toBe(true);
          expect(level.worstSampleError, level.name).toBeLessThan(TOLERANCE);
          expect(level.stdError, level.name).toBeLessThan(TOLERANCE);
          expect(level.meanError, level.name).toBeLessThan(TOLERANCE);
        }
      });
      console.log(`${arch}: forward of ${fixture.cases.length} case(s) on ${backend} in ${seconds.toFixed(2)} s`);
      backbone.dispose();
    });
  });
}

describe.skipIf(Boolean(missingBackend))('ResNet-FPN structure', () => {
  it('has torchvision keys, shapes and trainable_layers semantics', () => {
    const tensorsBefore = tf.memory().numTensors;
    const backbone = backbones.build('resnet50_fpn', { trainableLayers: 2, randomInit: false }) as ResNetFpnBackbone;
    const vars = backbone.variables();
    expect(vars.size).toBe(281); // torchvision's state_dict size (FrozenBatchNorm2d has no num_batches_tracked)
    expect(vars.get('backbone.body.conv1.weight')?.shape).toEqual([7, 7, 3, 64]);
    expect(vars.get('backbone.body.layer4.2.conv3.weight')?.shape).toEqual([1, 1, 512, 2048]);
    expect(vars.get('backbone.fpn.inner_blocks.3.0.weight')?.shape).toEqual([1, 1, 2048, 256]);
    const trainable = [...vars].filter(([, v]) => v.trainable).map(([k]) => k);
    expect(trainable.every((k) => /body\.layer[34]\.|\.fpn\./.test(k))).toBe(true);
    expect(trainable.some((k) => k.includes('running_mean') || k.includes('bn'))).toBe(false);
    expect(trainable).toContain('backbone.body.layer3.0.downsample.0.weight');
    expect(backbone.outputs.map((o) => [o.name, o.stride, o.channels])).toEqual([
      ['0', 4, 256],
      ['1', 8, 256],
      ['2', 16, 256],
      ['3', 32, 256],
      ['pool', 64, 256],
    ]);
    // Seeded: an unseeded draw's std misses the 3-digit check about one run in ten.
    const all = backbones.build('resnet18_fpn', { trainableLayers: 5, seed: 1 }) as ResNetFpnBackbone;
    // torchvision's init: conv kaiming_normal(fan_out) → std √(2 / (64·7·7)); FPN kaiming_uniform(a=1), bias 0.
    // Statistics read inside tidy, so the tensor count below sees only the backbones' own variables.
    const read = (f: () => tf.Tensor) => tf.tidy(() => f().dataSync()[0]);
    const conv1 = all.variables().get('backbone.body.conv1.weight')!;
    expect(read(() => tf.moments(conv1).variance.sqrt())).toBeCloseTo(Math.sqrt(2 / (64 * 49)), 3);
    const lateral = all.variables().get('backbone.fpn.inner_blocks.0.0.weight')!;
    expect(read(() => tf.max(tf.abs(lateral)))).toBeLessThanOrEqual(Math.sqrt(3 / 64));
    expect(read(() => tf.max(tf.abs(lateral)))).toBeGreaterThan(0.9 * Math.sqrt(3 / 64));
    expect(read(() => tf.max(tf.abs(all.variables().get('backbone.body.bn1.running_var')!)))).toBe(1);
    expect([...all.variables()].filter(([k, v]) => k.includes('conv1.weight') && !v.trainable)).toEqual([]);
    const none = backbones.build('resnet18_fpn', { trainableLayers: 0, randomInit: false }) as ResNetFpnBackbone;
    expect([...none.variables()].filter(([, v]) => v.trainable).every(([k]) => k.includes('.fpn.'))).toBe(true);
    expect(() => backbones.build('resnet18_fpn', { trainableLayers: 6 })).toThrow(/trainableLayers/);
    for (const b of [backbone, all, none]) b.dispose();
    // Disposing frees every variable (and the refused build allocated none): no tensor leaks.
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });
});

const gradientCheckpoint = checkpoints.resnet18_fpn;
describe.skipIf(Boolean(missingBackend) || !gradientCheckpoint.path)('resnet18_fpn gradients', () => {
  it(`match torch autograd within ${TOLERANCE} (relative) through FrozenBN, residuals and the FPN`, async () => {
    const fixture = readBackboneFixture('resnet18_fpn');
    const backbone = backbones.build('resnet18_fpn', { randomInit: false });
    backbone.loadWeights?.(await readPth(gradientCheckpoint.path!), { strict: true });
    const started = performance.now();
    const result = compareGradients(backbone, fixture);
    console.log(`resnet18_fpn gradients on ${backend} in ${((performance.now() - started) / 1000).toFixed(2)} s`);
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
