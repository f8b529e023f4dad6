/**
 * The round state machine. A coordinator is always in one phase:
 *
 *   idle ──open──▶ collecting ──close──▶ closing ──closed──▶ idle
 *
 *  - collecting: the plan is out; sites download the model, (secure aggregation: exchange keys and shares,)
 *    and stream their updates in, each accepted into the round's aggregator;
 *  - closing: the deadline passed, every participant reported, or the round cannot go on: no new upload or
 *    acceptance; the acceptances under way finish, the uploads still running are dropped, then the round is
 *    aggregated (or fails) and its model committed.
 *
 * `transition` is the only way from one phase to the next, and refuses every other move. A resumed round
 * (after a restart) enters `collecting` by `open`, like a new one.
 */
import { FedcxrError } from '@fedcxr/core';
import type { RoundPlan } from '@fedcxr/federated';
import type { Ingest } from './ingest.js';
import type { JournalWriter, RoundJournal } from './round-store.js';
import type { SecAggRound } from './secagg-round.js';
import type { RoundAggregator } from './strategies/strategy.js';

/** An upload in flight: at most one per site. */
export interface InFlightUpload {
  siteId: string;
  socketId: string;
  ingest: Ingest;
  lastActivity: number;
}

/** A round between `open` and `closed`. */
export interface OpenRound {
  journal: RoundJournal;
  plan: RoundPlan;
  participants: Set<string>;
  /** In-flight uploads by nonce. */
  ingests: Map<string, InFlightUpload>;
  /** Uploads started per site in this round. */
  uploads: Map<string, number>;
  /**
   * Where accepted updates go (exactly one is set): the strategy's aggregator, or, in a secure-aggregation
   * round, its masked sum and share exchange.
   */
  aggregator?: RoundAggregator;
  secagg?: SecAggRound;
  journalWriter: JournalWriter;
  timer: NodeJS.Timeout;
  /** Tail of the acceptance queue (acceptances run one at a time). */
  serial: Promise<void>;
  startedAt: number;
}

export type RoundPhase =
  | { kind: 'idle' }
  | { kind: 'collecting'; round: OpenRound }
  | { kind: 'closing'; round: OpenRound; why: string };

export type RoundEvent = { type: 'open'; round: OpenRound } | { type: 'close'; why: string } | { type: 'closed' };

export function transition(phase: RoundPhase, event: RoundEvent): RoundPhase {
  switch (event.type) {
    case 'open':
      ensureIdle(phase);
      return { kind: 'collecting', round: event.round };
    case 'close':
      if (phase.kind !== 'collecting')
        throw new FedcxrError('round_state', `cannot close a round from the ${phase.kind} phase`);
      return { kind: 'closing', round: phase.round, why: event.why };
    case 'closed':
      if (phase.kind !== 'closing')
        throw new FedcxrError('round_state', `cannot finish a round from the ${phase.kind} phase`);
      return { kind: 'idle' };
  }
}

/** A new round can open only from idle. */
export function ensureIdle(phase: RoundPhase): void {
  if (phase.kind !== 'idle') throw new FedcxrError('round_open', `round ${phase.round.journal.round} is still open`);
}

/** The round between open and closed (collecting or closing), if any. */
export function activeRound(phase: RoundPhase): OpenRound | undefined {
  return phase.kind === 'idle' ? undefined : phase.round;
}

/** The round that takes new uploads and acceptances: `round` itself, if it is still collecting. */
export function collecting(phase: RoundPhase, round?: OpenRound): OpenRound | undefined {
  if (phase.kind !== 'collecting') return undefined;
  return round === undefined || phase.round === round ? phase.round : undefined;
}
