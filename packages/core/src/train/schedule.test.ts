import { describe, expect, it } from 'vitest';
import { parseTrainConfig } from './config.js';
import { learningRateAt } from './schedule.js';

const schedule = (extra: Record<string, unknown>) =>
  parseTrainConfig({ data: { train: 'x' }, schedule: extra }).schedule;

describe('learningRateAt', () => {
  it('warms up linearly from lr·factor, then holds', () => {
    const s = schedule({ warmupSteps: 10, warmupFactor: 0.1, type: 'constant' });
    const at = (globalStep: number) => ({ globalStep, epoch: 0, epochFraction: 0, totalEpochs: 5 });
    expect(learningRateAt(1, s, at(0))).toBeCloseTo(0.1, 12);
    expect(learningRateAt(1, s, at(5))).toBeCloseTo(0.55, 12);
    expect(learningRateAt(1, s, at(10))).toBe(1);
    expect(learningRateAt(1, s, at(400))).toBe(1);
  });

  it('steps by gamma at each milestone epoch', () => {
    const s = schedule({ warmupSteps: 0, type: 'step', milestones: [3, 5], gamma: 0.1 });
    // Milestones are 1-based epochs: the 3rd epoch (index 2) runs at 0.1×, the 5th (index 4) at 0.01×.
    const at = (epoch: number) => ({ globalStep: 1000, epoch, epochFraction: 0.5, totalEpochs: 6 });
    expect(learningRateAt(0.003, s, at(1))).toBeCloseTo(0.003, 15);
    expect(learningRateAt(0.003, s, at(2))).toBeCloseTo(0.0003, 15);
    expect(learningRateAt(0.003, s, at(4))).toBeCloseTo(0.00003, 15);
  });

  it('warms up over warmupEpochs of progress instead, exactly the step-counted warm-up for whole epochs', () => {
    const byEpochs = schedule({ warmupEpochs: 1, warmupSteps: 50, warmupFactor: 0.001, type: 'constant' });
    const bySteps = schedule({ warmupSteps: 3, warmupFactor: 0.001, type: 'constant' });
    // Epochs of 3 steps: step s of epoch e is global step 3e + s and epoch progress e + s/3.
    for (let g = 0; g < 7; g++) {
      const at = { globalStep: g, epoch: Math.floor(g / 3), epochFraction: (g % 3) / 3, totalEpochs: 18 };
      expect(learningRateAt(0.01, byEpochs, at)).toBe(learningRateAt(0.01, bySteps, at));
    }
    const two = schedule({ warmupEpochs: 2, type: 'constant' });
    expect(learningRateAt(1, two, { globalStep: 0, epoch: 1, epochFraction: 0, totalEpochs: 4 })).toBeCloseTo(
      0.001 * 0.5 + 0.5,
      12,
    );
    expect(learningRateAt(1, two, { globalStep: 0, epoch: 2, epochFraction: 0, totalEpochs: 4 })).toBe(1);
  });

  it('follows a half cosine to minFactor', () => {
    const s = schedule({ warmupSteps: 0, type: 'cosine', minFactor: 0 });
    const at = (epoch: number, epochFraction: number) => ({ globalStep: 50, epoch, epochFraction, totalEpochs: 4 });
    expect(learningRateAt(2, s, at(0, 0))).toBeCloseTo(2, 12);
    expect(learningRateAt(2, s, at(2, 0))).toBeCloseTo(1, 12);
    expect(learningRateAt(2, s, at(3, 0.5))).toBeCloseTo(1 - Math.cos(Math.PI / 8), 12);
    expect(learningRateAt(2, s, at(4, 0))).toBeCloseTo(0, 12);
  });
});
