/**
 * The federated coordinator: an HTTP(S) server carrying socket.io for the sites, the live dashboard and
 * a small admin API. It runs rounds (plan → sites download the hash-addressed global model → updates
 * streamed back, validated, spooled and aggregated → new global model checkpointed atomically), with a
 * quorum, a deadline, replay/stale protection, and an append-only audit log. All durable state lives in
 * `stateDir`, so a restarted coordinator resumes an open round with every update it had accepted.
 *
 * stateDir layout:
 *   state.json                    lastRound, model version/hash/file, per-round history
 *   models/global-<round>.fcxw    checkpoints (canonical model bytes; sha256 = model hash)
 *   rounds/<round>/journal.json   status, accepted updates (site, nonce, hashes, metrics), seen nonces
 *   rounds/<round>/updates/*.f32  spooled float32 deltas of accepted updates
 *   audit.jsonl                   append-only, hash-chained (rotated to audit.<seq>.jsonl, chain carried on)
 * Every file is created 0600 and every directory 0700 (written with their final mode, never chmod'ed after).
 *
 * Fail closed: every HTTP route, socket.io event and binary frame is handled inside a guard; a bad input is
 * a 4xx or a refused ack plus an audit entry, never an exception that reaches the event loop.
 */
import { createHash, randomInt, timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket as NetSocket } from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { FedcxrError, type NamedTensors, parseConfig } from '@fedcxr/core';
import {
  type Ack,
  addMasked,
  checkThreshold,
  createTabularModel,
  decodeModel,
  defaultThreshold,
  dequantize,
  type Evaluation,
  encodeModel,
  evaluationReportSchema,
  LIMITS,
  type Metrics,
  modelChunkRequestSchema,
  PROTOCOL_VERSION,
  type RevealedShare,
  type RoundPlan,
  type SecAggPeer,
  secaggKeySchema,
  secaggRevealReplySchema,
  secaggSharesSchema,
  sha256Hex,
  siteAuthSchema,
  siteStatusSchema,
  type TensorSpec,
  type UpdateBegin,
  unmaskSum,
  updateBeginSchema,
  updateChunkSchema,
  updateEndSchema,
  writePrivateFileAtomic,
  writePrivateJsonAtomic,
} from '@fedcxr/federated';
import { type Socket, Server as SocketServer } from 'socket.io';
import { AccessControl, loginPage, type Role, redactEntry } from './access.js';
import {
  FedAvgAccumulator,
  type Ingest,
  MaskedIngest,
  readSpool,
  robustAggregate,
  spoolSha256,
  UpdateIngest,
  UpdateRejected,
  validateManifest,
} from './aggregation.js';
import { type AuditEntry, AuditLog } from './audit.js';
import { type CoordinatorConfig, type CoordinatorConfigInput, coordinatorConfigSchema } from './config.js';
import { dashboardHtml } from './dashboard.js';
import { allowedWeight, cappedShares, clipFactors, lowerMedian } from './influence.js';
import { normalizeAddress, RefusalGate } from './refusals.js';

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

interface RoundJournal {
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

interface PersistedState {
  lastRound: number;
  modelRound: number;
  modelHash: string;
  modelFile: string;
  history: RoundSummary[];
  evaluations: { modelRound: number; modelHash: string; metrics: Metrics; numExamples: number }[];
  /** Per site, the weight it was last aggregated with (enrolment, then bounded growth). */
  enrolled?: Record<string, number>;
}

interface SiteInfo {
  id: string;
  online: boolean;
  lastSeen: number;
  examples: number;
  state: string;
  round: number;
  socket?: Socket;
}

/**
 * A secure-aggregation round: published keys; once all participants have one, the peer list and threshold
 * (`peers`); each participant's encrypted shares, relayed once every peer has shared or gone offline, among
 * the `members` (those that shared: the paper's U2); the modular sum and Σ examples; and a reason the round
 * cannot go on, if any.
 */
interface SecAggRound {
  keys: Map<string, { publicKey: string; shareKey: string }>;
  peers?: SecAggPeer[];
  threshold?: number;
  shares: Map<string, { to: string; ciphertext: string }[]>;
  relayed: boolean;
  members?: string[];
  sum: Uint32Array;
  total: number;
  error?: string;
}

interface OpenRound {
  journal: RoundJournal;
  plan: RoundPlan;
  participants: Set<string>;
  /** In-flight uploads by nonce: at most one per site. */
  ingests: Map<string, { siteId: string; socketId: string; ingest: Ingest; lastActivity: number }>;
  /** Uploads started per site in this round. */
  uploads: Map<string, number>;
  /** Secure aggregation (see below). */
  secagg?: SecAggRound;
  timer: NodeJS.Timeout;
  /** Tail of the acceptance queue. */
  serial: Promise<void>;
  /** Tail of the journal writes (one at a time, in order). */
  journalQueue: Promise<void>;
  startedAt: number;
  closing: boolean;
}

export interface CoordinatorOptions {
  /** Initial global model when the state dir is empty (else config.initialModel / config.model). */
  initialModel?: NamedTensors;
  log?: (message: string) => void;
}

export interface DashboardSnapshot {
  sites: { id: string; online: boolean; lastSeen: number; examples: number; state: string; round: number }[];
  round: {
    number: number;
    open: boolean;
    accepted: number;
    participants: number;
    deadline: number | null;
    quorum: number;
  };
  modelRound: number;
  modelHash: string;
  history: RoundSummary[];
  evaluations: PersistedState['evaluations'];
  audit: AuditEntry[];
}

export class Coordinator extends EventEmitter {
  readonly config: CoordinatorConfig;
  private server: Server | undefined;
  private io: SocketServer | undefined;
  private state!: PersistedState;
  private globalBytes!: Uint8Array;
  private globalSpecs!: TensorSpec[];
  private globalFlat!: Float32Array;
  private open: OpenRound | undefined;
  private readonly sites = new Map<string, SiteInfo>();
  private readonly tokenHashes = new Map<string, Buffer>();
  private readonly audit: AuditLog;
  private readonly refusals: RefusalGate;
  private readonly access: AccessControl;
  private readonly log: (message: string) => void;
  private sweepTimer: NodeJS.Timeout | undefined;
  private evaluation: { modelHash: string; reports: Map<string, Evaluation>; resolve: () => void } | undefined;
  private scheduleRunning = false;
  private closed = false;
  private snapshotTimer: NodeJS.Timeout | undefined;

  constructor(
    config: CoordinatorConfigInput | CoordinatorConfig,
    private readonly options: CoordinatorOptions = {},
  ) {
    super();
    this.config = parseConfig(coordinatorConfigSchema, config, 'coordinator config');
    this.log = options.log ?? (() => {});
    for (const site of this.config.sites) {
      this.tokenHashes.set(site.id, sha256Buffer(site.token));
      this.sites.set(site.id, { id: site.id, online: false, lastSeen: 0, examples: 0, state: 'offline', round: 0 });
    }
    mkdirSync(this.config.stateDir, { recursive: true, mode: 0o700 });
    this.audit = new AuditLog(join(this.config.stateDir, 'audit.jsonl'), { maxBytes: this.config.audit.maxBytes });
    this.refusals = new RefusalGate(this.audit, {
      intervalMs: this.config.audit.refusalIntervalMs,
      maxPerInterval: this.config.audit.maxRefusalsPerInterval,
      maxSources: this.config.audit.maxSources,
    });
    this.access = new AccessControl(this.config.adminToken, this.config.viewerToken, this.config.sessionTtlMs);
  }

  get url(): string {
    const address = this.server?.address() as AddressInfo | null;
    if (!address) throw new FedcxrError('coordinator_not_started', 'coordinator is not listening');
    const host = this.config.host.includes(':') ? `[${this.config.host}]` : this.config.host;
    return `${this.config.tls ? 'https' : 'http'}://${host}:${address.port}`;
  }

  get globalModel(): NamedTensors {
    return decodeModel(this.globalBytes).tensors;
  }

  get modelHash(): string {
    return this.state.modelHash;
  }

  get history(): RoundSummary[] {
    return [...this.state.history];
  }

  get currentRound(): number | undefined {
    return this.open?.journal.round;
  }

  /** Loads or creates the state, resumes an open round, and starts listening. */
  async start(): Promise<string> {
    await this.loadState();
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      this.http(req, res).catch((error: unknown) => this.httpFailed(req, res, error));
    };
    if (this.config.tls) {
      const { tls } = this.config;
      const [cert, key, clientCa] = await Promise.all([
        readFile(tls.cert),
        readFile(tls.key),
        tls.clientCa ? readFile(tls.clientCa) : undefined,
      ]);
      // With clientCa, the TLS layer verifies the chain; the handshake check below binds CN to the site id
      // (and names the reason of a refusal, which a TLS-level rejection could not tell the site).
      this.server = createHttpsServer(
        { cert, key, ...(clientCa ? { ca: clientCa, requestCert: true, rejectUnauthorized: false } : {}) },
        handler,
      );
      // A failed handshake (plain TCP on the TLS port, an unsupported protocol, a client that aborts): audited.
      this.server.on('tlsClientError', (error: Error & { code?: string }, socket: NetSocket) => {
        this.refusals.refuse('tls_refused', socket.remoteAddress, {
          reason: `${error.code ?? 'tls_error'}: ${error.message.slice(0, 200)}`,
        });
        socket.destroy();
      });
    } else this.server = createHttpServer(handler);
    // A request line or header Node cannot parse: 400, audited, the connection closed (never an exception).
    this.server.on('clientError', (error: Error & { code?: string }, socket: NetSocket) => {
      // A client hanging up is not a refusal; a failed TLS handshake also arrives here, audited by tlsClientError.
      if (error.code === 'ECONNRESET' || (this.config.tls && /^ERR_SSL|^ERR_TLS/.test(error.code ?? '')))
        return void socket.destroy();
      this.refusals.refuse('http_refused', socket.remoteAddress, { reason: `${error.code ?? 'parse_error'}` });
      if (socket.writable && !(socket as NetSocket & { _httpMessage?: unknown })._httpMessage)
        socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      else socket.destroy();
    });
    // Slow clients cannot hold connections open forever (upgraded socket.io connections are not affected).
    this.server.headersTimeout = 15_000;
    this.server.requestTimeout = 30_000;
    this.io = new SocketServer(this.server, {
      maxHttpBufferSize: this.config.round.chunkBytes + LIMITS.envelopeBytes,
      serveClient: true,
      pingInterval: this.config.heartbeat.intervalMs,
      pingTimeout: this.config.heartbeat.timeoutMs,
    });
    this.io.use((socket, next) => {
      try {
        this.authenticate(socket, next);
      } catch (error) {
        this.refusals.refuse('auth_refused', socket.handshake.address, {
          reason: `handshake error: ${(error as Error).message.slice(0, 200)}`,
        });
        next(refusal('handshake error'));
      }
    });
    this.io.on('connection', (socket) => {
      try {
        this.onSiteConnection(socket);
      } catch (error) {
        this.audit.append('handler_error', { event: 'connection', reason: (error as Error).message.slice(0, 300) });
        socket.disconnect(true);
      }
    });
    const dashboard = this.io.of('/dashboard');
    dashboard.use((socket, next) => {
      const source = socket.handshake.address;
      const role = this.access.sessionRole(socket.handshake.headers.cookie);
      if (!role)
        return this.tarpit(source, 'dashboard_refused', { reason: 'no valid session' }, () =>
          next(refusal('sign in at /login')),
        );
      socket.data.role = role;
      next();
    });
    dashboard.on('connection', (socket) => {
      const role = socket.data.role as Role;
      void socket.join(role);
      socket.emit('snapshot', this.snapshot(role));
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.config.port, this.config.host, () => resolve());
    });
    this.server.on('error', (error) => this.log(`server error: ${error.message}`));
    this.audit.append('coordinator_started', {
      url: this.url,
      modelRound: this.state.modelRound,
      modelHash: this.state.modelHash,
    });
    this.log(`coordinator listening on ${this.url}`);
    if (this.open) this.armTimer(this.open);
    const sweep = Math.max(50, Math.min(5000, Math.floor(this.config.round.uploadIdleMs / 4)));
    this.sweepTimer = setInterval(() => this.sweepUploads(), sweep);
    this.sweepTimer.unref();
    if (this.config.schedule) void this.runSchedule();
    return this.url;
  }

  /** Stops listening. State on disk is complete at every acknowledged step, so this is also what a crash leaves. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.open) clearTimeout(this.open.timer);
    if (this.snapshotTimer) clearTimeout(this.snapshotTimer);
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.refusals.close();
    for (const { ingest } of this.open?.ingests.values() ?? []) ingest.close();
    const closing = new Promise<void>((resolve) => (this.io ? this.io.close(() => resolve()) : resolve()));
    // Keep-alive HTTP connections (a dashboard's browser) would otherwise hold server.close() open.
    this.server?.closeAllConnections();
    await closing;
    this.emit('closed');
  }

  // ------------------------------------------------------------------------------------------ state

  private statePath(...parts: string[]): string {
    return join(this.config.stateDir, ...parts);
  }

  private roundDir(round: number): string {
    return this.statePath('rounds', String(round).padStart(6, '0'));
  }

  private async loadState(): Promise<void> {
    const stateFile = this.statePath('state.json');
    if (existsSync(stateFile)) {
      this.state = JSON.parse(readFileSync(stateFile, 'utf8')) as PersistedState;
      const bytes = alignedCopy(readFileSync(this.statePath(this.state.modelFile)));
      if (sha256Hex(bytes) !== this.state.modelHash)
        throw new FedcxrError('checkpoint_corrupt', 'global checkpoint does not match its recorded hash', {
          file: this.statePath(this.state.modelFile),
        });
      this.setGlobal(bytes);
      this.resumeRound();
      return;
    }
    let model = this.options.initialModel;
    if (!model && this.config.initialModel)
      model = decodeModel(alignedCopy(readFileSync(this.config.initialModel)), this.config.initialModel).tensors;
    if (!model && this.config.model) model = createTabularModel(this.config.model, this.config.model.seed);
    if (!model)
      throw new FedcxrError('invalid_config', 'no initial model: set initialModel or model', {
        file: 'coordinator config',
      });
    const bytes = alignedCopy(encodeModel(model));
    const modelFile = await this.writeCheckpoint(0, bytes);
    this.state = { lastRound: 0, modelRound: 0, modelHash: sha256Hex(bytes), modelFile, history: [], evaluations: [] };
    this.setGlobal(bytes);
    await this.saveState();
  }

  private setGlobal(bytes: Uint8Array): void {
    const model = decodeModel(bytes);
    this.globalBytes = bytes;
    this.globalSpecs = model.specs;
    this.globalFlat = model.flat;
  }

  private async writeCheckpoint(round: number, bytes: Uint8Array): Promise<string> {
    const name = join('models', `global-${String(round).padStart(6, '0')}.fcxw`);
    await writePrivateFileAtomic(this.statePath(name), bytes);
    return name;
  }

  private async saveState(): Promise<void> {
    await writePrivateJsonAtomic(this.statePath('state.json'), this.state);
  }

  private async saveJournal(journal: RoundJournal): Promise<void> {
    await writePrivateJsonAtomic(join(this.roundDir(journal.round), 'journal.json'), journal);
  }

  /** Journal writes of an open round go one after the other, so an older snapshot never lands last. */
  private persistJournal(open: OpenRound): Promise<void> {
    const write = open.journalQueue.then(() => this.saveJournal(open.journal));
    open.journalQueue = write.catch((error: Error) => this.log(`journal write failed: ${error.message}`));
    return write;
  }

  /**
   * After a restart: reopen the last round if it was still open, with its accepted updates (checked again
   * against their spools), the plan's sites and the plan's deadline (not a fresh one).
   */
  private resumeRound(): void {
    const round = this.state.lastRound;
    const file = join(this.roundDir(round), 'journal.json');
    if (round === 0 || !existsSync(file)) return;
    // A journal is small by construction (accepted updates + at most maxUploadsPerSite nonces per site).
    // One that is not (written by something else, or corrupt) fails its round instead of stopping the start.
    const limit = 64 * 1024 * 1024;
    if (statSync(file).size > limit) {
      this.audit.append('round_failed', { round, reason: `round journal larger than ${limit} bytes: not resumed` });
      return;
    }
    const journal = JSON.parse(readFileSync(file, 'utf8')) as RoundJournal;
    if (journal.status !== 'open' || journal.baseModelHash !== this.state.modelHash) return;
    if (this.config.round.secureAggregation) {
      // Masks depend on the sites' per-round keys, which died with the connections: start the round over.
      journal.status = 'failed';
      this.saveJournal(journal).catch((error: Error) => this.log(`journal write failed: ${error.message}`));
      for (const update of journal.accepted)
        this.audit.append('update_dropped', {
          round,
          siteId: update.siteId,
          nonce: update.nonce,
          reason: 'secure-aggregation round interrupted by a restart',
        });
      this.audit.append('round_failed', { round, reason: 'secure-aggregation round interrupted by a restart' });
      return;
    }
    const kept: AcceptedUpdate[] = [];
    for (const update of journal.accepted) {
      if (existsSync(update.spool) && spoolSha256(update.spool, this.globalFlat.length) === update.spoolSha256)
        kept.push(update);
      else
        this.audit.append('update_lost', {
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
        this.audit.append('update_dropped', { round, spool: name, reason: 'upload in flight at a restart' });
      }
    const open = this.createOpenRound(journal);
    this.open = open;
    this.audit.append('round_resumed', {
      round,
      accepted: kept.map((u) => u.siteId),
      participants: [...open.participants],
      deadline: new Date(open.plan.deadline).toISOString(),
    });
    this.log(`resumed round ${round} with ${kept.length} accepted update(s)`);
  }

  private buildPlan(round: number, seed: number, deadline?: number): RoundPlan {
    const r = this.config.round;
    return {
      protocol: PROTOCOL_VERSION,
      round,
      task: 'train',
      modelHash: this.state.modelHash,
      modelBytes: this.globalBytes.length,
      chunkBytes: r.chunkBytes,
      tensors: this.globalSpecs,
      epochs: r.epochs,
      mu: r.mu,
      learningRate: r.learningRate,
      batchSize: r.batchSize,
      seed,
      encoding: r.secureAggregation ? 'uint32' : r.encoding,
      normBound: r.normBound,
      deadline: deadline ?? Date.now() + r.timeoutMs,
      dp: r.dp,
      secureAggregation: r.secureAggregation,
      ...(r.secureAggregation ? { secaggScale: r.secaggScale } : {}),
    };
  }

  private createOpenRound(journal: RoundJournal): OpenRound {
    const r = this.config.round;
    const plan = this.buildPlan(journal.round, journal.seed, journal.deadline);
    journal.deadline = plan.deadline;
    return {
      journal,
      plan,
      participants: new Set([...(journal.participants ?? []), ...journal.accepted.map((u) => u.siteId)]),
      ingests: new Map(),
      uploads: new Map(),
      ...(r.secureAggregation
        ? {
            secagg: {
              keys: new Map(),
              shares: new Map(),
              relayed: false,
              sum: new Uint32Array(this.globalFlat.length),
              total: 0,
            },
          }
        : {}),
      timer: setTimeout(() => {}, 0),
      serial: Promise.resolve(),
      journalQueue: Promise.resolve(),
      startedAt: Date.now(),
      closing: false,
    };
  }

  private armTimer(open: OpenRound): void {
    clearTimeout(open.timer);
    open.timer = setTimeout(() => void this.closeRound(open, 'deadline'), Math.max(0, open.plan.deadline - Date.now()));
  }

  // ------------------------------------------------------------------------------------------ rounds

  /** Opens the next round and sends its plan to every connected site. */
  async startRound(): Promise<number> {
    if (this.closed) throw new FedcxrError('coordinator_closed', 'coordinator is closed');
    if (this.open) throw new FedcxrError('round_open', `round ${this.open.journal.round} is still open`);
    const round = this.state.lastRound + 1;
    const online = [...this.sites.values()].filter((s) => s.online && s.socket);
    const journal: RoundJournal = {
      round,
      status: 'open',
      baseModelHash: this.state.modelHash,
      seed: this.config.round.seed * 1_000_003 + round,
      openedAt: new Date().toISOString(),
      deadline: Date.now() + this.config.round.timeoutMs,
      // The plan's sites are on disk before any plan goes out: a restarted coordinator waits for them all.
      participants: online.map((site) => site.id),
      accepted: [],
      seenNonces: [],
    };
    rmSync(this.roundDir(round), { recursive: true, force: true });
    mkdirSync(join(this.roundDir(round), 'updates'), { recursive: true, mode: 0o700 });
    await this.saveJournal(journal);
    this.state.lastRound = round;
    await this.saveState();
    const open = this.createOpenRound(journal);
    this.open = open;
    this.armTimer(open);
    this.audit.append('round_opened', {
      round,
      baseModelHash: journal.baseModelHash,
      sites: online.map((s) => s.id),
      mu: open.plan.mu,
      epochs: open.plan.epochs,
      aggregation: this.config.round.aggregation,
      deadline: new Date(open.plan.deadline).toISOString(),
    });
    for (const site of online) this.sendPlan(site);
    this.changed();
    return round;
  }

  /** Resolves when `round` closes (aggregated or failed). */
  waitForRound(round: number): Promise<RoundSummary> {
    const done = this.state.history.find((h) => h.round === round);
    if (done) return Promise.resolve(done);
    return new Promise((resolve, reject) => {
      const onClosed = (summary: RoundSummary) => {
        if (summary.round !== round) return;
        this.off('round-closed', onClosed);
        this.off('closed', onShutdown);
        resolve(summary);
      };
      const onShutdown = () => {
        this.off('round-closed', onClosed);
        reject(new FedcxrError('coordinator_closed', `coordinator closed before round ${round} finished`));
      };
      this.on('round-closed', onClosed);
      this.once('closed', onShutdown);
    });
  }

  async runRound(): Promise<RoundSummary> {
    return this.waitForRound(await this.startRound());
  }

  private sendPlan(site: SiteInfo): void {
    const open = this.open;
    if (!open || open.closing || !site.socket) return;
    if (open.journal.accepted.some((u) => u.siteId === site.id)) return;
    // Once the peer list is out, a secure-aggregation round cannot take new members.
    if (open.secagg?.peers && !open.secagg.keys.has(site.id)) return;
    // Nor, once the shares are relayed, take back a participant that left before sharing.
    if (open.secagg?.members && !open.secagg.members.includes(site.id)) return;
    if (!open.participants.has(site.id)) {
      open.participants.add(site.id);
      open.journal.participants = [...open.participants];
      this.persistJournal(open).catch(() => {}); // logged by the queue
    }
    site.socket.emit('round:plan', open.plan);
    if (open.secagg) this.resendSecAgg(open, open.secagg, site);
  }

  /** Acceptances run one at a time (journal write, fold), and a closing round waits for them. */
  private accept(open: OpenRound, siteId: string, begin: UpdateBegin, ingest: Ingest): Promise<void> {
    const work = open.serial.then(async () => {
      if (open.closing)
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
      await this.persistJournal(open);
      if (open.secagg) {
        for (const { offset, values } of readSpool(update.spool, open.secagg.sum.length)) {
          const raw = new Uint32Array(values.buffer, values.byteOffset, values.length);
          addMasked(open.secagg.sum.subarray(offset, offset + raw.length), raw);
        }
        open.secagg.total += update.numExamples;
      }
      const site = this.sites.get(siteId);
      if (site) site.examples = begin.numExamples;
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
      this.changed();
      this.emit('update-accepted', siteId, open.journal.round);
      const everyone = [...open.participants].every((id) => open.journal.accepted.some((u) => u.siteId === id));
      if (everyone && open.journal.accepted.length >= this.config.round.minSites)
        setImmediate(() => void this.closeRound(open, 'all sites reported'));
    });
    open.serial = work.catch(() => {});
    return work;
  }

  private async closeRound(open: OpenRound, why: string): Promise<void> {
    if (open.closing || this.open !== open) return;
    open.closing = true;
    clearTimeout(open.timer);
    await open.serial;
    for (const [nonce, entry] of open.ingests) {
      entry.ingest.close();
      rmSync(entry.ingest.spoolPath, { force: true });
      this.audit.append('update_dropped', {
        round: open.journal.round,
        siteId: entry.siteId,
        nonce,
        received: entry.ingest.bytesReceived,
        reason: `upload unfinished when the round closed (${why})`,
      });
    }
    open.ingests.clear();
    const round = open.journal.round;
    const accepted = open.journal.accepted;
    const quorum = this.config.round.minSites;
    let summary: RoundSummary | undefined;
    let committed = false;
    try {
      let unmaskError = open.secagg?.error;
      if (open.secagg && !unmaskError && accepted.length >= quorum) {
        try {
          await this.unmask(
            open,
            accepted.map((u) => u.siteId),
          );
        } catch (error) {
          unmaskError = `secure aggregation could not remove the masks: ${(error as Error).message}`;
        }
      }
      if (accepted.length < quorum || unmaskError) {
        open.journal.status = 'failed';
        await this.persistJournal(open);
        summary = this.summarize(
          open,
          'failed',
          unmaskError ?? `${accepted.length} of ${quorum} required updates by the ${why}`,
        );
        this.audit.append('round_failed', { round, reason: summary.reason, accepted: accepted.map((u) => u.siteId) });
      } else {
        const bytes = new Uint8Array(this.globalBytes.length);
        const offset = this.globalBytes.length - this.globalFlat.length * 4;
        const values = new Float32Array(bytes.buffer, offset, this.globalFlat.length);
        const eta = this.config.round.serverLearningRate;
        if (open.secagg) {
          const sum = dequantize(open.secagg.sum, this.config.round.secaggScale);
          const scale = eta / open.secagg.total;
          for (let i = 0; i < values.length; i++) values[i] = this.globalFlat[i] + sum[i] * scale;
          this.state.enrolled ??= {};
          const enrolled = this.state.enrolled;
          for (const u of accepted) enrolled[u.siteId] = u.numExamples;
        } else {
          const { shares, factors } = this.bound(open);
          if (this.config.round.aggregation === 'fedavg') {
            // Σ share_i · clip_i · δ_i, one spool at a time (memory: one accumulator whatever the sites).
            const accumulator = new FedAvgAccumulator(values);
            accepted.forEach((u, i) => {
              accumulator.fold(u.spool, shares[i] * factors[i]);
            });
            for (let i = 0; i < values.length; i++) values[i] = this.globalFlat[i] + values[i] * eta;
          } else {
            const rule = this.config.round.aggregation as 'median' | 'trimmed-mean';
            robustAggregate(
              accepted.map((u) => u.spool),
              values,
              rule,
              this.config.round.trimFraction,
              undefined,
              factors,
            );
            for (let i = 0; i < values.length; i++) values[i] = this.globalFlat[i] + values[i] * eta;
          }
        }
        bytes.set(this.globalBytes.subarray(0, offset));
        const modelHash = sha256Hex(bytes);
        const previousFile = this.state.modelFile;
        const modelFile = await this.writeCheckpoint(round, bytes);
        this.setGlobal(bytes);
        this.state.modelRound = round;
        this.state.modelHash = modelHash;
        this.state.modelFile = modelFile;
        summary = this.summarize(open, 'aggregated');
        this.state.history.push(summary);
        await this.saveState();
        committed = true;
        open.journal.status = 'aggregated';
        await this.persistJournal(open);
        this.pruneCheckpoints(previousFile);
        rmSync(join(this.roundDir(round), 'updates'), { recursive: true, force: true });
        this.audit.append('round_aggregated', {
          round,
          modelHash,
          sites: summary.sites,
          numExamples: summary.numExamples,
          aggregation: summary.aggregation,
          train: summary.train,
          validation: summary.validation,
          why,
        });
      }
    } catch (error) {
      // An internal failure (a full disk, say): audited, and the round fails unless its new model was already
      // committed (state.json written). Never an unhandled rejection.
      const reason = (error as Error).message;
      this.audit.append('round_error', { round, reason });
      this.log(`round ${round} could not close: ${reason}`);
      if (!committed) summary = this.summarize(open, 'failed', `round could not close: ${reason}`);
    } finally {
      this.open = undefined;
    }
    if (!summary) return;
    if (summary.outcome === 'failed') {
      this.state.history.push(summary);
      await this.saveState().catch((error: Error) => this.log(`state write failed: ${error.message}`));
    }
    this.io?.emit('round:closed', { round, outcome: summary.outcome, modelHash: this.state.modelHash });
    this.log(`round ${round} ${summary.outcome}${summary.reason ? `: ${summary.reason}` : ''}`);
    this.emit('round-closed', summary);
    this.changed();
  }

  /**
   * Removes every mask from the sum: asks each survivor for its shares (of the survivors' self-mask seeds and
   * of the dropped sites' masking keys; every survivor gets the same view) and rebuilds the secrets from the
   * ≥ t answers.
   */
  private async unmask(open: OpenRound, survivors: string[]): Promise<void> {
    const secagg = open.secagg!;
    const { peers, threshold, members } = secagg;
    if (!peers || threshold === undefined || !members)
      throw new FedcxrError('secagg_unrecoverable', 'the share exchange never completed');
    const round = open.journal.round;
    const dropped = members.filter((id) => !survivors.includes(id));
    if (survivors.length < threshold)
      throw new FedcxrError(
        'secagg_unrecoverable',
        `${survivors.length} survivor(s) but the threshold is ${threshold}: sites refuse to unmask fewer`,
      );
    const answers = await Promise.all(
      survivors.map(async (survivorId) => {
        const socket = this.sites.get(survivorId)?.socket;
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
    unmaskSum(secagg.sum, { round, peers, members, threshold, survivors, reveals });
    this.audit.append('secagg_unmasked', { round, survivors, dropped, revealers: [...reveals.keys()], threshold });
    if (dropped.length > 0) this.audit.append('secagg_recovered', { round, dropped, survivors });
  }

  /** A (re)connected participant gets the peer list and its relayed shares again (both idempotent there). */
  private resendSecAgg(open: OpenRound, secagg: SecAggRound, site: SiteInfo): void {
    if (!secagg.peers || !secagg.keys.has(site.id)) return;
    const round = open.journal.round;
    site.socket?.emit('secagg:peers', { round, threshold: secagg.threshold, peers: secagg.peers });
    if (secagg.members?.includes(site.id))
      site.socket?.emit('secagg:shares', { round, shares: this.sharesFor(secagg, site.id) });
  }

  private sharesFor(secagg: SecAggRound, siteId: string): { from: string; ciphertext: string }[] {
    const out: { from: string; ciphertext: string }[] = [];
    for (const [from, shares] of secagg.shares)
      for (const share of shares) if (share.to === siteId) out.push({ from, ciphertext: share.ciphertext });
    return out;
  }

  /**
   * Relays the shares once every peer has shared or is offline: the sharers become the round's members
   * (a peer that went away before sharing is left out, and nobody masks toward it). Fewer than t: the round
   * cannot be unmasked and fails now.
   */
  private maybeRelay(open: OpenRound): void {
    const secagg = open.secagg;
    if (!secagg?.peers || secagg.relayed || open.closing || this.open !== open) return;
    const waiting = secagg.peers.filter((p) => !secagg.shares.has(p.siteId) && this.sites.get(p.siteId)?.online);
    if (waiting.length > 0) return;
    const round = open.journal.round;
    const members = secagg.peers.map((p) => p.siteId).filter((id) => secagg.shares.has(id));
    if (members.length < (secagg.threshold ?? 2)) {
      secagg.error = `only ${members.length} of ${secagg.peers.length} participants shared their secrets, the threshold is ${secagg.threshold}`;
      void this.closeRound(open, 'secure-aggregation share exchange');
      return;
    }
    secagg.relayed = true;
    secagg.members = members;
    this.audit.append('secagg_shares_relayed', {
      round,
      members,
      left: secagg.peers.map((p) => p.siteId).filter((id) => !members.includes(id)),
    });
    for (const id of members)
      this.sites.get(id)?.socket?.emit('secagg:shares', { round, shares: this.sharesFor(secagg, id) });
  }

  /**
   * Bounded influence (influence.ts): each accepted update's weight (min(claim, declared or enrolled bound)),
   * its share of the round (capped), and its clip factor (to clipMultiple × the round's median norm). Audited:
   * one `round_weights` entry, and `update_clipped` for every clipped update. Enrolment is updated.
   */
  private bound(open: OpenRound): { shares: number[]; factors: number[] } {
    const r = this.config.round;
    const round = open.journal.round;
    const accepted = open.journal.accepted;
    this.state.enrolled ??= {};
    const enrolled = this.state.enrolled;
    const declared = new Map(this.config.sites.map((site) => [site.id, site.examples]));
    const allowed = accepted.map((u) =>
      allowedWeight(u.numExamples, {
        declared: declared.get(u.siteId),
        enrolled: enrolled[u.siteId],
        growth: r.weightGrowth,
      }),
    );
    const rule = r.aggregation;
    // The robust rules are unweighted by design; FedAvg's weights are bounded and their shares capped.
    const shares =
      rule === 'fedavg'
        ? cappedShares(
            allowed.map((a) => a.weight),
            r.maxSiteShare,
          )
        : accepted.map(() => 1 / accepted.length);
    const norms = accepted.map((u) => u.norm);
    const clips = clipFactors(norms, r.clipMultiple);
    const median = lowerMedian(norms);
    accepted.forEach((u, i) => {
      u.weight = allowed[i].weight;
      u.share = shares[i];
      u.clipFactor = clips[i].factor;
      enrolled[u.siteId] = allowed[i].weight;
      if (clips[i].clipped)
        this.audit.append('update_clipped', {
          round,
          siteId: u.siteId,
          norm: u.norm,
          clippedTo: u.norm * clips[i].factor,
          factor: clips[i].factor,
          medianNorm: median,
          clipMultiple: r.clipMultiple,
        });
    });
    this.audit.append('round_weights', {
      round,
      rule,
      maxSiteShare: r.maxSiteShare,
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
    return { shares, factors: clips.map((c) => c.factor) };
  }

  private summarize(open: OpenRound, outcome: 'aggregated' | 'failed', reason?: string): RoundSummary {
    const accepted = open.journal.accepted;
    const numExamples = accepted.reduce((n, u) => n + (u.weight ?? u.numExamples), 0);
    const evaluated = accepted.filter((u) => u.globalEvaluation && u.globalEvaluation.numExamples > 0);
    return {
      round: open.journal.round,
      outcome,
      ...(reason ? { reason } : {}),
      modelHash: this.state.modelHash,
      sites: accepted.map((u) => u.siteId),
      numExamples,
      aggregation: this.config.round.aggregation,
      train: weightedMean(accepted.map((u) => ({ weight: u.weight ?? u.numExamples, metrics: u.metrics }))),
      validation: weightedMean(
        evaluated.map((u) => ({ weight: u.globalEvaluation!.numExamples, metrics: u.globalEvaluation!.metrics })),
      ),
      validationExamples: evaluated.reduce((n, u) => n + u.globalEvaluation!.numExamples, 0),
      durationMs: Date.now() - open.startedAt,
    };
  }

  private pruneCheckpoints(previous: string): void {
    const dir = this.statePath('models');
    const files = readdirSync(dir)
      .filter((f) => f.endsWith('.fcxw'))
      .sort();
    for (const file of files.slice(0, Math.max(0, files.length - this.config.keepCheckpoints))) {
      if (join('models', file) !== this.state.modelFile) rmSync(join(dir, file), { force: true });
    }
    void previous;
  }

  /**
   * Asks every connected site to evaluate the current global model on its validation data and returns the
   * example-weighted mean (aggregate metrics only).
   */
  async evaluate(timeoutMs = 60_000): Promise<{ numExamples: number; metrics: Metrics; sites: string[] }> {
    if (this.open) throw new FedcxrError('round_open', 'cannot evaluate while a round is open');
    const online = [...this.sites.values()].filter((s) => s.online && s.socket);
    const plan: RoundPlan = {
      ...this.buildPlan(this.state.lastRound + 1, 0),
      task: 'evaluate',
      deadline: Date.now() + timeoutMs,
    };
    const reports = new Map<string, Evaluation>();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.evaluation = {
        modelHash: this.state.modelHash,
        reports,
        resolve: () => {
          if (reports.size >= online.length) {
            clearTimeout(timer);
            resolve();
          }
        },
      };
      for (const site of online) site.socket?.emit('round:plan', plan);
      if (online.length === 0) resolve();
    });
    this.evaluation = undefined;
    const entries = [...reports.entries()];
    const result = {
      numExamples: entries.reduce((n, [, e]) => n + e.numExamples, 0),
      metrics: weightedMean(entries.map(([, e]) => ({ weight: e.numExamples, metrics: e.metrics }))),
      sites: entries.map(([id]) => id),
    };
    this.state.evaluations.push({
      modelRound: this.state.modelRound,
      modelHash: this.state.modelHash,
      metrics: result.metrics,
      numExamples: result.numExamples,
    });
    await this.saveState();
    this.audit.append('model_evaluated', {
      modelRound: this.state.modelRound,
      modelHash: this.state.modelHash,
      ...result,
    });
    this.changed();
    return result;
  }

  private async runSchedule(): Promise<void> {
    const schedule = this.config.schedule;
    if (!schedule || this.scheduleRunning) return;
    this.scheduleRunning = true;
    try {
      while (!this.closed && this.state.history.filter((h) => h.outcome === 'aggregated').length < schedule.rounds) {
        if (this.open) await this.waitForRound(this.open.journal.round);
        else if ([...this.sites.values()].filter((s) => s.online).length >= schedule.minOnline) await this.runRound();
        else await new Promise((resolve) => setTimeout(resolve, 200));
      }
      if (!this.closed) this.emit('schedule-done');
    } catch (error) {
      if (!this.closed) this.log(`schedule stopped: ${(error as Error).message}`);
    } finally {
      this.scheduleRunning = false;
    }
  }

  // ------------------------------------------------------------------------------------------ sites

  private authenticate(socket: Socket, next: (error?: Error) => void): void {
    const source = socket.handshake.address;
    const parsed = siteAuthSchema.safeParse(socket.handshake.auth);
    const refuse = (reason: string, siteId?: string) => {
      this.tarpit(source, 'auth_refused', { siteId: siteId ?? null, reason }, () => next(refusal(reason)));
      this.changed();
    };
    if (!parsed.success) {
      refuse('malformed handshake or protocol version');
      return;
    }
    const { siteId, token } = parsed.data;
    const expected = this.tokenHashes.get(siteId);
    if (!expected) {
      refuse('unknown site', siteId);
      return;
    }
    if (!timingSafeEqual(expected, sha256Buffer(token))) {
      refuse('bad credentials', siteId);
      return;
    }
    if (this.config.tls?.clientCa) {
      const tlsSocket = socket.request.socket as TLSSocket;
      const peer = tlsSocket.getPeerCertificate?.();
      if (!peer || Object.keys(peer).length === 0) {
        refuse('client certificate missing: this coordinator requires one issued to the site', siteId);
        return;
      }
      if (!tlsSocket.authorized) {
        refuse(`client certificate not trusted by the coordinator (${String(tlsSocket.authorizationError)})`, siteId);
        return;
      }
      if (peer.subject?.CN !== siteId) {
        refuse(`client certificate not issued to this site (CN ${String(peer.subject?.CN)})`, siteId);
        return;
      }
    }
    socket.data.siteId = siteId;
    next();
  }

  private onSiteConnection(socket: Socket): void {
    const siteId = socket.data.siteId as string;
    const site = this.sites.get(siteId)!;
    // One live connection per site: a restarted agent replaces its stale socket.
    if (site.socket && site.socket.id !== socket.id) site.socket.disconnect(true);
    site.socket = socket;
    site.online = true;
    site.lastSeen = Date.now();
    site.state = 'idle';
    this.audit.append('site_connected', { siteId });
    this.changed();
    const touch = () => {
      site.lastSeen = Date.now();
    };
    const ack = (fn: unknown, value: Ack | Record<string, unknown>) => {
      if (typeof fn === 'function') (fn as (v: unknown) => void)(value);
    };
    // Every event handler fails closed: whatever it throws (sync or async) is audited and answered with a
    // refused ack; nothing reaches the event loop. (socket.io ignores a second call of an ack.)
    const on = (event: string, handler: (raw: unknown, reply: unknown) => unknown) => {
      socket.on(event, (raw: unknown, reply: unknown) => {
        const failed = (error: unknown) => {
          this.audit.append('handler_error', {
            siteId,
            event,
            reason: (error as Error)?.message?.slice(0, 300) ?? String(error),
          });
          ack(reply, { ok: false, code: 'internal', error: `the coordinator could not handle ${event}` });
        };
        try {
          const result = handler(raw, reply);
          if (result instanceof Promise) result.catch(failed);
        } catch (error) {
          failed(error);
        }
      });
    };
    on('model:chunk', (raw: unknown, reply: unknown) => {
      touch();
      const request = modelChunkRequestSchema.safeParse(raw);
      if (!request.success || request.data.modelHash !== this.state.modelHash)
        return ack(reply, { ok: false, error: 'unknown model (the global model changed, or malformed request)' });
      const { index } = request.data;
      const start = index * this.config.round.chunkBytes;
      if (start >= this.globalBytes.length) return ack(reply, { ok: false, error: `no chunk ${index}` });
      ack(reply, { ok: true, index, data: this.globalBytes.subarray(start, start + this.config.round.chunkBytes) });
    });
    on('update:begin', (raw: unknown, reply: unknown) => {
      touch();
      ack(reply, this.onUpdateBegin(siteId, raw, socket.id));
    });
    on('update:chunk', (raw: unknown, reply: unknown) => {
      touch();
      ack(reply, this.onUpdateChunk(siteId, raw));
    });
    on('update:end', async (raw: unknown, reply: unknown) => {
      touch();
      ack(reply, await this.onUpdateEnd(siteId, raw));
    });
    on('eval:report', (raw: unknown, reply: unknown) => {
      touch();
      const report = evaluationReportSchema.safeParse(raw);
      if (!report.success || !this.evaluation || report.data.modelHash !== this.evaluation.modelHash)
        return ack(reply, { ok: false, code: 'eval', error: 'no evaluation of that model is open' });
      this.evaluation.reports.set(siteId, report.data.evaluation);
      this.evaluation.resolve();
      ack(reply, { ok: true });
    });
    on('secagg:key', (raw: unknown, reply: unknown) => {
      touch();
      const key = secaggKeySchema.safeParse(raw);
      const open = this.open;
      const secagg = open?.secagg;
      if (!key.success || !open || !secagg || key.data.round !== open.journal.round || !open.participants.has(siteId))
        return ack(reply, {
          ok: false,
          code: 'secagg',
          error: 'no secure-aggregation round is expecting a key from this site',
        });
      if (secagg.peers)
        return ack(reply, { ok: false, code: 'secagg', error: 'the peer list of this round is already out' });
      const { publicKey, shareKey } = key.data;
      secagg.keys.set(siteId, { publicKey, shareKey });
      this.audit.append('secagg_key', { round: open.journal.round, siteId, publicKey, shareKey });
      ack(reply, { ok: true });
      if ([...open.participants].every((id) => secagg.keys.has(id))) {
        const peers = [...secagg.keys].map(([id, k]) => ({ siteId: id, ...k }));
        const threshold = this.config.round.secaggThreshold ?? defaultThreshold(peers.length);
        try {
          checkThreshold(threshold, peers.length);
        } catch (error) {
          secagg.error = `secure aggregation cannot start: ${(error as Error).message}`;
          void this.closeRound(open, 'secure-aggregation threshold');
          return;
        }
        secagg.peers = peers;
        secagg.threshold = threshold;
        this.audit.append('secagg_peers', { round: open.journal.round, sites: [...secagg.keys.keys()], threshold });
        for (const id of secagg.keys.keys())
          this.sites.get(id)?.socket?.emit('secagg:peers', { round: open.journal.round, threshold, peers });
        this.maybeRelay(open); // in case a participant already left
      }
    });
    on('secagg:shares', (raw: unknown, reply: unknown) => {
      touch();
      const parsed = secaggSharesSchema.safeParse(raw);
      const open = this.open;
      const secagg = open?.secagg;
      if (!parsed.success || !open || !secagg?.peers || parsed.data.round !== open.journal.round)
        return ack(reply, { ok: false, code: 'secagg', error: 'no secure-aggregation round is expecting shares' });
      if (!secagg.keys.has(siteId))
        return ack(reply, { ok: false, code: 'secagg', error: `${siteId} is not a participant of this round` });
      const { shares } = parsed.data;
      const previous = secagg.shares.get(siteId);
      // A re-send after a reconnect is byte-identical (the site keeps its ciphertexts); anything else is refused.
      if (previous)
        return ack(
          reply,
          JSON.stringify(previous) === JSON.stringify(shares)
            ? { ok: true }
            : { ok: false, code: 'secagg', error: `${siteId} already sent different shares` },
        );
      const others = secagg.peers.map((p) => p.siteId).filter((id) => id !== siteId);
      const recipients = shares.map((s) => s.to);
      if (
        new Set(recipients).size !== recipients.length ||
        recipients.length !== others.length ||
        !others.every((id) => recipients.includes(id))
      )
        return ack(reply, {
          ok: false,
          code: 'secagg',
          error: 'shares must go to every other participant exactly once',
        });
      if (secagg.relayed)
        return ack(reply, { ok: false, code: 'secagg', error: 'the share exchange of this round is over' });
      secagg.shares.set(siteId, shares);
      ack(reply, { ok: true });
      this.maybeRelay(open);
    });
    on('site:status', (raw: unknown) => {
      touch();
      const status = siteStatusSchema.safeParse(raw);
      if (!status.success) return;
      site.state = status.data.state;
      site.round = status.data.round;
      this.changed();
    });
    on('disconnect', (reason) => {
      // A half-sent update over this connection is discarded (spool removed); the site re-sends it with a
      // fresh nonce when it is back. Done even when a newer connection of the site already replaced this one.
      if (this.open)
        for (const [nonce, entry] of this.open.ingests)
          if (entry.socketId === socket.id) this.drop(this.open, nonce, 'update_abandoned', 'site disconnected');
      if (site.socket?.id !== socket.id) return;
      site.online = false;
      site.socket = undefined;
      site.state = 'offline';
      site.lastSeen = Date.now();
      this.audit.append('site_disconnected', { siteId, reason });
      // A participant gone before sharing no longer holds up the share exchange.
      if (this.open?.secagg) this.maybeRelay(this.open);
      this.changed();
    });
    this.sendPlan(site);
  }

  private refuse(siteId: string, code: string, error: string, fields: Record<string, unknown> = {}): Ack {
    this.audit.append('update_rejected', {
      round: this.open?.journal.round ?? null,
      siteId,
      code,
      reason: error,
      ...fields,
    });
    this.changed();
    return { ok: false, code, error };
  }

  private onUpdateBegin(siteId: string, raw: unknown, socketId: string): Ack {
    const parsed = updateBeginSchema.safeParse(raw);
    if (!parsed.success)
      return this.refuse(
        siteId,
        'malformed',
        `update:begin does not match the protocol: ${parsed.error.issues[0]?.message}`,
      );
    const begin = parsed.data;
    const open = this.open;
    if (!open || open.closing || begin.round !== open.journal.round)
      return this.refuse(
        siteId,
        'stale_round',
        `round ${begin.round} is not open${open ? ` (open: ${open.journal.round})` : ''}`,
        { nonce: begin.nonce },
      );
    if (open.journal.seenNonces.includes(begin.nonce))
      return this.refuse(siteId, 'replay', 'this update nonce was already used', { nonce: begin.nonce });
    const started = open.uploads.get(siteId) ?? 0;
    if (started >= this.config.round.maxUploadsPerSite)
      return this.refuse(
        siteId,
        'too_many_uploads',
        `${siteId} already started ${started} uploads in round ${begin.round} (limit ${this.config.round.maxUploadsPerSite})`,
        { nonce: begin.nonce },
      );
    open.uploads.set(siteId, started + 1);
    open.journal.seenNonces.push(begin.nonce);
    if (open.journal.accepted.some((u) => u.siteId === siteId))
      return this.refuse(siteId, 'duplicate', `an update from ${siteId} was already accepted in round ${begin.round}`, {
        nonce: begin.nonce,
      });
    if (Date.now() > open.plan.deadline)
      return this.refuse(siteId, 'late', 'the round deadline has passed', { nonce: begin.nonce });
    if (begin.baseModelHash !== this.state.modelHash)
      return this.refuse(siteId, 'stale_model', 'update was trained from another global model', { nonce: begin.nonce });
    if (open.secagg && !open.secagg.members?.includes(siteId))
      return this.refuse(siteId, 'secagg', 'masked update before the share exchange of this round completed', {
        nonce: begin.nonce,
      });
    try {
      const allowed = open.secagg ? ['uint32'] : this.config.round.allowedEncodings;
      validateManifest(begin, this.globalSpecs, allowed);
    } catch (error) {
      return this.refuse(siteId, (error as UpdateRejected).code, (error as Error).message, { nonce: begin.nonce });
    }
    if (open.secagg) {
      // Masked values carry the site's own weight: the coordinator can only refuse a claim over the bound.
      const declared = this.config.sites.find((s) => s.id === siteId)?.examples;
      const bound = allowedWeight(begin.numExamples, {
        declared,
        enrolled: this.state.enrolled?.[siteId],
        growth: this.config.round.weightGrowth,
      });
      if (bound.limited)
        return this.refuse(
          siteId,
          'weight',
          `claims ${begin.numExamples} examples, more than the ${bound.weight} allowed`,
          {
            nonce: begin.nonce,
          },
        );
    }
    // One upload in flight per site: one still running on this connection is a refusal; one left over by an
    // older connection of the site (replaced by this one) is dropped.
    for (const [nonce, entry] of open.ingests) {
      if (entry.siteId !== siteId) continue;
      if (entry.socketId === socketId)
        return this.refuse(siteId, 'busy', 'an upload from this site is already in progress', { nonce: begin.nonce });
      this.drop(open, nonce, 'update_dropped', 'superseded by an upload on a newer connection');
    }
    const spoolBytes = this.globalFlat.length * 4;
    const quota = this.config.round.siteSpoolQuotaBytes ?? 2 * spoolBytes;
    const held = open.journal.accepted.filter((u) => u.siteId === siteId).length * spoolBytes;
    if (held + spoolBytes > quota)
      return this.refuse(siteId, 'quota', `spool quota of ${quota} bytes for ${siteId} reached`, {
        nonce: begin.nonce,
      });
    const spool = join(this.roundDir(open.journal.round), 'updates', `${siteId}-${begin.nonce}.f32`);
    const ingest = open.secagg
      ? new MaskedIngest(begin, spool, this.config.round.chunkBytes)
      : new UpdateIngest(begin, spool, this.config.round.chunkBytes);
    open.ingests.set(begin.nonce, { siteId, socketId, ingest, lastActivity: Date.now() });
    return { ok: true };
  }

  private onUpdateChunk(siteId: string, raw: unknown): Ack {
    const parsed = updateChunkSchema.safeParse(raw);
    if (!parsed.success) return this.refuse(siteId, 'malformed', 'update:chunk does not match the protocol');
    const chunk = parsed.data;
    const open = this.open;
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

  private async onUpdateEnd(siteId: string, raw: unknown): Promise<Ack> {
    const parsed = updateEndSchema.safeParse(raw);
    if (!parsed.success) return this.refuse(siteId, 'malformed', 'update:end does not match the protocol');
    const open = this.open;
    const entry = open?.ingests.get(parsed.data.nonce);
    if (!open || !entry || entry.siteId !== siteId)
      return { ok: false, code: 'stale_round', error: 'no such update in progress' };
    open.ingests.delete(parsed.data.nonce);
    try {
      await this.accept(open, siteId, entry.ingest.begin, entry.ingest);
      return { ok: true };
    } catch (error) {
      entry.ingest.close();
      rmSync(entry.ingest.spoolPath, { force: true });
      return this.refuse(siteId, error instanceof UpdateRejected ? error.code : 'invalid', (error as Error).message, {
        nonce: parsed.data.nonce,
      });
    }
  }

  /** Ends an in-flight upload: spool removed; audited with its reason when one is given. */
  private drop(open: OpenRound, nonce: string, event?: string, reason?: string): void {
    const entry = open.ingests.get(nonce);
    if (!entry) return;
    entry.ingest.close();
    rmSync(entry.ingest.spoolPath, { force: true });
    open.ingests.delete(nonce);
    if (event)
      this.audit.append(event, {
        round: open.journal.round,
        siteId: entry.siteId,
        nonce,
        received: entry.ingest.bytesReceived,
        reason,
      });
    this.changed();
  }

  /** Drops uploads that sent nothing for `uploadIdleMs`. */
  private sweepUploads(): void {
    const open = this.open;
    if (!open || open.closing) return;
    const limit = Date.now() - this.config.round.uploadIdleMs;
    for (const [nonce, entry] of open.ingests)
      if (entry.lastActivity < limit)
        this.drop(open, nonce, 'update_dropped', `upload idle for ${this.config.round.uploadIdleMs} ms`);
  }

  // ------------------------------------------------------------------------------------------ http + dashboard

  /**
   * Refuses an attempt: audited (summarised per source, refusals.ts), answered at once, or, when the source is
   * over its refusal budget for the interval, answered only after `audit.tarpitMs` (with `limited` if given).
   * A refused client thus gets at most one answer per tarpit delay per connection, while the right credential
   * from the same address (a hospital behind the attacker's NAT) still gets in at once.
   */
  private tarpit(
    source: string | undefined,
    event: string,
    fields: Record<string, unknown>,
    answer: () => void,
    limited: () => void = answer,
  ): void {
    const over = this.refusals.limited(source);
    this.refusals.refuse(event, source, over ? { ...fields, limited: true } : fields);
    if (!over) {
      answer();
      return;
    }
    setTimeout(() => {
      try {
        limited();
      } catch {
        // the client has gone
      }
    }, this.config.audit.tarpitMs).unref();
  }

  /** What the dashboard and /api/status show; a viewer's copy has no addresses, nonces, hashes or keys. */
  snapshot(role: Role = 'admin'): DashboardSnapshot {
    const open = this.open;
    const audit = [...this.audit.recent.slice(-100), ...this.audit.recentRefusals.slice(-20)].sort(
      (a, b) => a.seq - b.seq,
    );
    return {
      sites: [...this.sites.values()].map(({ id, online, lastSeen, examples, state, round }) => ({
        id,
        online,
        lastSeen,
        examples,
        state,
        round,
      })),
      round: {
        number: open?.journal.round ?? this.state.lastRound,
        open: Boolean(open),
        accepted: open?.journal.accepted.length ?? 0,
        participants: open?.participants.size ?? 0,
        deadline: open?.plan.deadline ?? null,
        quorum: this.config.round.minSites,
      },
      modelRound: this.state.modelRound,
      modelHash: this.state.modelHash,
      history: this.state.history,
      evaluations: this.state.evaluations,
      audit: role === 'admin' ? audit : audit.map(redactEntry),
    };
  }

  /** Coalesces state changes into at most ~10 dashboard pushes per second. */
  private changed(): void {
    if (this.snapshotTimer || !this.io) return;
    this.snapshotTimer = setTimeout(() => {
      this.snapshotTimer = undefined;
      const dashboard = this.io?.of('/dashboard');
      dashboard?.to('admin').emit('snapshot', this.snapshot('admin'));
      dashboard?.to('viewer').emit('snapshot', this.snapshot('viewer'));
    }, 100);
  }

  /**
   * HTTP routes. Public: /login (the sign-in page and its form) and socket.io's client script. Admin or
   * viewer (Bearer token or session cookie): the dashboard page and GET /api/status. Admin by Bearer token
   * only: the rest of /api. Every refusal is audited per source (summarised, rate-limited: refusals.ts).
   */
  private async http(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const source = req.socket.remoteAddress;
    const secure = Boolean(this.config.tls);
    const send = (status: number, body: unknown, type = 'application/json', headers: Record<string, string> = {}) => {
      if (res.headersSent) return void res.end();
      res.writeHead(status, {
        'content-type': type,
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
        'x-frame-options': 'DENY',
        ...headers,
      });
      res.end(typeof body === 'string' ? body : JSON.stringify(body));
    };
    const error = (status: number, code: string, message: string) => send(status, { error: { code, message } });
    let url: URL;
    try {
      // An absolute-form target ("GET http://[::1 HTTP/1.1") or any other unparsable one is a 400, not a crash.
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      this.refusals.refuse('http_refused', source, { reason: 'unparsable request target' });
      return error(400, 'bad_request', 'unparsable request target');
    }
    const path = url.pathname;
    /** A refused credential: audited per source; a source over its budget waits, then gets a 429. */
    const deny = (event: string, reason: string, answer: () => void) =>
      this.tarpit(source, event, { path: path.slice(0, 100), reason }, answer, () =>
        send(429, { error: { code: 'rate_limited', message: 'too many refused attempts' } }, 'application/json', {
          'retry-after': String(Math.ceil(this.config.audit.refusalIntervalMs / 1000)),
        }),
      );
    try {
      if (path === '/login') {
        if (req.method === 'GET') return send(200, loginPage(), 'text/html; charset=utf-8');
        if (req.method === 'POST') {
          const body = await readBody(req, 4096);
          const token = new URLSearchParams(body).get('token') ?? '';
          const role = this.access.tokenRole(token);
          if (!role)
            return deny('login_refused', 'bad token', () =>
              send(401, loginPage('That token is not valid.'), 'text/html; charset=utf-8'),
            );
          this.audit.append('dashboard_login', { role, address: normalizeAddress(source) });
          return send(303, '', 'text/plain', { location: '/', 'set-cookie': this.access.login(role, secure) });
        }
        return error(405, 'method_not_allowed', `${req.method} /login`);
      }
      if (path === '/logout' && req.method === 'POST')
        return send(303, '', 'text/plain', {
          location: '/login',
          'set-cookie': this.access.logout(req.headers.cookie, secure),
        });
      if (req.method === 'GET' && (path === '/' || path === '/dashboard')) {
        if (!this.access.requestRole(req.headers)) return send(303, '', 'text/plain', { location: '/login' });
        return send(200, dashboardHtml, 'text/html; charset=utf-8');
      }
      if (req.method === 'GET' && path === '/api/status') {
        const role = this.access.requestRole(req.headers);
        if (!role)
          return deny('admin_refused', 'no valid credential', () =>
            error(401, 'unauthorized', 'admin or viewer token required'),
          );
        return send(200, this.snapshot(role));
      }
      if (path.startsWith('/api/')) {
        const header = req.headers.authorization ?? '';
        const token = header.startsWith('Bearer ') ? header.slice(7) : '';
        if (this.access.tokenRole(token) !== 'admin')
          return deny('admin_refused', 'not the admin token', () => error(401, 'unauthorized', 'admin token required'));
        if (req.method === 'POST' && path === '/api/rounds') {
          const round = await this.startRound();
          this.audit.append('admin_round_start', { round });
          return send(202, { round });
        }
        if (req.method === 'POST' && path === '/api/evaluate') return send(200, await this.evaluate());
      }
      error(404, 'not_found', `${req.method} ${path.slice(0, 200)}`);
    } catch (caught) {
      const e = caught instanceof FedcxrError ? caught : new FedcxrError('internal', (caught as Error).message);
      if (e.code === 'body_too_large') {
        this.refusals.refuse('http_refused', source, { reason: 'body too large', path: path.slice(0, 100) });
        res.setHeader('connection', 'close');
        return error(413, e.code, e.message);
      }
      if (e.code !== 'round_open') this.audit.append('http_error', { path: path.slice(0, 100), reason: e.message });
      send(e.code === 'round_open' ? 409 : 500, { error: e.toJSON() });
    }
  }

  /** Last resort of the HTTP handler: a 500, audited; never an unhandled rejection. */
  private httpFailed(req: IncomingMessage, res: ServerResponse, error: unknown): void {
    try {
      this.audit.append('http_error', { reason: (error as Error)?.message?.slice(0, 300) ?? String(error) });
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end('{"error":{"code":"internal","message":"internal error"}}');
    } catch {
      req.socket.destroy();
    }
  }
}

/** A refusal for socket.io middleware (`data` marks it as a refusal for the site agent). */
function refusal(reason: string): Error {
  const error = new Error(reason) as Error & { data?: unknown };
  error.data = { code: 'auth_refused' };
  return error;
}

/** Reads a small request body; more than `limit` bytes is a 413. */
function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    // A declared length over the limit is refused before waiting for a body that may never come.
    if (!(declared <= limit)) return reject(new FedcxrError('body_too_large', `request body over ${limit} bytes`));
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(new FedcxrError('body_too_large', `request body over ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sha256Buffer(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function alignedCopy(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length);
  out.set(bytes);
  return out;
}

function weightedMean(items: { weight: number; metrics: Metrics }[]): Metrics {
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

/** A random admin/site token (for generated configs). */
export function randomToken(): string {
  return Array.from({ length: 32 }, () => randomInt(16).toString(16)).join('');
}
