/**
 * One secure-aggregation round, the coordinator's side of the protocol (Bonawitz et al. 2017; the sites'
 * side and what holds: packages/federated/src/secagg.ts). Participants publish keys; once all have one, the
 * peer list and threshold t go out (`peers`); each participant's encrypted shares are relayed once every peer
 * has shared or gone offline, among the `members` (those that shared: the paper's U2). Accepted masked
 * updates are summed modulo 2^32 as they arrive; at close the survivors reveal shares, the masks are removed
 * and the sum, divided by Σ examples, is the round's aggregate — a weighted mean, which is why only linear
 * strategies are admitted with secure aggregation (config.ts).
 */
import { FedcxrError } from '@fedcxr/core';
import {
  type Ack,
  addMasked,
  checkThreshold,
  defaultThreshold,
  type RevealedShare,
  type SecAggPeer,
  secaggKeySchema,
  secaggRevealReplySchema,
  secaggSharesSchema,
  unmaskSum,
} from '@fedcxr/federated';
import type { Socket } from 'socket.io';
import type { AuditLog } from './audit.js';
import { readSpool } from './spool.js';
import type { StrategyUpdate } from './strategies/strategy.js';

/** What a secure round needs of the coordinator. */
export interface SecAggHost {
  audit: AuditLog;
  online(siteId: string): boolean;
  socket(siteId: string): Socket | undefined;
  /** Whether the round still collects (shares are relayed only then). */
  collecting(): boolean;
  /** Ends the round now; `error` says why it cannot be aggregated. */
  close(why: string): void;
}

type Reply = (value: Ack) => void;

/** The answers when no secure-aggregation round is open. */
export const NO_KEY_EXPECTED: Ack = {
  ok: false,
  code: 'secagg',
  error: 'no secure-aggregation round is expecting a key from this site',
};
export const NO_SHARES_EXPECTED: Ack = {
  ok: false,
  code: 'secagg',
  error: 'no secure-aggregation round is expecting shares',
};

export class SecAggRound {
  private readonly keys = new Map<string, { publicKey: string; shareKey: string }>();
  private peers?: SecAggPeer[];
  private threshold?: number;
  private readonly shares = new Map<string, { to: string; ciphertext: string }[]>();
  private relayed = false;
  private members?: string[];
  private readonly sum: Uint32Array;
  private total = 0;
  /** Why the round cannot be aggregated, once that is known. */
  error?: string;

  constructor(
    readonly round: number,
    private readonly participants: ReadonlySet<string>,
    elements: number,
    private readonly settings: { threshold?: number; scale: number },
    private readonly host: SecAggHost,
  ) {
    this.sum = new Uint32Array(elements);
  }

  /** Whether the plan may (still) go to `siteId`: no new member once the peer list, or the shares, are out. */
  admits(siteId: string): boolean {
    if (this.peers && !this.keys.has(siteId)) return false;
    return !this.members || this.members.includes(siteId);
  }

  /** A masked upload is taken only from a member, once the share exchange completed. */
  isMember(siteId: string): boolean {
    return this.members?.includes(siteId) ?? false;
  }

  onKey(siteId: string, raw: unknown, reply: Reply) {
    const key = secaggKeySchema.safeParse(raw);
    if (!key.success || key.data.round !== this.round || !this.participants.has(siteId)) return reply(NO_KEY_EXPECTED);
    if (this.peers) return reply({ ok: false, code: 'secagg', error: 'the peer list of this round is already out' });
    const { publicKey, shareKey } = key.data;
    this.keys.set(siteId, { publicKey, shareKey });
    this.host.audit.append('secagg_key', { round: this.round, siteId, publicKey, shareKey });
    reply({ ok: true });
    if (![...this.participants].every((id) => this.keys.has(id))) return;
    const peers = [...this.keys].map(([id, k]) => ({ siteId: id, ...k }));
    const threshold = this.settings.threshold ?? defaultThreshold(peers.length);
    try {
      checkThreshold(threshold, peers.length);
    } catch (error) {
      this.error = `secure aggregation cannot start: ${(error as Error).message}`;
      this.host.close('secure-aggregation threshold');
      return;
    }
    this.peers = peers;
    this.threshold = threshold;
    this.host.audit.append('secagg_peers', { round: this.round, sites: [...this.keys.keys()], threshold });
    for (const id of this.keys.keys())
      this.host.socket(id)?.emit('secagg:peers', { round: this.round, threshold, peers });
    this.maybeRelay(); // in case a participant already left
  }

  onShares(siteId: string, raw: unknown, reply: Reply) {
    const parsed = secaggSharesSchema.safeParse(raw);
    if (!parsed.success || !this.peers || parsed.data.round !== this.round) return reply(NO_SHARES_EXPECTED);
    if (!this.keys.has(siteId))
      return reply({ ok: false, code: 'secagg', error: `${siteId} is not a participant of this round` });
    const { shares } = parsed.data;
    const previous = this.shares.get(siteId);
    // A re-send after a reconnect is byte-identical (the site keeps its ciphertexts); anything else is refused.
    if (previous)
      return reply(
        JSON.stringify(previous) === JSON.stringify(shares)
          ? { ok: true }
          : { ok: false, code: 'secagg', error: `${siteId} already sent different shares` },
      );
    const others = this.peers.map((p) => p.siteId).filter((id) => id !== siteId);
    const recipients = shares.map((s) => s.to);
    if (
      new Set(recipients).size !== recipients.length ||
      recipients.length !== others.length ||
      !others.every((id) => recipients.includes(id))
    )
      return reply({ ok: false, code: 'secagg', error: 'shares must go to every other participant exactly once' });
    if (this.relayed) return reply({ ok: false, code: 'secagg', error: 'the share exchange of this round is over' });
    this.shares.set(siteId, shares);
    reply({ ok: true });
    this.maybeRelay();
  }

  /** A (re)connected participant gets the peer list and its relayed shares again (both idempotent there). */
  resend(siteId: string): void {
    if (!this.peers || !this.keys.has(siteId)) return;
    const socket = this.host.socket(siteId);
    socket?.emit('secagg:peers', { round: this.round, threshold: this.threshold, peers: this.peers });
    if (this.members?.includes(siteId))
      socket?.emit('secagg:shares', { round: this.round, shares: this.sharesFor(siteId) });
  }

  /**
   * Relays the shares once every peer has shared or is offline: the sharers become the round's members (a
   * peer that went away before sharing is left out, and nobody masks toward it). Fewer than t: the round
   * cannot be unmasked and fails now.
   */
  maybeRelay(): void {
    const peers = this.peers;
    if (!peers || this.relayed || !this.host.collecting()) return;
    if (peers.some((p) => !this.shares.has(p.siteId) && this.host.online(p.siteId))) return;
    const members = peers.map((p) => p.siteId).filter((id) => this.shares.has(id));
    if (members.length < (this.threshold ?? 2)) {
      this.error = `only ${members.length} of ${peers.length} participants shared their secrets, the threshold is ${this.threshold}`;
      this.host.close('secure-aggregation share exchange');
      return;
    }
    this.relayed = true;
    this.members = members;
    this.host.audit.append('secagg_shares_relayed', {
      round: this.round,
      members,
      left: peers.map((p) => p.siteId).filter((id) => !members.includes(id)),
    });
    for (const id of members)
      this.host.socket(id)?.emit('secagg:shares', { round: this.round, shares: this.sharesFor(id) });
  }

  /** An accepted masked update: its raw uint32 spool is added to the sum (mod 2^32) at once. */
  add(update: StrategyUpdate): void {
    for (const { offset, values } of readSpool(update.spool, this.sum.length)) {
      const raw = new Uint32Array(values.buffer, values.byteOffset, values.length);
      addMasked(this.sum.subarray(offset, offset + raw.length), raw);
    }
    this.total += update.numExamples;
  }

  /**
   * Removes every mask from the sum: asks each survivor for its shares (of the survivors' self-mask seeds and
   * of the dropped sites' masking keys; every survivor gets the same view) and rebuilds the secrets from the
   * ≥ t answers.
   */
  async unmask(survivors: string[]): Promise<void> {
    const { peers, threshold, members, round } = this;
    if (!peers || threshold === undefined || !members)
      throw new FedcxrError('secagg_unrecoverable', 'the share exchange never completed');
    const dropped = members.filter((id) => !survivors.includes(id));
    if (survivors.length < threshold)
      throw new FedcxrError(
        'secagg_unrecoverable',
        `${survivors.length} survivor(s) but the threshold is ${threshold}: sites refuse to unmask fewer`,
      );
    const answers = await Promise.all(
      survivors.map(async (survivorId) => {
        const socket = this.host.socket(survivorId);
        if (!socket) return { survivorId, error: 'offline' };
        try {
          const reply = secaggRevealReplySchema.parse(
            await socket.timeout(30_000).emitWithAck('secagg:reveal', { round, survivors, dropped }),
          );
          if (reply.round !== round) return { survivorId, error: `answered for round ${reply.round}` };
          if ('refused' in reply) return { survivorId, error: `refused (${reply.refused})` };
          return { survivorId, shares: reply.shares };
        } catch (error) {
          return { survivorId, error: (error as Error).message };
        }
      }),
    );
    const reveals = new Map<string, RevealedShare[]>();
    for (const answer of answers) if (answer.shares) reveals.set(answer.survivorId, answer.shares);
    const failed = answers.filter((a) => a.error).map((a) => `${a.survivorId}: ${a.error}`);
    if (reveals.size < threshold)
      throw new FedcxrError(
        'secagg_unrecoverable',
        `${reveals.size} survivor(s) revealed shares, ${threshold} needed${failed.length ? ` (${failed.join('; ')})` : ''}`,
      );
    unmaskSum(this.sum, { round, peers, members, threshold, survivors, reveals });
    this.host.audit.append('secagg_unmasked', {
      round,
      survivors,
      dropped,
      revealers: [...reveals.keys()],
      threshold,
    });
    if (dropped.length > 0) this.host.audit.append('secagg_recovered', { round, dropped, survivors });
  }

  /**
   * The unmasked sum as fixed point removed, into `out`: Σ numExamples_i · δ_i. Δ = out / divisor (Σ examples):
   * the example-weighted mean that a linear strategy computes.
   */
  finish(out: Float32Array): { divisor: number } {
    const signed = new Int32Array(this.sum.buffer, this.sum.byteOffset, this.sum.length);
    const scale = this.settings.scale;
    for (let i = 0; i < out.length; i++) out[i] = signed[i] / scale;
    return { divisor: this.total };
  }

  private sharesFor(siteId: string): { from: string; ciphertext: string }[] {
    const out: { from: string; ciphertext: string }[] = [];
    for (const [from, shares] of this.shares)
      for (const share of shares) if (share.to === siteId) out.push({ from, ciphertext: share.ciphertext });
    return out;
  }
}
