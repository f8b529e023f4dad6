import { describe, expect, it } from 'vitest';
import { simulate } from './simulate.js';

describe('cxr fed simulate (coordinator + site child processes on loopback)', () => {
  it('federates 3 patient-disjoint site processes and comes close to centralized training', async () => {
    const report = await simulate({
      sites: 3,
      data: 'synthetic',
      split: 'patient',
      rounds: 5,
      epochs: 2,
      learningRate: 0.3,
      rows: 900,
      seed: 3,
    });
    expect(report.rounds.map((r) => r.sites.length)).toEqual([3, 3, 3, 3, 3]);
    expect(report.sites.reduce((n, s) => n + s.trainRows + s.validationRows, 0) + report.testRows).toBe(900);
    expect(report.totalEpochs).toBe(10);
    expect(report.centralized.accuracy).toBeGreaterThan(0.6);
    expect(report.accuracyRatio).toBeGreaterThan(0.95);
    expect(report.siteValidation.numExamples).toBe(report.sites.reduce((n, s) => n + s.validationRows, 0));
  });
});
