/**
 * The federated coordinator: an HTTP(S) server carrying socket.io for the sites, the live dashboard and a
 * small admin API. It runs rounds (plan → sites download the hash-addressed global model → updates streamed
 * back, validated, spooled and accepted into the round's aggregator → new global model checkpointed
 * atomically), with a quorum, a deadline, replay/stale protection, and an append-only audit log. All durable
 * state lives in `stateDir` (round-store.ts), so a restarted coordinator resumes an open round with every
 * update it had accepted.
 *
 * This class wires the parts together and owns the round lifecycle (round-phase.ts: idle → collecting →
 * closing → idle):
 *   site-gateway.ts   socket.io for the sites: authentication, one connection per site, fail-closed events
 *   update-intake.ts  update:begin/chunk/end: refusals, spools, acceptance into the aggregator
 *   secagg-round.ts   a secure-aggregation round: keys, shares, masked sum, unmasking
 *   round-close.ts    a closing round: fail or aggregate (aggregation.ts, strategies/) and commit
 *   round-store.ts    state.json, checkpoints, journals (atomic writes), resuming after a restart
 *   admin-http.ts     login, dashboard page, /api; dashboard-feed.ts its live snapshots; evaluation.ts
 *
 * Fail closed: every HTTP route, socket.io event and binary frame is handled inside a guard; a bad input is
 * a 4xx or a refused ack plus an audit entry, never an exception that reaches the event loop.
 */
import { randomInt } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FedcxrError, type NamedTensors, parseConfig } from '@fedcxr/core';
import {
  createTabularModel,
  decodeModel,
  encodeModel,
  LIMITS,
  type Metrics,
  PROTOCOL_VERSION,
  type RoundPlan,
} from '@fedcxr/federated';
import { Server as SocketServer } from 'socket.io';
import { AccessControl, type Role } from './access.js';
import { createAdminServer } from './admin-http.js';
import { AuditLog } from './audit.js';
import { type CoordinatorConfig, type CoordinatorConfigInput, coordinatorConfigSchema } from './config.js';
import { buildSnapshot, DashboardFeed, type DashboardSnapshot } from './dashboard-feed.js';
import { SiteEvaluation } from './evaluation.js';
import { RefusalGate } from './refusals.js';
import { finishRound } from './round-close.js';
import { activeRound, collecting, ensureIdle, type OpenRound, type RoundPhase, transition } from './round-phase.js';
import { alignedCopy, type RoundJournal, RoundStore, type RoundSummary } from './round-store.js';
import { NO_KEY_EXPECTED, NO_SHARES_EXPECTED, SecAggRound } from './secagg-round.js';
import { type SiteEvents, SiteGateway, type SiteInfo } from './site-gateway.js';
import { type ResolvedStrategy, strategies } from './strategies/registry.js';
import { UpdateIntake } from './update-intake.js';

export type { DashboardSnapshot } from './dashboard-feed.js';
export type { AcceptedUpdate, RoundSummary } from './round-store.js';

export interface CoordinatorOptions {
  /** Initial global model when the state dir is empty (else config.initialModel / config.model). */
  initialModel?: NamedTensors;
  log?: (message: string) => void;
}

export class Coordinator extends EventEmitter {
  readonly config: CoordinatorConfig;
  private readonly strategy: ResolvedStrategy;
  private server: Server | undefined;
  private io: SocketServer | undefined;
  private phase: RoundPhase = { kind: 'idle' };
  private readonly store: RoundStore;
  private readonly audit: AuditLog;
  private readonly refusals: RefusalGate;
  private readonly access: AccessControl;
  private readonly feed: DashboardFeed;
  private readonly gateway: SiteGateway;
  /** The site table (the gateway's). */
  private readonly sites: Map<string, SiteInfo>;
  private readonly intake: UpdateIntake;
  private readonly evaluation = new SiteEvaluation();
  private readonly log: (message: string) => void;
  private sweepTimer: NodeJS.Timeout | undefined;
  private scheduleRunning = false;
  private closed = false;

  constructor(
    config: CoordinatorConfigInput | CoordinatorConfig,
    private readonly options: CoordinatorOptions = {},
  ) {
    super();
    this.config = parseConfig(coordinatorConfigSchema, config, 'coordinator config');
    this.strategy = strategies.resolve(this.config.round);
    this.log = options.log ?? (() => {});
    this.store = new RoundStore(this.config.stateDir, this.config.keepCheckpoints);
    this.audit = new AuditLog(this.store.path('audit.jsonl'), { maxBytes: this.config.audit.maxBytes });
    this.refusals = new RefusalGate(this.audit, {
      intervalMs: this.config.audit.refusalIntervalMs,
      maxPerInterval: this.config.audit.maxRefusalsPerInterval,
      maxSources: this.config.audit.maxSources,
      tarpitMs: this.config.audit.tarpitMs,
    });
    this.access = new AccessControl(this.config.adminToken, this.config.viewerToken, this.config.sessionTtlMs);
    this.feed = new DashboardFeed(this.access, this.refusals, (role) => this.snapshot(role));
    const changed = () => this.feed.changed();
    this.gateway = new SiteGateway(
      {
        sites: this.config.sites,
        clientCa: Boolean(this.config.tls?.clientCa),
        chunkBytes: this.config.round.chunkBytes,
        model: () => ({ hash: this.store.state.modelHash, bytes: this.store.global.bytes }),
      },
      this.audit,
      this.refusals,
      this.siteEvents(),
      changed,
    );
    this.sites = this.gateway.sites;
    this.intake = new UpdateIntake(this.config, this.store, this.audit, {
      current: () => activeRound(this.phase),
      collecting: (open) => collecting(this.phase, open) !== undefined,
      accepted: (open, update) => this.accepted(open, update.siteId, update.numExamples),
      changed,
    });
  }

  get url(): string {
    const address = this.server?.address() as AddressInfo | null;
    if (!address) throw new FedcxrError('coordinator_not_started', 'coordinator is not listening');
    const host = this.config.host.includes(':') ? `[${this.config.host}]` : this.config.host;
    return `${this.config.tls ? 'https' : 'http'}://${host}:${address.port}`;
  }

  get globalModel(): NamedTensors {
    return decodeModel(this.store.global.bytes).tensors;
  }

  get modelHash(): string {
    return this.store.state.modelHash;
  }

  get history(): RoundSummary[] {
    return [...this.store.state.history];
  }

  get currentRound(): number | undefined {
    return activeRound(this.phase)?.journal.round;
  }

  /** Loads or creates the state, resumes an open round, and starts listening. */
  async start(): Promise<string> {
    await this.loadState();
    this.server = await createAdminServer({
      config: this.config,
      access: this.access,
      refusals: this.refusals,
      audit: this.audit,
      api: {
        status: (role) => this.snapshot(role),
        startRound: () => this.startRound(),
        evaluate: () => this.evaluate(),
      },
    });
    this.io = new SocketServer(this.server, {
      maxHttpBufferSize: this.config.round.chunkBytes + LIMITS.envelopeBytes,
      serveClient: true,
      pingInterval: this.config.heartbeat.intervalMs,
      pingTimeout: this.config.heartbeat.timeoutMs,
    });
    this.gateway.attach(this.io);
    this.feed.attach(this.io);
    const server = this.server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.config.port, this.config.host, () => resolve());
    });
    server.on('error', (error) => this.log(`server error: ${error.message}`));
    this.audit.append('coordinator_started', {
      url: this.url,
      modelRound: this.store.state.modelRound,
      modelHash: this.store.state.modelHash,
    });
    this.log(`coordinator listening on ${this.url}`);
    const open = activeRound(this.phase);
    if (open) this.armTimer(open);
    const sweep = Math.max(50, Math.min(5000, Math.floor(this.config.round.uploadIdleMs / 4)));
    this.sweepTimer = setInterval(() => this.intake.sweep(), sweep);
    this.sweepTimer.unref();
    if (this.config.schedule) void this.runSchedule();
    return this.url;
  }

  /** Stops listening. State on disk is complete at every acknowledged step, so this is also what a crash leaves. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const open = activeRound(this.phase);
    if (open) clearTimeout(open.timer);
    this.feed.close();
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.refusals.close();
    for (const { ingest } of open?.ingests.values() ?? []) ingest.close();
    const closing = new Promise<void>((resolve) => (this.io ? this.io.close(() => resolve()) : resolve()));
    // Keep-alive HTTP connections (a dashboard's browser) would otherwise hold server.close() open.
    this.server?.closeAllConnections();
    await closing;
    this.emit('closed');
  }

  private async loadState(): Promise<void> {
    if (this.store.load()) {
      await this.resumeRound();
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
    await this.store.create(alignedCopy(encodeModel(model)));
  }

  /** After a restart: the last round, if it was open, continues with its accepted updates, sites and deadline. */
  private async resumeRound(): Promise<void> {
    const journal = await this.store.resumable(this.config.round.secureAggregation, this.audit);
    if (!journal) return;
    const open = this.createOpenRound(journal);
    for (const update of journal.accepted) open.aggregator?.add(update);
    this.phase = transition(this.phase, { type: 'open', round: open });
    this.audit.append('round_resumed', {
      round: journal.round,
      accepted: journal.accepted.map((u) => u.siteId),
      participants: [...open.participants],
      deadline: new Date(open.plan.deadline).toISOString(),
    });
    this.log(`resumed round ${journal.round} with ${journal.accepted.length} accepted update(s)`);
  }

  private buildPlan(round: number, seed: number, deadline?: number): RoundPlan {
    const r = this.config.round;
    const { strategy, options } = this.strategy;
    return {
      protocol: PROTOCOL_VERSION,
      round,
      task: 'train',
      modelHash: this.store.state.modelHash,
      modelBytes: this.store.global.bytes.length,
      chunkBytes: r.chunkBytes,
      tensors: this.store.global.specs,
      epochs: r.epochs,
      mu: strategy.plan?.(options).mu ?? r.mu,
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
    const participants = new Set([...(journal.participants ?? []), ...journal.accepted.map((u) => u.siteId)]);
    const open: OpenRound = {
      journal,
      plan,
      participants,
      ingests: new Map(),
      uploads: new Map(),
      journalWriter: this.store.journalWriter(journal, this.log),
      timer: setTimeout(() => {}, 0),
      serial: Promise.resolve(),
      startedAt: Date.now(),
    };
    if (r.secureAggregation)
      open.secagg = new SecAggRound(
        journal.round,
        participants,
        this.store.global.flat.length,
        { threshold: r.secaggThreshold, scale: r.secaggScale },
        {
          audit: this.audit,
          online: (siteId) => this.gateway.isOnline(siteId),
          socket: (siteId) => this.gateway.socket(siteId),
          collecting: () => collecting(this.phase, open) !== undefined,
          close: (why) => void this.closeRound(open, why),
        },
      );
    else
      open.aggregator = this.strategy.strategy.begin(this.strategy.options, {
        round: journal.round,
        parameters: this.store.global.flat.length,
      });
    return open;
  }

  private armTimer(open: OpenRound): void {
    clearTimeout(open.timer);
    open.timer = setTimeout(() => void this.closeRound(open, 'deadline'), Math.max(0, open.plan.deadline - Date.now()));
  }

  /** Opens the next round and sends its plan to every connected site. */
  async startRound(): Promise<number> {
    if (this.closed) throw new FedcxrError('coordinator_closed', 'coordinator is closed');
    ensureIdle(this.phase);
    const state = this.store.state;
    const round = state.lastRound + 1;
    const online = this.gateway.online();
    const journal: RoundJournal = {
      round,
      status: 'open',
      baseModelHash: state.modelHash,
      seed: this.config.round.seed * 1_000_003 + round,
      openedAt: new Date().toISOString(),
      deadline: Date.now() + this.config.round.timeoutMs,
      // The plan's sites are on disk before any plan goes out: a restarted coordinator waits for them all.
      participants: online.map((site) => site.id),
      accepted: [],
      seenNonces: [],
    };
    await this.store.openRound(journal);
    state.lastRound = round;
    await this.store.saveState();
    const open = this.createOpenRound(journal);
    this.phase = transition(this.phase, { type: 'open', round: open });
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
    this.feed.changed();
    return round;
  }

  /** Resolves when `round` closes (aggregated or failed). */
  waitForRound(round: number): Promise<RoundSummary> {
    const done = this.store.state.history.find((h) => h.round === round);
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

  /** Sends the collecting round's plan to a (re)connected site that has not reported yet. */
  private sendPlan(site: SiteInfo): void {
    const open = collecting(this.phase);
    if (!open || !site.socket) return;
    if (open.journal.accepted.some((u) => u.siteId === site.id)) return;
    // A secure-aggregation round takes no new member once its peer list (or its shares) are out.
    if (open.secagg && !open.secagg.admits(site.id)) return;
    if (!open.participants.has(site.id)) {
      open.participants.add(site.id);
      open.journal.participants = [...open.participants];
      open.journalWriter.persist().catch(() => {}); // logged by the writer
    }
    site.socket.emit('round:plan', open.plan);
    open.secagg?.resend(site.id);
  }

  /** An update was accepted: once every participant reported (and the quorum is met) the round closes. */
  private accepted(open: OpenRound, siteId: string, numExamples: number): void {
    const site = this.sites.get(siteId);
    if (site) site.examples = numExamples;
    this.feed.changed();
    this.emit('update-accepted', siteId, open.journal.round);
    const everyone = [...open.participants].every((id) => open.journal.accepted.some((u) => u.siteId === id));
    if (everyone && open.journal.accepted.length >= this.config.round.minSites)
      setImmediate(() => void this.closeRound(open, 'all sites reported'));
  }

  private async closeRound(open: OpenRound, why: string): Promise<void> {
    if (!collecting(this.phase, open)) return;
    this.phase = transition(this.phase, { type: 'close', why });
    clearTimeout(open.timer);
    await open.serial;
    this.intake.dropUnfinished(open, why);
    let summary: RoundSummary;
    try {
      summary = await finishRound(
        {
          config: this.config,
          aggregation: this.config.round.aggregation,
          store: this.store,
          audit: this.audit,
          log: this.log,
        },
        open,
        why,
      );
    } finally {
      this.phase = transition(this.phase, { type: 'closed' });
    }
    const round = open.journal.round;
    if (summary.outcome === 'failed') {
      this.store.state.history.push(summary);
      await this.store.saveState().catch((error: Error) => this.log(`state write failed: ${error.message}`));
    }
    this.io?.emit('round:closed', { round, outcome: summary.outcome, modelHash: this.store.state.modelHash });
    this.log(`round ${round} ${summary.outcome}${summary.reason ? `: ${summary.reason}` : ''}`);
    this.emit('round-closed', summary);
    this.feed.changed();
  }

  /**
   * Asks every connected site to evaluate the current global model on its validation data and returns the
   * example-weighted mean (aggregate metrics only).
   */
  async evaluate(timeoutMs = 60_000): Promise<{ numExamples: number; metrics: Metrics; sites: string[] }> {
    if (activeRound(this.phase)) throw new FedcxrError('round_open', 'cannot evaluate while a round is open');
    const state = this.store.state;
    const plan: RoundPlan = {
      ...this.buildPlan(state.lastRound + 1, 0),
      task: 'evaluate',
      deadline: Date.now() + timeoutMs,
    };
    const result = await this.evaluation.run(plan, this.gateway.online(), timeoutMs);
    const { modelRound, modelHash } = state;
    state.evaluations.push({ modelRound, modelHash, metrics: result.metrics, numExamples: result.numExamples });
    await this.store.saveState();
    this.audit.append('model_evaluated', { modelRound, modelHash, ...result });
    this.feed.changed();
    return result;
  }

  private async runSchedule(): Promise<void> {
    const schedule = this.config.schedule;
    if (!schedule || this.scheduleRunning) return;
    this.scheduleRunning = true;
    const aggregated = () => this.store.state.history.filter((h) => h.outcome === 'aggregated').length;
    try {
      while (!this.closed && aggregated() < schedule.rounds) {
        const open = activeRound(this.phase);
        if (open) await this.waitForRound(open.journal.round);
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

  /** The sites' round events, as the gateway hands them over. */
  private siteEvents(): SiteEvents {
    const secagg = () => activeRound(this.phase)?.secagg;
    return {
      connected: (site) => this.sendPlan(site),
      disconnected: (socketId) => this.intake.abandon(socketId),
      // A participant gone before sharing no longer holds up the share exchange.
      offline: () => secagg()?.maybeRelay(),
      updateBegin: (siteId, raw, socketId, reply) => reply(this.intake.begin(siteId, raw, socketId)),
      updateChunk: (siteId, raw, reply) => reply(this.intake.chunk(siteId, raw)),
      updateEnd: async (siteId, raw, reply) => reply(await this.intake.end(siteId, raw)),
      evalReport: (siteId, raw, reply) => this.evaluation.report(siteId, raw, reply),
      secaggKey: (siteId, raw, reply) => {
        const round = secagg();
        if (round) round.onKey(siteId, raw, reply);
        else reply(NO_KEY_EXPECTED);
      },
      secaggShares: (siteId, raw, reply) => {
        const round = secagg();
        if (round) round.onShares(siteId, raw, reply);
        else reply(NO_SHARES_EXPECTED);
      },
    };
  }

  /** What the dashboard and /api/status show; a viewer's copy has no addresses, nonces, hashes or keys. */
  snapshot(role: Role = 'admin'): DashboardSnapshot {
    return buildSnapshot(
      {
        sites: this.sites.values(),
        open: activeRound(this.phase),
        state: this.store.state,
        quorum: this.config.round.minSites,
        audit: this.audit,
      },
      role,
    );
  }
}

/** A random admin/site token (for generated configs). */
export function randomToken(): string {
  return Array.from({ length: 32 }, () => randomInt(16).toString(16)).join('');
}
