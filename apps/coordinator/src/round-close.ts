/**
 * The end of a round, once it is `closing` (round-phase.ts) and its unfinished uploads are dropped: with
 * fewer accepted updates than the quorum, or masks that cannot be removed, it fails (journal, audit);
 * otherwise it is aggregated (aggregation.ts: bounds, the strategy's aggregator, global += η·Δ) into a new
 * checkpoint, committed in state.json before the journal says `aggregated`. An internal failure (a full disk,
 * say) is audited and fails the round unless its model was already committed; it never rejects.
 */
import { FedcxrError } from '@fedcxr/core';
import type { Metrics } from '@fedcxr/federated';
import { aggregateBounded, serverStep } from './aggregation.js';
import type { AuditLog } from './audit.js';
import type { CoordinatorConfig } from './config.js';
import type { OpenRound } from './round-phase.js';
import type { RoundStore, RoundSummary } from './round-store.js';

export interface CloseContext {
  config: CoordinatorConfig;
  /** The strategy's name, as summaries and audit entries report it. */
  aggregation: string;
  store: RoundStore;
  audit: AuditLog;
  log: (message: string) => void;
}

export async function finishRound(ctx: CloseContext, open: OpenRound, why: string): Promise<RoundSummary> {
  const { config, store, audit } = ctx;
  const round = open.journal.round;
  const accepted = open.journal.accepted;
  const quorum = config.round.minSites;
  let committed = false;
  let summary: RoundSummary | undefined;
  try {
    let unmaskError = open.secagg?.error;
    if (open.secagg && !unmaskError && accepted.length >= quorum) {
      try {
        await open.secagg.unmask(accepted.map((u) => u.siteId));
      } catch (error) {
        unmaskError = `secure aggregation could not remove the masks: ${(error as Error).message}`;
      }
    }
    if (accepted.length < quorum || unmaskError) {
      open.journal.status = 'failed';
      await open.journalWriter.persist();
      const reason = unmaskError ?? `${accepted.length} of ${quorum} required updates by the ${why}`;
      summary = summarize(ctx, open, 'failed', reason);
      audit.append('round_failed', { round, reason, accepted: accepted.map((u) => u.siteId) });
      return summary;
    }
    const bytes = aggregate(ctx, open);
    summary = await store.commitModel(round, bytes, () => summarize(ctx, open, 'aggregated'));
    committed = true;
    open.journal.status = 'aggregated';
    await open.journalWriter.persist();
    store.pruneCheckpoints();
    store.removeUpdates(round);
    audit.append('round_aggregated', {
      round,
      modelHash: summary.modelHash,
      sites: summary.sites,
      numExamples: summary.numExamples,
      aggregation: summary.aggregation,
      train: summary.train,
      validation: summary.validation,
      why,
    });
    return summary;
  } catch (error) {
    const reason = (error as Error).message;
    audit.append('round_error', { round, reason });
    ctx.log(`round ${round} could not close: ${reason}`);
    return committed && summary ? summary : summarize(ctx, open, 'failed', `round could not close: ${reason}`);
  }
}

/**
 * The new global model's bytes: the current header, then global + η·Δ, Δ written in place by the round's
 * aggregator (the masked sum's, or the strategy's under the influence bounds).
 */
function aggregate(ctx: CloseContext, open: OpenRound): Uint8Array {
  const { config, store } = ctx;
  const global = store.global;
  const bytes = new Uint8Array(global.bytes.length);
  const offset = global.bytes.length - global.flat.length * 4;
  const values = new Float32Array(bytes.buffer, offset, global.flat.length);
  const accepted = open.journal.accepted;
  store.state.enrolled ??= {};
  const enrolled = store.state.enrolled;
  let divisor: number | undefined;
  if (open.secagg) {
    // Masked values carry each site's own (bounded at upload) example count.
    divisor = open.secagg.finish(values).divisor;
    for (const u of accepted) enrolled[u.siteId] = u.numExamples;
  } else {
    if (!open.aggregator) throw new FedcxrError('internal', `round ${open.journal.round} has no aggregator`);
    divisor = aggregateBounded(
      {
        round: open.journal.round,
        rule: ctx.aggregation,
        accepted,
        aggregator: open.aggregator,
        settings: config.round,
        declared: new Map(config.sites.map((site) => [site.id, site.examples])),
        enrolled,
        audit: ctx.audit,
      },
      values,
    ).divisor;
  }
  serverStep(global.flat, values, config.round.serverLearningRate, divisor);
  bytes.set(global.bytes.subarray(0, offset));
  return bytes;
}

export function summarize(
  ctx: Pick<CloseContext, 'aggregation' | 'store'>,
  open: OpenRound,
  outcome: 'aggregated' | 'failed',
  reason?: string,
): RoundSummary {
  const accepted = open.journal.accepted;
  const numExamples = accepted.reduce((n, u) => n + (u.weight ?? u.numExamples), 0);
  const evaluated = accepted.filter((u) => u.globalEvaluation && u.globalEvaluation.numExamples > 0);
  return {
    round: open.journal.round,
    outcome,
    ...(reason ? { reason } : {}),
    modelHash: ctx.store.state.modelHash,
    sites: accepted.map((u) => u.siteId),
    numExamples,
    aggregation: ctx.aggregation,
    train: weightedMean(accepted.map((u) => ({ weight: u.weight ?? u.numExamples, metrics: u.metrics }))),
    validation: weightedMean(
      evaluated.map((u) => ({ weight: u.globalEvaluation!.numExamples, metrics: u.globalEvaluation!.metrics })),
    ),
    validationExamples: evaluated.reduce((n, u) => n + u.globalEvaluation!.numExamples, 0),
    durationMs: Date.now() - open.startedAt,
  };
}

export function weightedMean(items: { weight: number; metrics: Metrics }[]): Metrics {
  const sums: Record<string, number> = {};
  const weights: Record<string, number> = {};
  for (const { weight, metrics } of items) {
    for (const [name, value] of Object.entries(metrics)) {
      sums[name] = (sums[name] ?? 0) + weight * value;
      weights[name] = (weights[name] ?? 0) + weight;
    }
  }
  return Object.fromEntries(
    Object.keys(sums).map((name) => [name, weights[name] > 0 ? sums[name] / weights[name] : 0]),
  );
}
