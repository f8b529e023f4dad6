/**
 * FedProx (Li et al. 2020): the sites minimise their loss plus (μ/2)·‖w − w_global‖², which keeps
 * heterogeneous sites from drifting apart; the coordinator aggregates as FedAvg does. μ is this strategy's
 * option (`round.aggregationOptions.mu`, else `round.mu`) and travels to the sites in the round plan.
 */
import { z } from 'zod';
import { boundedWeightedMean } from './fedavg.js';
import type { Strategy } from './strategy.js';

const options = z.strictObject({
  mu: z
    .number({ error: 'FedProx needs its proximal coefficient μ > 0 (round.aggregationOptions.mu or round.mu)' })
    .positive(),
});

export const fedprox: Strategy<z.infer<typeof options>> = {
  name: 'fedprox',
  description: 'FedProx: FedAvg aggregation, the sites train with the proximal term μ',
  linear: true,
  options,
  defaults: (round) => (round.mu > 0 ? { mu: round.mu } : {}),
  plan: ({ mu }) => ({ mu }),
  begin: () => boundedWeightedMean(),
};
