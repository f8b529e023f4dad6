/**
 * The coordinator's durable state, all of it in `stateDir`:
 *   state.json                    lastRound, model version/hash/file, per-round history, enrolment
 *   models/global-<round>.fcxw    checkpoints (canonical model bytes; sha256 = model hash)
 *   rounds/<round>/journal.json   status, accepted updates (site, nonce, hashes, metrics), seen nonces
 *   rounds/<round>/updates/*.f32  spooled deltas of accepted (and in-flight) updates
 * Every write is atomic (core's writeFileAtomic, through writePrivate*Atomic: a temporary file created 0600,
 * synced, renamed), directories are 0700, so what a crash leaves is always the last complete write. A round's
 * journal writes go one after the other (`JournalWriter`), so an older snapshot never lands last.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FedcxrError } from '@fedcxr/core';
import {
  decodeModel,
  type Evaluation,
  type Metrics,
  sha256Hex,
  type TensorSpec,
  writePrivateFileAtomic,
  writePrivateJsonAtomic,
} from '@fedcxr/federated';
import type { AuditLog } from './audit.js';
import { spoolSha256 } from './spool.js';

export interface AcceptedUpdate {
  siteId: string;
  nonce: string;
  /** The site's claim (its weight is bounded by the coordinator at aggregation, see influence.ts). */
  numExamples: number;
  sha256: string;
  spool: string;
  spoolSha256: string;
  norm: number;
  metrics: Metrics;
  globalEvaluation?: Evaluation;
  /** Set at aggregation: the weight the coordinator allowed, the share it got, the clip factor applied. */
  weight?: number;
  share?: number;
  clipFactor?: number;
}

export interface RoundJournal {
  round: number;
  status: 'open' | 'aggregated' | 'failed';
  baseModelHash: string;
  seed: number;
  openedAt: string;
  /** The plan's deadline (ms since epoch): a resumed round keeps it. */
  deadline?: number;
  /** Sites the plan went to: a resumed round waits for all of them (or its deadline). */
  participants?: string[];
  accepted: AcceptedUpdate[];
  /** Every nonce any site started an upload with in this round (bounded: maxUploadsPerSite per site). */
  seenNonces: string[];
}

export interface RoundSummary {
  round: number;
  outcome: 'aggregated' | 'failed';
  reason?: string;
  modelHash: string;
  sites: string[];
  numExamples: number;
  aggregation: string;
  /** Example-weighted mean of the sites' local training metrics. */
  train: Metrics;
  /** Example-weighted mean of the sites' validation metrics of the model they started this round from. */
  validation: Metrics;
  validationExamples: number;
  durationMs: number;
}

export interface ModelEvaluation {
  modelRound: number;
  modelHash: string;
  metrics: Metrics;
  numExamples: number;
}

export interface PersistedState {
  lastRound: number;
  modelRound: number;
  modelHash: string;
  modelFile: string;
  history: RoundSummary[];
  evaluations: ModelEvaluation[];
  /** Per site, the weight it was last aggregated with (enrolment, then bounded growth). */
  enrolled?: Record<string, number>;
}

/** The current global model: its canonical bytes, tensor specs and values (a view into the bytes). */
export interface GlobalModel {
  bytes: Uint8Array;
  specs: TensorSpec[];
  flat: Float32Array;
}

/** A journal is small by construction (accepted updates + maxUploadsPerSite nonces per site). */
const JOURNAL_LIMIT = 64 * 1024 * 1024;

export class RoundStore {
  state!: PersistedState;
  global!: GlobalModel;

  constructor(
    readonly stateDir: string,
    private readonly keepCheckpoints: number,
  ) {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  }

  path(...parts: string[]): string {
    return join(this.stateDir, ...parts);
  }

  roundDir(round: number): string {
    return this.path('rounds', String(round).padStart(6, '0'));
  }

  spoolPath(round: number, siteId: string, nonce: string): string {
    return join(this.roundDir(round), 'updates', `${siteId}-${nonce}.f32`);
  }

  /**
   * Loads state.json and its checkpoint (checked against the recorded hash); false when the state dir is new.
   */
  load(): boolean {
    const stateFile = this.path('state.json');
    if (!existsSync(stateFile)) return false;
    this.state = JSON.parse(readFileSync(stateFile, 'utf8')) as PersistedState;
    const bytes = alignedCopy(readFileSync(this.path(this.state.modelFile)));
    if (sha256Hex(bytes) !== this.state.modelHash)
      throw new FedcxrError('checkpoint_corrupt', 'global checkpoint does not match its recorded hash', {
        file: this.path(this.state.modelFile),
      });
    this.setGlobal(bytes);
    return true;
  }

  /** A new state dir: `bytes` is checkpoint 0. */
  async create(bytes: Uint8Array): Promise<void> {
    const modelFile = await this.writeCheckpoint(0, bytes);
    this.state = { lastRound: 0, modelRound: 0, modelHash: sha256Hex(bytes), modelFile, history: [], evaluations: [] };
    this.setGlobal(bytes);
    await this.saveState();
  }

  setGlobal(bytes: Uint8Array): void {
    const model = decodeModel(bytes);
    this.global = { bytes, specs: model.specs, flat: model.flat };
  }

  /** Writes `bytes` as round `round`'s checkpoint, makes it the global model and saves state.json. */
  async commitModel(round: number, bytes: Uint8Array, summary: (modelHash: string) => RoundSummary) {
    const modelHash = sha256Hex(bytes);
    const modelFile = await this.writeCheckpoint(round, bytes);
    this.setGlobal(bytes);
    this.state.modelRound = round;
    this.state.modelHash = modelHash;
    this.state.modelFile = modelFile;
    const done = summary(modelHash);
    this.state.history.push(done);
    await this.saveState();
    return done;
  }

  private async writeCheckpoint(round: number, bytes: Uint8Array): Promise<string> {
    const name = join('models', `global-${String(round).padStart(6, '0')}.fcxw`);
    await writePrivateFileAtomic(this.path(name), bytes);
    return name;
  }

  async saveState(): Promise<void> {
    await writePrivateJsonAtomic(this.path('state.json'), this.state);
  }

  /** A fresh round directory (anything a failed earlier attempt left removed) and its first journal. */
  async openRound(journal: RoundJournal): Promise<void> {
    rmSync(this.roundDir(journal.round), { recursive: true, force: true });
    mkdirSync(join(this.roundDir(journal.round), 'updates'), { recursive: true, mode: 0o700 });
    await this.saveJournal(journal);
  }

  async saveJournal(journal: RoundJournal): Promise<void> {
    await writePrivateJsonAtomic(join(this.roundDir(journal.round), 'journal.json'), journal);
  }

  journalWriter(journal: RoundJournal, log: (message: string) => void): JournalWriter {
    return new JournalWriter(() => this.saveJournal(journal), log);
  }

  /** An aggregated round's spools are no longer needed. */
  removeUpdates(round: number): void {
    rmSync(join(this.roundDir(round), 'updates'), { recursive: true, force: true });
  }

  /** Keeps the newest `keepCheckpoints` checkpoints, and always the current one. */
  pruneCheckpoints(): void {
    const dir = this.path('models');
    const files = readdirSync(dir)
      .filter((f) => f.endsWith('.fcxw'))
      .sort();
    for (const file of files.slice(0, Math.max(0, files.length - this.keepCheckpoints)))
      if (join('models', file) !== this.state.modelFile) rmSync(join(dir, file), { force: true });
  }

  /**
   * After a restart: the journal of the last round if it was still open on the current model, with its
   * accepted updates checked again against their spools (a lost one is audited and left out) and the spools
   * of uploads that were in flight removed. A secure-aggregation round cannot resume (its masks depend on
   * per-round keys that died with the connections): its journal is marked failed. A journal too large to be
   * one of ours fails its round instead of stopping the start.
   */
  async resumable(secure: boolean, audit: AuditLog): Promise<RoundJournal | undefined> {
    const round = this.state.lastRound;
    const file = join(this.roundDir(round), 'journal.json');
    if (round === 0 || !existsSync(file)) return undefined;
    if (statSync(file).size > JOURNAL_LIMIT) {
      audit.append('round_failed', {
        round,
        reason: `round journal larger than ${JOURNAL_LIMIT} bytes: not resumed`,
      });
      return undefined;
    }
    const journal = JSON.parse(readFileSync(file, 'utf8')) as RoundJournal;
    if (journal.status !== 'open' || journal.baseModelHash !== this.state.modelHash) return undefined;
    if (secure) {
      const reason = 'secure-aggregation round interrupted by a restart';
      journal.status = 'failed';
      await this.saveJournal(journal);
      for (const update of journal.accepted)
        audit.append('update_dropped', { round, siteId: update.siteId, nonce: update.nonce, reason });
      audit.append('round_failed', { round, reason });
      return undefined;
    }
    const elements = this.global.flat.length;
    const kept: AcceptedUpdate[] = [];
    for (const update of journal.accepted) {
      if (existsSync(update.spool) && spoolSha256(update.spool, elements) === update.spoolSha256) kept.push(update);
      else
        audit.append('update_lost', {
          round,
          siteId: update.siteId,
          nonce: update.nonce,
          reason: 'spool missing or corrupt',
        });
    }
    journal.accepted = kept;
    // Spools of uploads that were in flight at the crash: never accepted, removed.
    const updatesDir = join(this.roundDir(round), 'updates');
    if (existsSync(updatesDir))
      for (const name of readdirSync(updatesDir)) {
        const path = join(updatesDir, name);
        if (kept.some((u) => u.spool === path)) continue;
        rmSync(path, { force: true });
        audit.append('update_dropped', { round, spool: name, reason: 'upload in flight at a restart' });
      }
    return journal;
  }
}

/** One round's journal writes, one at a time and in order; a failed write is logged, never unhandled. */
export class JournalWriter {
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly write: () => Promise<void>,
    private readonly log: (message: string) => void,
  ) {}

  /** Resolves once this write (of the journal as it is now, or later) is on disk; rejects if it failed. */
  persist(): Promise<void> {
    const write = this.queue.then(() => this.write());
    this.queue = write.catch((error: Error) => this.log(`journal write failed: ${error.message}`));
    return write;
  }
}

export function alignedCopy(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length);
  out.set(bytes);
  return out;
}
