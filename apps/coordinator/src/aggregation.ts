/**
 * A round's aggregation, whatever the strategy (strategies/: the rules, by name). At round close the
 * coordinator computes each accepted update's influence bounds (influence.ts: the weight it allows, the
 * clip factor), the round's aggregator finishes into the buffer of the new global model, and `serverStep`
 * applies global += η·Δ — the one place the server learning rate η is applied, secure-aggregation rounds
 * included.
 *
 * Memory ≈ two models whatever the number of sites: the current global and the new one, which the
 * aggregator fills in place (updates stay spooled on disk until then: spool.ts, ingest.ts).
 */
import type { AuditLog } from './audit.js';
import { allowedWeight, clipFactors, lowerMedian } from './influence.js';
import { coordinateMedian } from './strategies/median.js';
import type { AggregatorResult, RoundAggregator } from './strategies/strategy.js';
import { coordinateTrimmedMean } from './strategies/trimmed-mean.js';

export { FedAvgAccumulator } from './strategies/fedavg.js';

/** A registered strategy's name: the four built in, or one a plugin registered. */
export type AggregationRule = 'fedavg' | 'fedprox' | 'median' | 'trimmed-mean' | (string & {});

/** What aggregation needs of an accepted update; it records the weight, share and clip factor applied. */
export interface BoundedUpdate {
  siteId: string;
  numExamples: number;
  norm: number;
  weight?: number;
  share?: number;
  clipFactor?: number;
}

export interface InfluenceSettings {
  weightGrowth: number;
  clipMultiple: number | null;
  maxSiteShare: number;
}

/**
 * Aggregates a (plain) round into `out` with each update's influence bounded: the weight the coordinator
 * allows (min(claim, declared or enrolled bound)), its share (the strategy's: FedAvg caps it), and its clip
 * factor (to clipMultiple × the round's median norm). Audited: `update_clipped` for every clipped update,
 * then one `round_weights` entry. Each site's enrolment is updated to the weight it got.
 */
export function aggregateBounded(
  args: {
    round: number;
    rule: string;
    accepted: readonly BoundedUpdate[];
    aggregator: RoundAggregator;
    settings: InfluenceSettings;
    declared: ReadonlyMap<string, number | undefined>;
    enrolled: Record<string, number>;
    audit: AuditLog;
  },
  out: Float32Array,
): AggregatorResult {
  const { round, rule, accepted, settings, enrolled, audit } = args;
  const allowed = accepted.map((u) =>
    allowedWeight(u.numExamples, {
      declared: args.declared.get(u.siteId),
      enrolled: enrolled[u.siteId],
      growth: settings.weightGrowth,
    }),
  );
  const norms = accepted.map((u) => u.norm);
  const clips = clipFactors(norms, settings.clipMultiple);
  const result = args.aggregator.finish(
    {
      weights: allowed.map((a) => a.weight),
      clipFactors: clips.map((c) => c.factor),
      maxSiteShare: settings.maxSiteShare,
    },
    out,
  );
  const { shares } = result;
  const median = lowerMedian(norms);
  accepted.forEach((u, i) => {
    u.weight = allowed[i].weight;
    u.share = shares[i];
    u.clipFactor = clips[i].factor;
    enrolled[u.siteId] = allowed[i].weight;
    if (clips[i].clipped)
      audit.append('update_clipped', {
        round,
        siteId: u.siteId,
        norm: u.norm,
        clippedTo: u.norm * clips[i].factor,
        factor: clips[i].factor,
        medianNorm: median,
        clipMultiple: settings.clipMultiple,
      });
  });
  audit.append('round_weights', {
    round,
    rule,
    maxSiteShare: settings.maxSiteShare,
    sites: Object.fromEntries(
      accepted.map((u, i) => [
        u.siteId,
        {
          claimed: u.numExamples,
          weight: allowed[i].weight,
          basis: allowed[i].basis,
          limited: allowed[i].limited,
          share: shares[i],
          clipFactor: clips[i].factor,
        },
      ]),
    ),
  });
  return result;
}

/**
 * The server step, in place: `next` holds the aggregate (Δ = next / divisor) and becomes global + η·Δ.
 * With divisor 1 this is FedAvg (η = 1) or FedOpt's server learning rate (Reddi et al. 2021).
 */
export function serverStep(global: Float32Array, next: Float32Array, eta: number, divisor = 1): void {
  const factor = divisor === 1 ? eta : eta / divisor;
  for (let i = 0; i < next.length; i++) next[i] = global[i] + next[i] * factor;
}

/**
 * Coordinate-wise median or trimmed mean of spooled deltas, written into `out` (the median and trimmed-mean
 * strategies' rules, for callers that name the rule). Unweighted by design.
 */
export function robustAggregate(
  spoolPaths: readonly string[],
  out: Float32Array,
  rule: 'median' | 'trimmed-mean',
  trimFraction: number,
  blockElements = 1 << 18,
  /** Per-update scale (adaptive clipping), applied before the rule. */
  scales?: readonly number[],
): void {
  if (rule === 'median') coordinateMedian(spoolPaths, out, scales, blockElements);
  else coordinateTrimmedMean(spoolPaths, out, trimFraction, scales, blockElements);
}
