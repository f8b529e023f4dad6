/**
 * An aggregation strategy (Flower's `Strategy`, cut to what a round needs): it begins a round and returns an
 * aggregator; the coordinator hands that aggregator each update as it is accepted (validated and spooled),
 * then, at round close, the round's influence bounds; the aggregator finishes by writing the round's aggregate
 * Δ into the buffer that becomes the new global model. The coordinator alone applies global += η·Δ
 * (aggregation.ts), whatever the strategy.
 *
 * A new rule is one file that exports a `Strategy` and one `strategies.register(...)` (registry.ts): its name
 * and options are then valid in `round.aggregation` / `round.aggregationOptions`.
 */
import type { z } from 'zod';

/** An accepted update as a strategy sees it: validated, its float32 delta spooled, its norm measured. */
export interface StrategyUpdate {
  readonly siteId: string;
  readonly nonce: string;
  /** The spool file: float32 delta values in the model's flat order (read it with `readSpool`). */
  readonly spool: string;
  /** The site's claim; the weight the coordinator allows comes with the bounds at `finish`. */
  readonly numExamples: number;
  readonly norm: number;
}

/**
 * A round's influence bounds (influence.ts), computed by the coordinator at round close. Entry i of each
 * array belongs to the i-th update given to `add`.
 */
export interface RoundBounds {
  /** The weight the coordinator allows: min(claim, declared or enrolled bound). */
  readonly weights: readonly number[];
  /** ≤ 1: scales an update down to `clipMultiple` × the round's median norm. */
  readonly clipFactors: readonly number[];
  /** No site holds more than this share of a weighted round (`round.maxSiteShare`). */
  readonly maxSiteShare: number;
}

/** One round's aggregation, fed as updates stream in. */
export interface RoundAggregator {
  /** An accepted update, in acceptance order: fold it now, or keep its spool for `finish`. */
  add(update: StrategyUpdate): void;
  /**
   * Writes the round's aggregate into `out` (one value per model parameter; its content on entry is
   * undefined): Δ = out / divisor (divisor 1 when absent, so a rule may leave a sum with its total weight).
   * Returns each update's share of the round (audited in `round_weights`), in `add` order.
   */
  finish(bounds: RoundBounds, out: Float32Array): AggregatorResult;
}

export interface AggregatorResult {
  shares: number[];
  divisor?: number;
}

/** The round an aggregator begins. */
export interface StrategyRound {
  round: number;
  /** Values per update (and in Δ): the model's parameter count. */
  parameters: number;
}

/** What a strategy sets in the plan sent to the sites. */
export interface StrategyPlan {
  /** FedProx μ of the sites' proximal term (absent: `round.mu`). */
  mu?: number;
}

/** The round fields a strategy may take its option defaults from (older configs set them there). */
export interface StrategyRoundFields {
  mu: number;
  trimFraction: number;
}

export interface Strategy<Options = unknown> {
  /** The name `round.aggregation` selects it by. */
  readonly name: string;
  readonly description: string;
  /**
   * Linear: Δ is a weighted mean of the updates, so the masked sum of a secure-aggregation round computes it
   * (with each site's own example count as its weight). Only linear strategies are admitted with
   * `round.secureAggregation`.
   */
  readonly linear: boolean;
  /** `round.aggregationOptions`, validated when the coordinator config is parsed. */
  readonly options: z.ZodType<Options>;
  /** Option defaults from the round's own fields (overridden by `round.aggregationOptions`). */
  defaults?(round: StrategyRoundFields): Record<string, unknown>;
  plan?(options: Options): StrategyPlan;
  begin(options: Options, round: StrategyRound): RoundAggregator;
}
