/**
 * FedAvg (McMahan et al. 2017) with bounded influence: Δ = Σ share_i · clip_i · δ_i, where the shares are
 * the weights the coordinator allows (never the bare claims), normalised and capped at `maxSiteShare`
 * (influence.ts). Both depend on every update of the round, so the spools are folded at round close, one at
 * a time into one accumulator: memory is one model whatever the number of sites.
 */
import { z } from 'zod';
import { cappedShares } from '../influence.js';
import { readSpool } from '../spool.js';
import type { RoundAggregator, Strategy, StrategyUpdate } from './strategy.js';

/** Σ w_i · δ_i and Σ w_i, folded one accepted update at a time. */
export class FedAvgAccumulator {
  readonly sum: Float32Array;
  totalWeight = 0;

  constructor(target: Float32Array) {
    this.sum = target;
    this.sum.fill(0);
  }

  fold(spoolPath: string, weight: number): void {
    for (const { offset, values } of readSpool(spoolPath, this.sum.length)) {
      const sum = this.sum;
      for (let i = 0; i < values.length; i++) sum[offset + i] += weight * values[i];
    }
    this.totalWeight += weight;
  }
}

/** The bounded weighted mean (FedAvg's aggregation; FedProx aggregates the same way). */
export function boundedWeightedMean(): RoundAggregator {
  const updates: StrategyUpdate[] = [];
  return {
    add: (update) => {
      updates.push(update);
    },
    finish: (bounds, out) => {
      const shares = cappedShares(bounds.weights, bounds.maxSiteShare);
      const accumulator = new FedAvgAccumulator(out);
      updates.forEach((update, i) => {
        accumulator.fold(update.spool, shares[i] * bounds.clipFactors[i]);
      });
      return { shares };
    },
  };
}

export const fedavg: Strategy<Record<string, never>> = {
  name: 'fedavg',
  description: 'FedAvg: the mean of the updates weighted by bounded example counts, shares capped',
  linear: true,
  options: z.strictObject({}),
  begin: () => boundedWeightedMean(),
};
