/**
 * Fault tests on loopback: every failure either lets the federation go on or stops it cleanly, and no
 * accepted round (nor accepted update) is lost.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NamedTensors } from '@fedcxr/core';
import {
  createTabularModel,
  type Evaluation,
  encodeUpdate,
  type LocalTrainer,
  type LocalTrainPlan,
  PROTOCOL_VERSION,
  type RoundPlan,
  type SiteAgent,
  sha256Hex,
} from '@fedcxr/federated';
import { io, type Socket } from 'socket.io-client';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from './attack-harness.js';
import { verifyAuditLog } from './audit.js';
import { Coordinator } from './coordinator.js';
import {
  coordinatorConfig,
  MODEL,
  makeSiteData,
  newAgent,
  newCoordinator,
  type SiteFixture,
  siteToken,
  tempDir,
  trainerFor,
} from './testing.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Wraps a trainer so a test can hold training until it says so. */
class GatedTrainer implements LocalTrainer {
  started = 0;
  private release: (() => void) | undefined;
  private gate: Promise<void> | undefined;
  constructor(private readonly inner: LocalTrainer) {}
  hold(): void {
    this.gate = new Promise((resolve) => {
      this.release = resolve;
    });
  }
  open(): void {
    this.release?.();
    this.gate = undefined;
  }
  async train(global: NamedTensors, plan: LocalTrainPlan, signal?: AbortSignal) {
    this.started++;
    if (this.gate) await this.gate;
    return this.inner.train(global, plan, signal);
  }
  evaluate(global: NamedTensors): Promise<Evaluation> {
    return this.inner.evaluate(global);
  }
}

function audit(dir: string): { event: string; code?: string; siteId?: string; round?: number }[] {
  verifyAuditLog(join(dir, 'audit.jsonl'));
  return readFileSync(join(dir, 'audit.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line));
}

async function setup(sites: number, round: Parameters<typeof newCoordinator>[2] = {}, model = MODEL) {
  const dir = tempDir();
  const data = makeSiteData(sites, 60);
  const coordinator = newCoordinator(
    dir.path,
    data.sites.map((s) => s.id),
    round,
    model,
  );
  const url = await coordinator.start();
  cleanups.push(dir.remove, () => coordinator.close());
  return { dir: dir.path, data, coordinator, url };
}

async function agentFor(url: string, site: SiteFixture, trainer?: LocalTrainer): Promise<SiteAgent> {
  const agent = newAgent(url, site, {
    ...(trainer ? { trainer } : {}),
    ...(process.env.FED_DEBUG ? { log: console.log } : {}),
  });
  if (process.env.FED_DEBUG) agent.on('round-error', (e) => console.log('ERR', site.id, e.message));
  await agent.start();
  cleanups.push(() => agent.stop());
  return agent;
}

/** A hand-driven site connection: sends whatever the test wants, bypassing the agent's own schema checks. */
async function rawSite(
  url: string,
  siteId: string,
  token = siteToken(siteId),
): Promise<{ socket: Socket; plan: Promise<RoundPlan> }> {
  const socket = io(url, {
    transports: ['websocket'],
    auth: { protocol: PROTOCOL_VERSION, role: 'site', siteId, token },
    reconnection: false,
  });
  const plan = new Promise<RoundPlan>((resolve) => socket.once('round:plan', resolve));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });
  cleanups.push(() => void socket.disconnect());
  return { socket, plan };
}

const once = <T>(agent: SiteAgent, event: string) => new Promise<T>((resolve) => agent.once(event, resolve));
const ask = (socket: Socket, event: string, payload: unknown) => socket.timeout(5000).emitWithAck(event, payload);

/** A correctly formed update from `values` (flat, in plan order), for the raw site to send. */
function updateFor(plan: RoundPlan, fill: (i: number) => number, encoding: 'float32' | 'int8' = 'float32') {
  const delta: NamedTensors = new Map();
  let k = 0;
  for (const spec of plan.tensors) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    delta.set(spec.name, {
      dtype: 'float32',
      shape: spec.shape,
      data: Float32Array.from({ length: n }, () => fill(k++)),
    });
  }
  const encoded = encodeUpdate(delta, plan.tensors, encoding);
  const nonce = randomBytes(16).toString('hex');
  return {
    nonce,
    bytes: encoded.bytes,
    begin: {
      round: plan.round,
      nonce,
      baseModelHash: plan.modelHash,
      kind: 'delta',
      numExamples: 10,
      metrics: { loss: 1 },
      tensors: encoded.tensors,
      byteLength: encoded.bytes.length,
      sha256: sha256Hex(encoded.bytes),
    },
  };
}

describe('credentials', () => {
  it('refuses a wrong token and an unknown site, and audits both (the second in its source summary)', async () => {
    const { url, dir, data, coordinator } = await setup(1);
    await expect(newAgent(url, data.sites[0], { token: 'not-the-right-token-at-all' }).start()).rejects.toThrow(
      /bad credentials/,
    );
    await expect(newAgent(url, { ...data.sites[0], id: 'intruder' }).start()).rejects.toThrow(/unknown site/);
    const refusals = audit(dir).filter((e) => e.event === 'auth_refused');
    // The first refusal from an address is audited in full at once; the rest of the interval's are counted.
    expect(refusals.map((e) => (e as { reason?: string }).reason)).toEqual(['bad credentials']);
    await coordinator.close(); // flushes the open interval's summary
    const summaries = audit(dir).filter((e) => e.event === 'refusals_summarised') as unknown as {
      source: string;
      count: number;
      reasons: Record<string, number>;
    }[];
    expect(summaries).toEqual([
      expect.objectContaining({ source: '127.0.0.1', count: 1, reasons: { 'unknown site': 1 } }),
    ]);
  });
});

describe('a refusal after the start', () => {
  it('a site refused on reconnecting says so and keeps trying, then rejoins once the coordinator takes it', async () => {
    const dir = tempDir();
    cleanups.push(dir.remove);
    const data = makeSiteData(1, 60);
    const port = await freePort();
    const config = (token: string) => ({
      ...coordinatorConfig(join(dir.path, 'state'), ['site-1']),
      port,
      sites: [{ id: 'site-1', token }],
    });
    const model = { initialModel: createTabularModel(MODEL, 1) };
    let coordinator = new Coordinator(config(siteToken('site-1')), model);
    await coordinator.start();
    const messages: string[] = [];
    const agent = newAgent(coordinator.url, data.sites[0], {
      retry: { initialDelayMs: 50, maxDelayMs: 200 },
      log: (m) => messages.push(m),
    });
    await agent.start();
    cleanups.push(() => agent.stop());
    await coordinator.close();
    // The site's token was rotated at the coordinator: the agent is refused, says why, and does not go silent.
    coordinator = new Coordinator(config('a-rotated-token-0123456789'), model);
    await coordinator.start();
    const refused = await new Promise<Error>((resolve) => agent.once('refused', resolve));
    expect(refused.message).toMatch(/coordinator refused site-1: bad credentials/);
    await coordinator.close();
    coordinator = new Coordinator(config(siteToken('site-1')), model);
    await coordinator.start();
    cleanups.push(() => coordinator.close());
    for (let i = 0; i < 100 && !agent.connected; i++) await new Promise((r) => setTimeout(r, 50));
    expect(agent.connected).toBe(true);
    expect(messages.some((m) => /bad credentials; trying again/.test(m))).toBe(true);
  });
});

describe('bad updates are refused before aggregation', () => {
  it('refuses malformed, NaN, oversized, norm-exploding, replayed and stale updates; the round still completes', async () => {
    const { url, dir, coordinator } = await setup(2, { normBound: 50, minSites: 1, timeoutMs: 1500 });
    await rawSite(url, 'site-1'); // a participant that never reports keeps the round open until the deadline
    const raw = await rawSite(url, 'site-2');
    const round = await coordinator.startRound();
    const plan = await raw.plan;
    expect(plan.round).toBe(round);

    // Malformed: an extra field (e.g. smuggled text) is not in the strict schema.
    const ok = updateFor(plan, () => 0.01);
    expect(await ask(raw.socket, 'update:begin', { ...ok.begin, note: 'patient 123' })).toMatchObject({
      ok: false,
      code: 'malformed',
    });
    // Wrong shapes/names.
    const renamed = updateFor(plan, () => 0.01);
    renamed.begin.tensors[0] = { ...renamed.begin.tensors[0], name: 'evil.weight' };
    expect(await ask(raw.socket, 'update:begin', renamed.begin)).toMatchObject({ ok: false, code: 'manifest' });
    // Oversized: more bytes than the tensors need.
    const big = updateFor(plan, () => 0.01);
    expect(await ask(raw.socket, 'update:begin', { ...big.begin, byteLength: big.bytes.length + 4 })).toMatchObject({
      ok: false,
      code: 'size',
    });
    // NaN: refused at the chunk that carries it.
    const nan = updateFor(plan, (i) => (i === 3 ? Number.NaN : 0.01));
    expect(await ask(raw.socket, 'update:begin', nan.begin)).toEqual({ ok: true });
    expect(
      await ask(raw.socket, 'update:chunk', { round: plan.round, nonce: nan.nonce, index: 0, data: nan.bytes }),
    ).toMatchObject({ ok: false, code: 'not_finite' });
    // Norm-exploding.
    const huge = updateFor(plan, () => 1e3);
    expect(await ask(raw.socket, 'update:begin', huge.begin)).toEqual({ ok: true });
    expect(
      await ask(raw.socket, 'update:chunk', { round: plan.round, nonce: huge.nonce, index: 0, data: huge.bytes }),
    ).toEqual({ ok: true });
    expect(await ask(raw.socket, 'update:end', { round: plan.round, nonce: huge.nonce })).toMatchObject({
      ok: false,
      code: 'norm',
    });
    // Hash mismatch: the bytes are not what was declared.
    const lying = updateFor(plan, () => 0.01);
    expect(await ask(raw.socket, 'update:begin', { ...lying.begin, sha256: 'a'.repeat(64) })).toEqual({ ok: true });
    await ask(raw.socket, 'update:chunk', { round: plan.round, nonce: lying.nonce, index: 0, data: lying.bytes });
    expect(await ask(raw.socket, 'update:end', { round: plan.round, nonce: lying.nonce })).toMatchObject({
      ok: false,
      code: 'hash',
    });
    // A good int8 update is accepted; replaying its nonce is refused.
    const good = updateFor(plan, (i) => 0.001 * (i % 7), 'int8');
    expect(await ask(raw.socket, 'update:begin', good.begin)).toEqual({ ok: true });
    expect(
      await ask(raw.socket, 'update:chunk', { round: plan.round, nonce: good.nonce, index: 0, data: good.bytes }),
    ).toEqual({ ok: true });
    expect(await ask(raw.socket, 'update:end', { round: plan.round, nonce: good.nonce })).toEqual({ ok: true });
    expect(await ask(raw.socket, 'update:begin', good.begin)).toMatchObject({ ok: false, code: 'replay' });
    const summary = await coordinator.waitForRound(round);
    expect(summary.outcome).toBe('aggregated');
    expect(summary.sites).toEqual(['site-2']);
    // Stale: an update for the closed round.
    const stale = updateFor(plan, () => 0.01);
    expect(await ask(raw.socket, 'update:begin', stale.begin)).toMatchObject({ ok: false, code: 'stale_round' });

    const codes = audit(dir)
      .filter((e) => e.event === 'update_rejected')
      .map((e) => e.code);
    expect(codes).toEqual(['malformed', 'manifest', 'size', 'not_finite', 'norm', 'hash', 'replay', 'stale_round']);
  });

  it('drops a connection that sends a frame over the message size limit', async () => {
    const { url, coordinator } = await setup(1, { chunkBytes: 4096 });
    const raw = await rawSite(url, 'site-1');
    await coordinator.startRound();
    const plan = await raw.plan;
    const disconnected = new Promise<string>((resolve) => raw.socket.once('disconnect', resolve));
    raw.socket.emit('update:chunk', {
      round: plan.round,
      nonce: '0'.repeat(32),
      index: 0,
      data: new Uint8Array(4096 + 128 * 1024),
    });
    expect(await disconnected).toMatch(/transport (close|error)/);
  });
});

describe('sites failing mid-round', () => {
  it('a site killed mid-training: the round closes at the deadline with the quorum, the site rejoins next round', async () => {
    const { url, data, coordinator } = await setup(3, { minSites: 2, timeoutMs: 2500 });
    const gated = new GatedTrainer(trainerFor(data.sites[2]));
    const agents = [
      await agentFor(url, data.sites[0]),
      await agentFor(url, data.sites[1]),
      await agentFor(url, data.sites[2], gated),
    ];
    gated.hold();
    const round = await coordinator.startRound();
    await once(agents[2], 'training');
    await agents[2].stop(); // killed while training
    const summary = await coordinator.waitForRound(round);
    expect(summary.outcome).toBe('aggregated');
    expect(summary.sites.sort()).toEqual(['site-1', 'site-2']);
    gated.open();
    const restarted = await agentFor(url, data.sites[2]);
    expect(restarted.connected).toBe(true);
    const next = await coordinator.runRound();
    expect(next.sites.sort()).toEqual(['site-1', 'site-2', 'site-3']);
  });

  it('a site killed mid-upload: the half update is discarded, the restarted site re-sends and the round completes', async () => {
    // A wider model so each update spans four 1 KiB chunks.
    const wide = { ...MODEL, hidden: 64 };
    const { url, data, coordinator, dir } = await setup(2, { chunkBytes: 1024, timeoutMs: 10_000 }, wide);
    const withWide = (site: SiteFixture) => agentFor(url, site, trainerFor(site, wide));
    const first = await withWide(data.sites[0]);
    const victim = await withWide(data.sites[1]);
    const killed = new Promise<void>((resolve) =>
      victim.on('chunk-sent', (n: number) => {
        if (n === 1) void victim.stop().then(resolve);
      }),
    );
    const round = await coordinator.startRound();
    await Promise.all([once(first, 'submitted'), killed]);
    const restarted = await withWide(data.sites[1]);
    await once(restarted, 'submitted');
    const summary = await coordinator.waitForRound(round);
    expect(summary.outcome).toBe('aggregated');
    expect(summary.sites.sort()).toEqual(['site-1', 'site-2']);
    const abandoned = audit(dir).find((e) => e.event === 'update_abandoned' && e.siteId === 'site-2') as
      | { received?: number }
      | undefined;
    expect(abandoned?.received).toBe(1024);
  });

  it('a slow site past the timeout: the round aggregates without it, the site abandons the round and rejoins', async () => {
    const { url, data, coordinator, dir } = await setup(2, { minSites: 1, timeoutMs: 1500 });
    const gated = new GatedTrainer(trainerFor(data.sites[1]));
    gated.hold();
    await agentFor(url, data.sites[0]);
    const slow = await agentFor(url, data.sites[1], gated);
    const round = await coordinator.startRound();
    const summary = await coordinator.waitForRound(round);
    expect(summary.outcome).toBe('aggregated');
    expect(summary.sites).toEqual(['site-1']);
    gated.open();
    const next = await coordinator.runRound();
    expect(next.sites.sort()).toEqual(['site-1', 'site-2']);
    const accepted = audit(dir).filter((e) => e.event === 'update_accepted' && e.siteId === 'site-2');
    expect(accepted.map((e) => e.round)).toEqual([next.round]);
    void slow;
  });

  it('a round without quorum fails cleanly and leaves the global model unchanged', async () => {
    const { url, data, coordinator } = await setup(2, { minSites: 2, timeoutMs: 800 });
    await agentFor(url, data.sites[0]);
    const hash = coordinator.modelHash;
    const summary = await coordinator.runRound();
    expect(summary.outcome).toBe('failed');
    expect(summary.reason).toMatch(/1 of 2/);
    expect(coordinator.modelHash).toBe(hash);
  });
});

describe('coordinator restarts', () => {
  it('killed mid-round and restarted: accepted updates survive, the round completes, no round is lost', async () => {
    const dir = tempDir();
    cleanups.push(dir.remove);
    const data = makeSiteData(3, 60);
    const ids = data.sites.map((s) => s.id);
    const first = newCoordinator(dir.path, ids, { minSites: 3, timeoutMs: 15_000 });
    const url = await first.start();
    const port = Number(new URL(url).port);
    const gated = new GatedTrainer(trainerFor(data.sites[2]));
    const agents = [
      await agentFor(url, data.sites[0]),
      await agentFor(url, data.sites[1]),
      await agentFor(url, data.sites[2], gated),
    ];
    // Round 1 completes normally.
    const r1 = await first.runRound();
    expect(r1.outcome).toBe('aggregated');
    const hashAfterRound1 = first.modelHash;
    // Round 2: two sites report, the third is held; then the coordinator dies.
    gated.hold();
    const r2 = await first.startRound();
    await Promise.all([once(agents[0], 'submitted'), once(agents[1], 'submitted')]);
    await first.close();

    const second = new Coordinator({ ...first.config, port }, {});
    await second.start();
    cleanups.push(() => second.close());
    expect(second.history.map((h) => h.round)).toEqual([1]);
    expect(second.modelHash).toBe(hashAfterRound1);
    expect(second.currentRound).toBe(r2);
    gated.open();
    const summary = await second.waitForRound(r2);
    expect(summary.outcome).toBe('aggregated');
    expect(summary.sites.sort()).toEqual(['site-1', 'site-2', 'site-3']);
    const events = audit(dir.path);
    expect(events.some((e) => e.event === 'round_resumed' && e.round === r2)).toBe(true);
    // Sites 1 and 2 were not asked to redo round 2: one acceptance each.
    const accepted = events.filter((e) => e.event === 'update_accepted' && e.round === r2).map((e) => e.siteId);
    expect(accepted.sort()).toEqual(['site-1', 'site-2', 'site-3']);
    expect(second.history.map((h) => h.round)).toEqual([1, 2]);
  });
});
