/**
 * Coordinate-wise median (Yin et al. 2018): each coordinate of Δ is the median of the (clipped) updates'
 * values there. Unweighted by design, so a site's claimed example count buys nothing; arbitrary values from
 * fewer than half the sites cannot move it outside the honest range. Not linear: it cannot run on a masked sum.
 */
import { z } from 'zod';
import { reduceColumns } from '../spool.js';
import type { RoundAggregator, Strategy, StrategyUpdate } from './strategy.js';

/** The median of each coordinate of the spools (scaled by `scales`), written into `out`, block by block. */
export function coordinateMedian(
  spools: readonly string[],
  out: Float32Array,
  scales?: readonly number[],
  blockElements?: number,
): void {
  reduceColumns(
    spools,
    out,
    (column) => {
      column.sort();
      const n = column.length;
      return n % 2 === 1 ? column[(n - 1) / 2] : (column[n / 2 - 1] + column[n / 2]) / 2;
    },
    scales,
    blockElements,
  );
}

/** An unweighted coordinate-wise rule over the round's spools, run at round close with the clip factors. */
export function coordinateWise(
  rule: (spools: readonly string[], out: Float32Array, scales: readonly number[]) => void,
): RoundAggregator {
  const updates: StrategyUpdate[] = [];
  return {
    add: (update) => {
      updates.push(update);
    },
    finish: (bounds, out) => {
      rule(
        updates.map((u) => u.spool),
        out,
        bounds.clipFactors,
      );
      return { shares: updates.map(() => 1 / updates.length) };
    },
  };
}

export const median: Strategy<Record<string, never>> = {
  name: 'median',
  description: 'coordinate-wise median of the clipped updates (unweighted)',
  linear: false,
  options: z.strictObject({}),
  begin: () => coordinateWise((spools, out, scales) => coordinateMedian(spools, out, scales)),
};
