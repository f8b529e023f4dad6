import { backbones } from '@fedcxr/core';
import { beforeAll, describe, expect, it } from 'vitest';
import './index.js';
import { readFileSync } from 'node:fs';
import { hashedWeights } from './hashed-weights.js';
import { type BackboneFixture, compareWithFixture, weightsChecksum } from './parity.js';
import { backboneFixtures, parityBackendMissing, useFastestBackend } from './testing.js';

// No checkpoint, no Python: weights come from a hash both sides compute bit for bit (CI runs these).
const TOLERANCE = 1e-4;
let backend = '';
const missingBackend = parityBackendMissing();
if (missingBackend) console.warn(`backbone parity skipped: ${missingBackend}`);
beforeAll(async () => {
  if (!missingBackend) backend = await useFastestBackend();
});

describe.skipIf(Boolean(missingBackend))('torchvision parity with hashed weights (no checkpoint needed)', () => {
  for (const arch of ['resnet18_fpn', 'resnet50_fpn', 'swin_t_fpn']) {
    it(`${arch}: feature maps within ${TOLERANCE} (relative)`, () => {
      const fixture = JSON.parse(readFileSync(`${backboneFixtures}/${arch}.hashed.json`, 'utf8')) as BackboneFixture;
      const backbone = backbones.build(arch, { randomInit: false });
      const weights = hashedWeights(backbone);
      expect(Math.abs(weightsChecksum(weights) - fixture.weights_checksum) / fixture.weights_checksum).toBeLessThan(
        1e-9,
      );
      backbone.loadWeights?.(weights, { strict: true });
      const comparisons = compareWithFixture(backbone, fixture);
      fixture.cases.forEach((testCase, i) => {
        for (const level of comparisons[i]) {
          console.log(
            `${arch} hashed ${backend} [${testCase.input}] level ${level.name}: sample ${level.worstSampleError.toExponential(2)} std ${level.stdError.toExponential(2)}`,
          );
          expect(level.shapeOk, level.name).toBe(true);
          expect(level.worstSampleError, level.name).toBeLessThan(TOLERANCE);
          expect(level.stdError, level.name).toBeLessThan(TOLERANCE);
          expect(level.meanError, level.name).toBeLessThan(TOLERANCE);
        }
      });
      backbone.dispose?.();
    });
  }
});
