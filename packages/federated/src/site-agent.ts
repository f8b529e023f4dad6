/**
 * The site agent: runs beside a hospital's data, connects to the coordinator (WSS with the dev CA, or
 * plain WS on loopback), authenticates with its token, and for every round plan: downloads the global
 * model in chunks, verifies its sha256, evaluates it on local validation data, trains via its
 * LocalTrainer, and streams back an encoded delta. Every outbound message passes the protocol's strict
 * schema first (see `send`), so only tensors and aggregate scalars leave.
 *
 * Restarts: the coordinator re-sends the open round's plan on every (re)connection until it has accepted
 * this site's update, so a site that died mid-training or mid-upload simply does the round again; the
 * last finished update is kept in memory and re-sent (with a fresh nonce) after a mere reconnect. Local
 * training is not interrupted by a disconnect (only by the round closing or `stop`): it finishes, and the
 * plan re-sent on reconnection uploads its result.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { FedcxrError, type NamedTensors } from '@fedcxr/core';
import { io, type Socket } from 'socket.io-client';
import type { z } from 'zod';
import { chunksOf, decodeModel, encodeUpdate, sha256Hex, subtractTensors } from './codec.js';
import { clipAndNoise } from './dp.js';
import {
  type Ack,
  ackSchema,
  LIMITS,
  modelChunkReplySchema,
  PROTOCOL_VERSION,
  type RoundPlan,
  roundClosedSchema,
  roundPlanSchema,
  type SecAggRevealReply,
  type SiteEvent,
  type SiteStatus,
  secaggPeersSchema,
  secaggRelaySchema,
  secaggRevealReplySchema,
  secaggRevealRequestSchema,
  siteOutbound,
  type UpdateBegin,
} from './protocol.js';
import { quantize, SecAggRefusal, SecAggSession } from './secagg.js';
import type { LocalTrainer } from './trainer.js';

export interface SiteAgentOptions {
  url: string;
  siteId: string;
  token: string;
  trainer: LocalTrainer;
  /** PEM of the CA that signed the coordinator's certificate (for https/wss URLs). */
  ca?: string;
  /** PEM client certificate and key, when the coordinator requires mutual TLS. */
  cert?: string;
  key?: string;
  /** Seconds to wait for each acknowledgement. */
  ackTimeoutMs?: number;
  /**
   * Reconnection back-off (socket.io's): the first retry after `initialDelayMs`, doubling up to `maxDelayMs`.
   * It applies at start too: a coordinator that is not up yet is retried, `startAttempts` times (default:
   * until it answers). Only a refusal (credentials, certificates) or an untrusted coordinator certificate
   * ends start() at once, with an error that says which.
   */
  retry?: { initialDelayMs?: number; maxDelayMs?: number; startAttempts?: number };
  log?: (message: string) => void;
  /** Sees every message exactly as it is sent (after schema validation): for audits and tests. */
  onSend?: (event: SiteEvent, payload: unknown) => void;
  /** Sees the socket as soon as it exists, before anything is sent (traffic capture in tests/audits). */
  onSocket?: (socket: Socket) => void;
}

/** Secure aggregation, this site's current round: its session and how far the exchange got. */
interface SecAggState {
  session: SecAggSession;
  keyAccepted: boolean;
  /** This site's encrypted shares, kept so a re-send after a reconnect is byte-identical. */
  outgoing?: { to: string; ciphertext: string }[];
  sending?: boolean;
  sharesSent: boolean;
  failure?: Error;
}

interface FinishedUpdate {
  round: number;
  modelHash: string;
  begin: Omit<UpdateBegin, 'nonce'>;
  bytes: Uint8Array;
  chunkBytes: number;
}

export class SiteAgent extends EventEmitter {
  private socket: Socket | undefined;
  private job:
    | {
        key: string;
        round: number;
        controller: AbortController;
        done: Promise<unknown>;
        /** Evaluating or training locally: needs no connection, so a disconnect does not stop it. */
        computing: boolean;
      }
    | undefined;
  private finished: FinishedUpdate | undefined;
  private stopping = false;
  /** Secure aggregation: the current round's session, and the latest peer list and relayed shares received. */
  private secagg: SecAggState | undefined;
  private secaggPeers: z.infer<typeof secaggPeersSchema> | undefined;
  private secaggRelay: z.infer<typeof secaggRelaySchema> | undefined;
  private readonly ackTimeoutMs: number;
  private readonly log: (message: string) => void;

  constructor(private readonly options: SiteAgentOptions) {
    super();
    this.ackTimeoutMs = options.ackTimeoutMs ?? 30_000;
    this.log = options.log ?? (() => {});
  }

  /** Connects and resolves once authenticated; rejects on refused credentials. */
  async start(): Promise<void> {
    const { url, siteId, token, ca, cert, key } = this.options;
    const socket = io(url, {
      transports: ['websocket'],
      auth: { protocol: PROTOCOL_VERSION, role: 'site', siteId, token },
      reconnectionDelay: this.options.retry?.initialDelayMs ?? 200,
      reconnectionDelayMax: this.options.retry?.maxDelayMs ?? 2000,
      ...(ca ? { ca, rejectUnauthorized: true } : {}),
      ...(cert && key ? { cert, key } : {}),
    });
    this.socket = socket;
    this.options.onSocket?.(socket);
    socket.io.on('reconnect_attempt', (n) => this.log(`${siteId}: reconnecting (attempt ${n})`));
    socket.io.on('reconnect_error', (error) => this.log(`${siteId}: reconnect failed: ${error.message}`));
    socket.io.on('reconnect', () => this.log(`${siteId}: reconnected`));
    socket.on('round:plan', (raw: unknown) => this.onPlan(raw));
    socket.on('secagg:peers', (raw: unknown) => {
      const peers = secaggPeersSchema.safeParse(raw);
      if (!peers.success) return;
      this.secaggPeers = peers.data;
      void this.onSecAggPeers();
    });
    socket.on('secagg:shares', (raw: unknown) => {
      const relay = secaggRelaySchema.safeParse(raw);
      if (!relay.success) return;
      this.secaggRelay = relay.data;
      this.onSecAggRelay();
    });
    socket.on('secagg:reveal', (raw: unknown, reply: unknown) => {
      const request = secaggRevealRequestSchema.safeParse(raw);
      if (!request.success || typeof reply !== 'function') return;
      const payload = secaggRevealReplySchema.parse(this.reveal(request.data));
      this.options.onSend?.('secagg:reveal' as SiteEvent, payload);
      (reply as (value: unknown) => void)(payload);
    });
    socket.on('round:closed', (raw: unknown) => {
      const closed = roundClosedSchema.safeParse(raw);
      if (!closed.success) return;
      if (this.job && this.job.round === closed.data.round) this.job.controller.abort();
      this.emit('round-closed', closed.data);
    });
    socket.on('disconnect', (reason) => {
      this.log(`${siteId}: disconnected (${reason})`);
      // Local training goes on through a disconnect (a long tensor step can itself outlast the heartbeat):
      // aborting it would redo the round after every reconnect, forever if each step is that long. Work
      // that needs the connection (download, upload) is abandoned; the re-sent plan restarts it.
      if (this.job && !this.job.computing) this.job.controller.abort();
      // socket.io retries by itself except after a server-side disconnect (e.g. a coordinator shutting down).
      if (reason === 'io server disconnect' && !this.stopping)
        setTimeout(() => this.stopping || socket.connect(), 500).unref();
    });
    const startAttempts = this.options.retry?.startAttempts ?? Number.POSITIVE_INFINITY;
    await new Promise<void>((resolve, reject) => {
      // Only the first connection decides start()'s outcome; later failures are socket.io's to retry.
      let attempts = 0;
      const onConnect = () => {
        socket.off('connect_error', onError);
        resolve();
      };
      const fail = (error: FedcxrError) => {
        socket.off('connect', onConnect);
        socket.off('connect_error', onError);
        socket.disconnect();
        reject(error);
      };
      const onError = (error: Error) => {
        attempts++;
        const failure = classifyConnectError(error, url, siteId);
        if (failure.final || attempts >= startAttempts) return fail(failure.error);
        // Transient (nothing listening yet, connection reset): socket.io retries with its back-off.
        this.log(`${siteId}: ${failure.error.message}; retrying (attempt ${attempts})`);
      };
      socket.once('connect', onConnect);
      socket.on('connect_error', onError);
    });
    this.log(`${siteId}: connected to ${url}`);
    // After the start, a refusal on reconnecting (a token rotated at the coordinator, a refusal budget spent)
    // ends socket.io's own retries: say so, and try again after the longest back-off rather than go silent.
    socket.on('connect_error', (error: Error) => {
      const failure = classifyConnectError(error, url, siteId);
      if (!failure.final || this.stopping) return;
      this.log(`${siteId}: ${failure.error.message}; trying again`);
      this.emit('refused', failure.error);
      setTimeout(
        () => this.stopping || socket.connected || socket.connect(),
        this.options.retry?.maxDelayMs ?? 2000,
      ).unref();
    });
  }

  /** Closes the connection (the coordinator sees the site go offline). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.job?.controller.abort();
    this.socket?.disconnect();
    // A trainer may only notice the abort at its next step: wait a little, never forever.
    const job = this.job?.done.catch(() => {});
    if (job) await Promise.race([job, new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
    this.socket = undefined;
  }

  get connected(): boolean {
    return this.socket?.connected === true;
  }

  private onPlan(raw: unknown): void {
    const parsed = roundPlanSchema.safeParse(raw);
    if (!parsed.success) {
      this.log(`${this.options.siteId}: ignored a malformed round plan`);
      return;
    }
    const plan = parsed.data;
    const key = `${plan.task}:${plan.round}:${plan.modelHash}`;
    if (this.job && this.job.key === key) return;
    this.job?.controller.abort();
    const controller = new AbortController();
    const done = this.runRound(plan, controller.signal).then(
      () => this.emit('round-done', plan.round),
      (error: unknown) => {
        if (!controller.signal.aborted) {
          this.log(`${this.options.siteId}: round ${plan.round} failed: ${(error as Error).message}`);
          this.emit('round-error', error);
        }
      },
    );
    const job = { key, round: plan.round, controller, done, computing: false };
    this.job = job;
    void done.finally(() => {
      if (this.job === job) this.job = undefined;
    });
  }

  private async runRound(plan: RoundPlan, signal: AbortSignal): Promise<void> {
    const reuse = this.finished && this.finished.round === plan.round && this.finished.modelHash === plan.modelHash;
    let finished: FinishedUpdate;
    if (reuse && plan.task === 'train') finished = this.finished!;
    else {
      await this.status({ state: 'downloading', round: plan.round });
      const global = await this.download(plan, signal);
      await this.status({ state: 'evaluating', round: plan.round });
      const globalEvaluation = await this.compute(signal, () => this.options.trainer.evaluate(global));
      if (plan.task === 'evaluate') {
        await this.send('eval:report', { round: plan.round, modelHash: plan.modelHash, evaluation: globalEvaluation });
        await this.status({ state: 'idle', round: plan.round });
        return;
      }
      const secagg = plan.secureAggregation ? await this.secaggSession(plan.round) : undefined;
      await this.status({ state: 'training', round: plan.round });
      this.emit('training', plan.round);
      const result = await this.compute(signal, () =>
        this.options.trainer.train(
          global,
          {
            round: plan.round,
            epochs: plan.epochs,
            mu: plan.mu,
            learningRate: plan.learningRate,
            batchSize: plan.batchSize,
            seed: plan.seed,
          },
          signal,
        ),
      );
      const delta = result.delta ?? subtractTensors(result.weights!, global);
      const metrics = { ...result.metrics };
      if (plan.dp) {
        const applied = clipAndNoise(delta, plan.dp.clipNorm, plan.dp.noiseMultiplier);
        metrics.dp_clipped = applied.clipped ? 1 : 0;
      }
      const encoded = secagg
        ? await this.maskedUpdate(plan, delta, result.numExamples, secagg, signal)
        : encodeUpdate(delta, plan.tensors, plan.encoding);
      finished = {
        round: plan.round,
        modelHash: plan.modelHash,
        chunkBytes: plan.chunkBytes,
        bytes: encoded.bytes,
        begin: {
          round: plan.round,
          baseModelHash: plan.modelHash,
          kind: 'delta',
          numExamples: result.numExamples,
          metrics,
          globalEvaluation,
          tensors: encoded.tensors,
          byteLength: encoded.bytes.length,
          sha256: sha256Hex(encoded.bytes),
        },
      };
      this.finished = finished;
      // Lost the connection while training: stop here; the plan re-sent on reconnection uploads this update.
      if (!this.connected) throw this.abortJob(signal);
    }
    await this.upload(finished, signal);
    await this.status({ state: 'idle', round: plan.round });
  }

  /** Runs local work (evaluation, training) marked as such, so a disconnect meanwhile lets it finish. */
  private async compute<T>(signal: AbortSignal, work: () => Promise<T>): Promise<T> {
    const job = this.job;
    if (job) job.computing = true;
    let result: T;
    try {
      result = await work();
    } finally {
      if (job) job.computing = false;
    }
    if (signal.aborted) throw new FedcxrError('training_aborted', 'round aborted');
    return result;
  }

  private abortJob(signal: AbortSignal): FedcxrError {
    if (this.job && !signal.aborted) this.job.controller.abort();
    return new FedcxrError('training_aborted', 'connection lost; the re-sent plan resumes the round');
  }

  /**
   * Secure aggregation: this round's session, publishing its keys. A session whose masks are unused is kept
   * across a reconnect (its key is already with the coordinator, which takes no new keys once peers are out).
   */
  private async secaggSession(round: number): Promise<SecAggState> {
    const current = this.secagg;
    const state: SecAggState =
      current && current.session.round === round && !current.session.spent && !current.failure
        ? current
        : { session: new SecAggSession(round, this.options.siteId), keyAccepted: false, sharesSent: false };
    this.secagg = state;
    if (!state.keyAccepted) {
      expectOk(await this.send('secagg:key', { round, ...state.session.publicKeys }), 'secagg:key');
      state.keyAccepted = true;
    }
    void this.onSecAggPeers();
    return state;
  }

  /** The peer list is in: Shamir-share our secrets and send each peer its encrypted shares (once). */
  private async onSecAggPeers(): Promise<void> {
    const state = this.secagg;
    const peers = this.secaggPeers;
    if (!state?.keyAccepted || !peers || peers.round !== state.session.round || state.failure) return;
    try {
      if (!state.session.hasPeers) state.outgoing = state.session.setPeers(peers.peers, peers.threshold);
      if (state.sharesSent || state.sending || !state.outgoing) return;
      state.sending = true;
      try {
        expectOk(
          await this.send('secagg:shares', { round: state.session.round, shares: state.outgoing }),
          'secagg:shares',
        );
        state.sharesSent = true;
      } finally {
        state.sending = false;
      }
    } catch (error) {
      // A refusal or an unusable peer list is final. Transport trouble (offline, disconnected mid-send, ack
      // timeout) is not: the coordinator re-sends the peer list on reconnection, and we re-send the same shares.
      const code = error instanceof FedcxrError ? error.code : '';
      if (/^(update_refused_|secagg_|shamir_)/.test(code)) this.failSecAgg(state, error as Error);
      else
        this.log(`${this.options.siteId}: could not send secure-aggregation shares yet: ${(error as Error).message}`);
      return;
    }
    this.onSecAggRelay();
  }

  /** The coordinator relayed the shares the others made for us: decrypt and keep them. */
  private onSecAggRelay(): void {
    const state = this.secagg;
    const relay = this.secaggRelay;
    if (!state || !relay || relay.round !== state.session.round || !state.session.hasPeers || state.session.ready)
      return;
    try {
      state.session.acceptShares(relay.shares);
      this.emit('secagg-update');
    } catch (error) {
      this.failSecAgg(state, error as Error);
    }
  }

  private failSecAgg(state: SecAggState, error: Error): void {
    state.failure = error;
    this.log(`${this.options.siteId}: secure aggregation of round ${state.session.round} failed: ${error.message}`);
    this.emit('secagg-update');
  }

  /** Answers an unmasking request from this round's session; refusals name their reason, nothing else. */
  private reveal(request: { round: number; survivors: string[]; dropped: string[] }): SecAggRevealReply {
    const session = this.secagg?.session;
    if (!session || session.round !== request.round) return { round: request.round, refused: 'unknown_round' };
    try {
      return { round: request.round, shares: session.reveal(request.survivors, request.dropped) };
    } catch (error) {
      if (!(error instanceof SecAggRefusal)) throw error;
      this.log(`${this.options.siteId}: refused to reveal shares: ${error.message}`);
      return { round: request.round, refused: error.reason };
    }
  }

  /** Secure aggregation: round(n·δ·scale) mod 2^32 under this round's self mask and pairwise masks. */
  private async maskedUpdate(
    plan: RoundPlan,
    delta: NamedTensors,
    numExamples: number,
    state: SecAggState,
    signal: AbortSignal,
  ): Promise<{ tensors: UpdateBegin['tensors']; bytes: Uint8Array }> {
    // Wait until every participant's shares are here (only then can our masks be removed if we drop).
    while (!state.session.ready) {
      if (state.failure) throw state.failure;
      if (signal.aborted)
        throw new FedcxrError('training_aborted', 'round aborted while waiting for the share exchange');
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.off('secagg-update', done);
          resolve();
        };
        const timer = setTimeout(done, 200);
        this.on('secagg-update', done);
      });
    }
    const total = plan.tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
    const flat = new Float32Array(total);
    let offset = 0;
    for (const spec of plan.tensors) {
      const values = delta.get(spec.name)!.data;
      for (let i = 0; i < values.length; i++) flat[offset + i] = values[i] * numExamples;
      offset += values.length;
    }
    const masked = state.session.mask(quantize(flat, plan.secaggScale ?? 1024));
    return {
      tensors: plan.tensors.map((t) => ({ name: t.name, shape: [...t.shape], encoding: 'uint32' as const })),
      bytes: new Uint8Array(masked.buffer),
    };
  }

  private async download(plan: RoundPlan, signal: AbortSignal): Promise<NamedTensors> {
    const bytes = new Uint8Array(plan.modelBytes);
    const count = Math.ceil(plan.modelBytes / plan.chunkBytes);
    for (let index = 0; index < count; index++) {
      if (signal.aborted) throw new FedcxrError('download_aborted', 'download aborted');
      const reply = modelChunkReplySchema.parse(await this.send('model:chunk', { modelHash: plan.modelHash, index }));
      if (!reply.ok) throw new FedcxrError('download_refused', `model chunk ${index}: ${reply.error}`);
      const offset = index * plan.chunkBytes;
      if (reply.index !== index || offset + reply.data.length > bytes.length)
        throw new FedcxrError('download_invalid', `model chunk ${index} does not fit the announced size`);
      bytes.set(reply.data, offset);
    }
    const hash = sha256Hex(bytes);
    if (hash !== plan.modelHash)
      throw new FedcxrError('model_hash_mismatch', `global model hash ${hash} ≠ announced ${plan.modelHash}`);
    const model = decodeModel(bytes, `global model of round ${plan.round}`);
    const expected = JSON.stringify(plan.tensors);
    if (JSON.stringify(model.specs) !== expected)
      throw new FedcxrError('model_manifest_mismatch', 'global model tensors differ from the round plan');
    return model.tensors;
  }

  private async upload(update: FinishedUpdate, signal: AbortSignal): Promise<void> {
    const nonce = randomBytes(16).toString('hex');
    await this.status({ state: 'uploading', round: update.round });
    expectOk(await this.send('update:begin', { ...update.begin, nonce }), 'update:begin');
    let index = 0;
    for (const data of chunksOf(update.bytes, Math.min(update.chunkBytes, LIMITS.maxChunkBytes))) {
      if (signal.aborted) throw new FedcxrError('upload_aborted', 'upload aborted');
      expectOk(await this.send('update:chunk', { round: update.round, nonce, index, data }), `update chunk ${index}`);
      index++;
      this.emit('chunk-sent', index);
    }
    expectOk(await this.send('update:end', { round: update.round, nonce }), 'update:end');
    this.log(`${this.options.siteId}: round ${update.round} update accepted`);
    this.emit('submitted', update.round);
  }

  private async status(status: SiteStatus): Promise<void> {
    if (!this.socket?.connected) return;
    const payload = siteOutbound['site:status'].parse(status);
    this.options.onSend?.('site:status', payload);
    this.socket.emit('site:status', payload);
  }

  /** The only way anything leaves the site: strict schema first, then the wire. */
  private async send<E extends SiteEvent>(event: E, payload: z.input<(typeof siteOutbound)[E]>): Promise<unknown> {
    const socket = this.socket;
    if (!socket?.connected) throw new FedcxrError('site_offline', 'not connected to the coordinator');
    const checked = siteOutbound[event].parse(payload);
    this.options.onSend?.(event, checked);
    return socket.timeout(this.ackTimeoutMs).emitWithAck(event, checked);
  }
}

/** TLS alerts a server sends when it refuses the client's certificate. */
const CLIENT_CERT_REFUSED =
  /alert (bad certificate|unknown ca|certificate unknown|certificate required|access denied)|certificate required/i;
/** The site's own verification of the coordinator's certificate failed. */
const SERVER_CERT_UNTRUSTED =
  /self[- ]signed|unable to (verify|get (local )?issuer)|certificate (has expired|is not yet valid|signature failure)|hostname|altnames|ERR_TLS_CERT|CERT_/i;

/**
 * What a failed first connection means: a refusal by the coordinator (bad token, unknown site, client
 * certificate not trusted or not this site's) or an untrusted coordinator certificate is final and named
 * as such; anything else (nothing listening yet, a reset) is transient and retried.
 */
export function classifyConnectError(
  error: Error,
  url: string,
  siteId: string,
): { final: boolean; error: FedcxrError } {
  if (
    (error as Error & { data?: unknown }).data !== undefined ||
    /credential|unknown site|protocol|client certificate|too many/.test(error.message)
  )
    return { final: true, error: new FedcxrError('site_refused', `coordinator refused ${siteId}: ${error.message}`) };
  // engine.io wraps the transport failure (e.g. a TLS verification error) in `description`.
  const cause = (error as Error & { description?: { message?: string; error?: Error; code?: string } }).description;
  const inner = cause?.error as (Error & { code?: string }) | undefined;
  const detail = [inner?.code, inner?.message ?? cause?.message].filter(Boolean).join(' ');
  if (CLIENT_CERT_REFUSED.test(detail))
    return {
      final: true,
      error: new FedcxrError(
        'site_refused',
        `coordinator refused ${siteId}: client certificate not trusted by the coordinator (${detail})`,
      ),
    };
  if (SERVER_CERT_UNTRUSTED.test(detail))
    return {
      final: true,
      error: new FedcxrError(
        'site_tls_untrusted',
        `cannot reach ${url}: the coordinator's certificate is not trusted by this site (${detail})`,
      ),
    };
  return {
    final: false,
    error: new FedcxrError('site_unreachable', `cannot reach ${url}: ${error.message}${detail ? ` (${detail})` : ''}`),
  };
}

/**
 * Counts the rounds this site takes part in to their end: a round counts once the site's update was accepted
 * AND the coordinator closed the round (aggregated or failed), so a site leaving after `limit` rounds has
 * stayed for everything its last round needed of it (secure aggregation's unmasking included).
 */
export function untilRoundsFinished(
  agent: SiteAgent,
  limit: number,
): { done: Promise<void>; submitted: number[]; finished: number[] } {
  const submitted: number[] = [];
  const finished: number[] = [];
  const closed = new Set<number>();
  let resolve: () => void = () => {};
  const done = new Promise<void>((r) => {
    resolve = r;
  });
  const check = (round: number) => {
    if (!submitted.includes(round) || !closed.has(round) || finished.includes(round)) return;
    finished.push(round);
    if (finished.length >= limit) resolve();
  };
  agent.on('submitted', (round: number) => {
    if (!submitted.includes(round)) submitted.push(round);
    check(round);
  });
  agent.on('round-closed', (closedRound: { round: number }) => {
    closed.add(closedRound.round);
    check(closedRound.round);
  });
  return { done, submitted, finished };
}

function expectOk(raw: unknown, what: string): void {
  const ack: Ack = ackSchema.parse(raw);
  if (!ack.ok) throw new FedcxrError(`update_refused_${ack.code}`, `${what} refused: ${ack.error}`);
}
