/**
 * Updates coming in (update:begin / update:chunk / update:end) for the round that is collecting: refused
 * before a byte is taken when stale, replayed, duplicate, late, from another model, over the site's upload
 * or spool quota, or not matching the model (manifest); then streamed into a spool (ingest.ts), and accepted
 * — durable in the journal before acknowledged — one at a time, into the round's aggregator. At most one
 * upload per site is in flight; one that goes idle, is abandoned (disconnect), superseded, refused or still
 * running when the round closes is dropped with its spool file.
 */
import { rmSync } from 'node:fs';
import { type Ack, type UpdateBegin, updateBeginSchema, updateChunkSchema, updateEndSchema } from '@fedcxr/federated';
import type { AuditLog } from './audit.js';
import type { CoordinatorConfig } from './config.js';
import { allowedWeight } from './influence.js';
import { type Ingest, MaskedIngest, UpdateIngest, UpdateRejected, validateManifest } from './ingest.js';
import type { OpenRound } from './round-phase.js';
import type { AcceptedUpdate, RoundStore } from './round-store.js';

/** What the intake needs of the coordinator. */
export interface IntakeHost {
  /** The round between open and closed, if any (chunks still land while it closes). */
  current(): OpenRound | undefined;
  /** `open`, if it still takes new uploads and acceptances. */
  collecting(open: OpenRound): boolean;
  /** An update was accepted (journal written, aggregator fed, audited). */
  accepted(open: OpenRound, update: AcceptedUpdate): void;
  changed(): void;
}

export class UpdateIntake {
  constructor(
    private readonly config: CoordinatorConfig,
    private readonly store: RoundStore,
    private readonly audit: AuditLog,
    private readonly host: IntakeHost,
  ) {}

  begin(siteId: string, raw: unknown, socketId: string): Ack {
    const parsed = updateBeginSchema.safeParse(raw);
    if (!parsed.success)
      return this.refuse(
        siteId,
        'malformed',
        `update:begin does not match the protocol: ${parsed.error.issues[0]?.message}`,
      );
    const begin = parsed.data;
    const r = this.config.round;
    const current = this.host.current();
    const open = current && this.host.collecting(current) ? current : undefined;
    if (!open || begin.round !== open.journal.round)
      return this.refuse(
        siteId,
        'stale_round',
        `round ${begin.round} is not open${current ? ` (open: ${current.journal.round})` : ''}`,
        { nonce: begin.nonce },
      );
    const nonce = { nonce: begin.nonce };
    if (open.journal.seenNonces.includes(begin.nonce))
      return this.refuse(siteId, 'replay', 'this update nonce was already used', nonce);
    const started = open.uploads.get(siteId) ?? 0;
    if (started >= r.maxUploadsPerSite)
      return this.refuse(
        siteId,
        'too_many_uploads',
        `${siteId} already started ${started} uploads in round ${begin.round} (limit ${r.maxUploadsPerSite})`,
        nonce,
      );
    open.uploads.set(siteId, started + 1);
    open.journal.seenNonces.push(begin.nonce);
    if (open.journal.accepted.some((u) => u.siteId === siteId))
      return this.refuse(
        siteId,
        'duplicate',
        `an update from ${siteId} was already accepted in round ${begin.round}`,
        nonce,
      );
    if (Date.now() > open.plan.deadline) return this.refuse(siteId, 'late', 'the round deadline has passed', nonce);
    if (begin.baseModelHash !== this.store.state.modelHash)
      return this.refuse(siteId, 'stale_model', 'update was trained from another global model', nonce);
    if (open.secagg && !open.secagg.isMember(siteId))
      return this.refuse(siteId, 'secagg', 'masked update before the share exchange of this round completed', nonce);
    try {
      validateManifest(begin, this.store.global.specs, open.secagg ? ['uint32'] : r.allowedEncodings);
    } catch (error) {
      return this.refuse(siteId, (error as UpdateRejected).code, (error as Error).message, nonce);
    }
    if (open.secagg) {
      // Masked values carry the site's own weight: the coordinator can only refuse a claim over the bound.
      const bound = allowedWeight(begin.numExamples, {
        declared: this.config.sites.find((s) => s.id === siteId)?.examples,
        enrolled: this.store.state.enrolled?.[siteId],
        growth: r.weightGrowth,
      });
      if (bound.limited)
        return this.refuse(
          siteId,
          'weight',
          `claims ${begin.numExamples} examples, more than the ${bound.weight} allowed`,
          nonce,
        );
    }
    // One upload in flight per site: one still running on this connection is a refusal; one left over by an
    // older connection of the site (replaced by this one) is dropped, its spool with it.
    for (const [other, entry] of open.ingests) {
      if (entry.siteId !== siteId) continue;
      if (entry.socketId === socketId)
        return this.refuse(siteId, 'busy', 'an upload from this site is already in progress', nonce);
      this.drop(open, other, 'update_dropped', 'superseded by an upload on a newer connection');
    }
    const spoolBytes = this.store.global.flat.length * 4;
    const quota = r.siteSpoolQuotaBytes ?? 2 * spoolBytes;
    const held = open.journal.accepted.filter((u) => u.siteId === siteId).length * spoolBytes;
    if (held + spoolBytes > quota)
      return this.refuse(siteId, 'quota', `spool quota of ${quota} bytes for ${siteId} reached`, nonce);
    const spool = this.store.spoolPath(open.journal.round, siteId, begin.nonce);
    const ingest = open.secagg
      ? new MaskedIngest(begin, spool, r.chunkBytes)
      : new UpdateIngest(begin, spool, r.chunkBytes);
    open.ingests.set(begin.nonce, { siteId, socketId, ingest, lastActivity: Date.now() });
    return { ok: true };
  }

  chunk(siteId: string, raw: unknown): Ack {
    const parsed = updateChunkSchema.safeParse(raw);
    if (!parsed.success) return this.refuse(siteId, 'malformed', 'update:chunk does not match the protocol');
    const chunk = parsed.data;
    const open = this.host.current();
    const entry = open?.ingests.get(chunk.nonce);
    if (!open || !entry || entry.siteId !== siteId || chunk.round !== open.journal.round)
      return { ok: false, code: 'stale_round', error: 'no such update in progress' };
    try {
      entry.lastActivity = Date.now();
      entry.ingest.push(chunk.index, chunk.data);
      return { ok: true };
    } catch (error) {
      this.drop(open, chunk.nonce);
      return this.refuse(siteId, error instanceof UpdateRejected ? error.code : 'invalid', (error as Error).message, {
        nonce: chunk.nonce,
      });
    }
  }

  async end(siteId: string, raw: unknown): Promise<Ack> {
    const parsed = updateEndSchema.safeParse(raw);
    if (!parsed.success) return this.refuse(siteId, 'malformed', 'update:end does not match the protocol');
    const open = this.host.current();
    const entry = open?.ingests.get(parsed.data.nonce);
    if (!open || !entry || entry.siteId !== siteId)
      return { ok: false, code: 'stale_round', error: 'no such update in progress' };
    open.ingests.delete(parsed.data.nonce);
    try {
      await this.accept(open, siteId, entry.ingest.begin, entry.ingest);
      return { ok: true };
    } catch (error) {
      discard(entry.ingest);
      return this.refuse(siteId, error instanceof UpdateRejected ? error.code : 'invalid', (error as Error).message, {
        nonce: parsed.data.nonce,
      });
    }
  }

  /** Acceptances run one at a time (journal write, then the aggregator), and a closing round waits for them. */
  private accept(open: OpenRound, siteId: string, begin: UpdateBegin, ingest: Ingest): Promise<void> {
    const work = open.serial.then(async () => {
      if (!this.host.collecting(open))
        throw new UpdateRejected('stale_round', `round ${open.journal.round} closed before the update finished`);
      const result = ingest.finish(open.plan.normBound);
      const update: AcceptedUpdate = {
        siteId,
        nonce: begin.nonce,
        numExamples: begin.numExamples,
        sha256: result.sha256,
        spool: ingest.spoolPath,
        spoolSha256: result.spoolSha256,
        norm: result.norm,
        metrics: begin.metrics,
        globalEvaluation: begin.globalEvaluation,
      };
      open.journal.accepted.push(update);
      // Durable before acknowledged: a coordinator restarted after this line still has the update.
      await open.journalWriter.persist();
      (open.secagg ?? open.aggregator)?.add(update);
      this.audit.append('update_accepted', {
        round: open.journal.round,
        siteId,
        nonce: begin.nonce,
        sha256: result.sha256,
        numExamples: begin.numExamples,
        norm: result.norm,
        encoding: begin.tensors[0]?.encoding ?? 'float32',
        metrics: begin.metrics,
        globalEvaluation: begin.globalEvaluation,
      });
      this.host.accepted(open, update);
    });
    open.serial = work.catch(() => {});
    return work;
  }

  /** Uploads over a closed connection are abandoned. */
  abandon(socketId: string): void {
    const open = this.host.current();
    if (!open) return;
    for (const [nonce, entry] of open.ingests)
      if (entry.socketId === socketId) this.drop(open, nonce, 'update_abandoned', 'site disconnected');
  }

  /** Drops uploads that sent nothing for `uploadIdleMs`. */
  sweep(): void {
    const open = this.host.current();
    if (!open || !this.host.collecting(open)) return;
    const limit = Date.now() - this.config.round.uploadIdleMs;
    for (const [nonce, entry] of open.ingests)
      if (entry.lastActivity < limit)
        this.drop(open, nonce, 'update_dropped', `upload idle for ${this.config.round.uploadIdleMs} ms`);
  }

  /** At close: every upload still running is dropped, audited with the reason the round closed. */
  dropUnfinished(open: OpenRound, why: string): void {
    for (const nonce of [...open.ingests.keys()])
      this.drop(open, nonce, 'update_dropped', `upload unfinished when the round closed (${why})`, false);
  }

  /** Ends an in-flight upload: spool removed; audited with its reason when one is given. */
  drop(open: OpenRound, nonce: string, event?: string, reason?: string, notify = true): void {
    const entry = open.ingests.get(nonce);
    if (!entry) return;
    discard(entry.ingest);
    open.ingests.delete(nonce);
    if (event)
      this.audit.append(event, {
        round: open.journal.round,
        siteId: entry.siteId,
        nonce,
        received: entry.ingest.bytesReceived,
        reason,
      });
    if (notify) this.host.changed();
  }

  private refuse(siteId: string, code: string, error: string, fields: Record<string, unknown> = {}): Ack {
    this.audit.append('update_rejected', {
      round: this.host.current()?.journal.round ?? null,
      siteId,
      code,
      reason: error,
      ...fields,
    });
    this.host.changed();
    return { ok: false, code, error };
  }
}

/** Closes an ingest and removes its spool file. */
function discard(ingest: Ingest): void {
  ingest.close();
  rmSync(ingest.spoolPath, { force: true });
}
