import { describe, expect, it } from 'vitest';
import { allowedWeight, cappedShares, clipFactors, lowerMedian } from './influence.js';

describe('bounded influence', () => {
  it('a weight is the claim bounded by the declared count, or by the enrolled weight grown by at most `growth`', () => {
    expect(allowedWeight(1e9, { declared: 500, growth: 1.5 })).toEqual({
      weight: 500,
      basis: 'declared',
      limited: true,
    });
    expect(allowedWeight(300, { declared: 500, growth: 1.5 })).toEqual({
      weight: 300,
      basis: 'declared',
      limited: false,
    });
    expect(allowedWeight(1e9, { enrolled: 40, growth: 1.5 })).toEqual({ weight: 60, basis: 'enrolled', limited: true });
    expect(allowedWeight(50, { enrolled: 40, growth: 1.5 })).toMatchObject({ weight: 50, limited: false });
    expect(allowedWeight(80, { growth: 1.5 })).toEqual({ weight: 80, basis: 'enrolment', limited: false });
  });

  it('no share exceeds the cap; the excess goes to the others in proportion; impossible caps give equal shares', () => {
    const shares = cappedShares([1e9, 40, 40], 0.5);
    expect(shares[0]).toBeCloseTo(0.5, 12);
    expect(shares[1]).toBeCloseTo(0.25, 12);
    expect(shares.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    const cascade = cappedShares([100, 90, 5, 5], 0.4); // capping the first pushes the second over too
    expect(cascade[0]).toBeCloseTo(0.4, 12);
    expect(cascade[1]).toBeCloseTo(0.4, 12);
    expect(cascade[2]).toBeCloseTo(0.1, 12);
    expect(cappedShares([10, 20, 30], 0.9)).toEqual([10 / 60, 20 / 60, 30 / 60].map((x) => expect.closeTo(x, 12)));
    expect(cappedShares([1e9, 1], 0.3)).toEqual([0.5, 0.5]);
    expect(cappedShares([5], 0.5)).toEqual([1]);
  });

  it('clips to clipMultiple × the lower median norm; with two sites the smaller norm rules', () => {
    const clips = clipFactors([0.3, 0.28, 50], 2);
    expect(clips.map((c) => c.clipped)).toEqual([false, false, true]);
    expect(50 * clips[2].factor).toBeCloseTo(0.6, 12);
    expect(lowerMedian([0.3, 50])).toBe(0.3);
    expect(clipFactors([0.3, 50], 2)[1].factor * 50).toBeCloseTo(0.6, 12);
    expect(clipFactors([0.3, 50], null).every((c) => c.factor === 1)).toBe(true);
  });
});
