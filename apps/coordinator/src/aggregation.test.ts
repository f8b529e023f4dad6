import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FedAvgAccumulator, robustAggregate } from './aggregation.js';
import { tempDir } from './testing.js';

const dir = tempDir();
afterAll(() => dir.remove());

function spool(name: string, values: number[]): string {
  const path = join(dir.path, name);
  writeFileSync(path, new Uint8Array(Float32Array.from(values).buffer));
  return path;
}

describe('aggregation rules over spooled updates', () => {
  const honest = [
    [1, 2, 3, 4, 5],
    [1.2, 2.2, 2.8, 4.1, 5.3],
    [0.8, 1.9, 3.1, 3.9, 4.8],
    [1.1, 2.1, 3.05, 4.05, 5.1],
  ];
  const attacker = [1e4, -1e4, 1e4, -1e4, 1e4];
  const paths = [...honest, attacker].map((v, i) => spool(`u${i}.f32`, v));

  it('FedAvg is the example-weighted mean, folded one update at a time in small blocks', () => {
    const out = new Float32Array(5);
    const acc = new FedAvgAccumulator(out);
    const weights = [10, 20, 30, 40];
    for (let i = 0; i < honest.length; i++) acc.fold(paths[i], weights[i]);
    for (let c = 0; c < 5; c++) {
      const expected = honest.reduce((s, v, i) => s + weights[i] * v[c], 0) / 100;
      expect(out[c] / acc.totalWeight).toBeCloseTo(expected, 5);
    }
  });

  it('coordinate-wise median and trimmed mean ignore one attacker among five (blocks of 2 coordinates)', () => {
    const median = new Float32Array(5);
    robustAggregate(paths, median, 'median', 0, 2);
    for (let c = 0; c < 5; c++) {
      const column = [...honest.map((v) => v[c]), attacker[c]].sort((a, b) => a - b);
      expect(median[c]).toBeCloseTo(column[2], 5);
      expect(Math.abs(median[c] - honest[0][c])).toBeLessThan(0.5);
    }
    const trimmed = new Float32Array(5);
    robustAggregate(paths, trimmed, 'trimmed-mean', 0.2, 2);
    for (let c = 0; c < 5; c++) {
      const column = [...honest.map((v) => v[c]), attacker[c]].sort((a, b) => a - b);
      expect(trimmed[c]).toBeCloseTo((column[1] + column[2] + column[3]) / 3, 4);
    }
    // Plain averaging would be dragged thousands of units away.
    const mean = new Float32Array(5);
    const acc = new FedAvgAccumulator(mean);
    for (const p of paths) acc.fold(p, 1);
    expect(Math.abs(mean[0] / 5 - 1)).toBeGreaterThan(1000);
  });
});
