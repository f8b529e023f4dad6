/**
 * Coordinate-wise trimmed mean (Yin et al. 2018): at each coordinate the β·n largest and β·n smallest values
 * of the (clipped) updates are dropped and the rest averaged, unweighted. Up to β·n outliers per coordinate
 * cannot move it outside the honest range. Not linear: it cannot run on a masked sum.
 */
import { z } from 'zod';
import { reduceColumns } from '../spool.js';
import { coordinateWise } from './median.js';
import type { Strategy } from './strategy.js';

/** The trimmed mean of each coordinate of the spools (scaled by `scales`), written into `out`, block by block. */
export function coordinateTrimmedMean(
  spools: readonly string[],
  out: Float32Array,
  trimFraction: number,
  scales?: readonly number[],
  blockElements?: number,
): void {
  const n = spools.length;
  // Always keep at least one value (n odd) or two (n even).
  const trim = Math.min(Math.floor(n * trimFraction), Math.floor((n - 1) / 2));
  reduceColumns(
    spools,
    out,
    (column) => {
      column.sort();
      let s = 0;
      for (let k = trim; k < n - trim; k++) s += column[k];
      return s / (n - 2 * trim);
    },
    scales,
    blockElements,
  );
}

const options = z.strictObject({
  /** β: the share of values dropped at each end of every coordinate. */
  trimFraction: z.number().min(0).max(0.49).default(0.2),
});

export const trimmedMean: Strategy<z.infer<typeof options>> = {
  name: 'trimmed-mean',
  description: 'coordinate-wise trimmed mean of the clipped updates (unweighted; trimFraction β at each end)',
  linear: false,
  options,
  defaults: (round) => ({ trimFraction: round.trimFraction }),
  begin: ({ trimFraction }) =>
    coordinateWise((spools, out, scales) => coordinateTrimmedMean(spools, out, trimFraction, scales)),
};
