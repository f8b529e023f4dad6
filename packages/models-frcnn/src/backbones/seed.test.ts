import { backbones, tf } from '@fedcxr/core';
import { beforeAll, describe, expect, it } from 'vitest';
import './index.js';

describe('seeded backbone initialization', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  const fingerprint = (seed: number | undefined) => {
    const backbone = backbones.build('resnet18_fpn', seed === undefined ? {} : { seed });
    const sums = [...backbone.variables().entries()]
      .filter(([name]) => name.endsWith('conv1.weight') || name.includes('fpn'))
      .map(([, v]) => v.sum().dataSync()[0]);
    backbone.dispose?.();
    return sums;
  };

  it('gives the same initial weights for the same seed and different ones for another', () => {
    const a = fingerprint(3);
    expect(fingerprint(3)).toEqual(a);
    expect(fingerprint(4)).not.toEqual(a);
    expect(a.length).toBeGreaterThan(5);
  });
});
