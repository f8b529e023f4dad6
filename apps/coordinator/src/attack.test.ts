/**
 * The attack suite: a real coordinator process (coordinator-process.ts) and real site processes or
 * hand-driven sockets, on loopback (127.0.0.1 only), attacked the way issue 19 found it could be, and the
 * way it already held. Every case asserts the fixed behaviour and that the coordinator process is still
 * alive and serving afterwards. Every wait is bounded (attack-harness.ts).
 */
import {
  closeSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { createTabularModel, encodeModel, generateDevCertificates, type SiteProcess } from '@fedcxr/federated';
import { io } from 'socket.io-client';
import { afterAll, describe, expect, it } from 'vitest';
import {
  accuracy,
  ask,
  type CoordinatorProcess,
  exitOf,
  freePort,
  globalModel,
  httpCall,
  rawHttp,
  rawSite,
  readAudit,
  sendUpdate,
  siteProcess,
  sleep,
  startCoordinatorProcess,
  updateFor,
  within,
  writeConfig,
  writeSiteFiles,
} from './attack-harness.js';
import { readLines, verifyAuditChain } from './audit.js';
import type { CoordinatorConfigInput } from './config.js';
import { ADMIN_TOKEN, coordinatorConfig, MODEL, makeSiteData, newAgent, tempDir, trainerFor } from './testing.js';

const dir = tempDir('fedcxr-attack-');
const coordinators: CoordinatorProcess[] = [];
const sites: SiteProcess[] = [];
afterAll(async () => {
  for (const site of sites) site.kill('SIGKILL');
  for (const c of coordinators) await c.stop();
  if (!process.env.FED_KEEP) dir.remove();
});

const modelPath = join(dir.path, 'initial.fcxw');
writeFileSync(modelPath, encodeModel(createTabularModel(MODEL, 1)));

let configs = 0;
/** A coordinator process on its own state dir; `patch` overrides the test config. */
async function coordinator(
  ids: string[],
  round: CoordinatorConfigInput['round'] = {},
  patch: Partial<CoordinatorConfigInput> = {},
): Promise<{ c: CoordinatorProcess; stateDir: string; configPath: string; port: number }> {
  const name = `c${++configs}`;
  const stateDir = join(dir.path, name);
  const configPath = writeConfig(join(dir.path, `${name}.json`), {
    ...coordinatorConfig(stateDir, ids, round),
    initialModel: modelPath,
    ...patch,
  });
  const c = await startCoordinatorProcess(configPath);
  coordinators.push(c);
  return { c, stateDir, configPath, port: Number(new URL(c.url).port) };
}

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

async function openRound(c: CoordinatorProcess): Promise<number> {
  c.send({ type: 'start-round' });
  return (await c.next('round-opened')).round as number;
}

describe('pre-authentication input never takes the coordinator down', () => {
  it('a bad request line ("GET http://[::1 HTTP/1.1") and other malformed HTTP: 4xx, audited, still serving', async () => {
    const { c, port, stateDir } = await coordinator(['site-1']);
    // The request line of issue 19 (was: TypeError: Invalid URL, process exit).
    expect(await rawHttp(port, 'GET http://[::1 HTTP/1.1\r\nHost: x\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    const malformed = [
      'GET http://[::1 HTTP/1.1\r\n\r\n',
      'GET http://%zz/ HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET //[ HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET / HTTP/9.9\r\n\r\n',
      '\u0000\u0001\u0002 garbage\r\n\r\n',
      `GET / HTTP/1.1\r\nX: ${'a'.repeat(20_000)}\r\n\r\n`,
      'POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\ntoken=',
      'GET /api/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \u00ff\r\n\r\n',
      'GET /socket.io/?EIO=4&transport=polling&sid=%%% HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET /socket.io/?EIO=99&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
    ];
    for (const request of malformed) {
      const status = await rawHttp(port, request, { timeoutMs: 5000 });
      // Answered with a client error, or hung up on (a request Node cannot even parse).
      expect(status, JSON.stringify(request.slice(0, 60))).toMatch(/^(HTTP\/1\.1 4\d\d|closed)/);
      expect(c.alive()).toBe(true);
    }
    const status = await httpCall(`${c.url}/api/status`, { headers: admin });
    expect(status.status).toBe(200);
    const refused = readAudit(stateDir).filter((e) => e.event === 'http_refused');
    expect(refused[0]).toMatchObject({ source: '127.0.0.1', reason: 'unparsable request target' });
    expect(c.alive()).toBe(true);
  });

  it('malformed socket.io events, missing acks and unknown events: refused acks, audited, still serving', async () => {
    const { c, stateDir } = await coordinator(['site-1', 'site-2'], { timeoutMs: 20_000 });
    const raw = await rawSite(c.url, 'site-1');
    await openRound(c);
    const plan = await raw.nextPlan();
    const junk: unknown[] = [
      null,
      42,
      'text',
      [],
      { round: 'x' },
      { round: plan.round, nonce: 'z'.repeat(32) },
      { __proto__: { ok: true } },
      { round: plan.round, nonce: '0'.repeat(32), index: -1, data: 'not binary' },
      { round: plan.round, nonce: '0'.repeat(32), index: 1e12, data: new Uint8Array(1) },
    ];
    for (const event of ['update:begin', 'update:chunk', 'update:end', 'model:chunk', 'eval:report', 'secagg:key'])
      for (const payload of junk) {
        const reply = await ask(raw.socket, event, payload);
        expect(reply.ok, `${event} ${JSON.stringify(payload)}`).toBe(false);
      }
    // No ack function at all, and events nobody handles: nothing answers, nothing breaks.
    raw.socket.emit('update:begin', { round: plan.round });
    raw.socket.emit('update:chunk', null);
    raw.socket.emit('no-such-event', { a: 1 });
    raw.socket.emit('site:status', { state: 'x'.repeat(10_000), round: -1 });
    await sleep(200);
    expect(raw.socket.connected).toBe(true);
    expect(c.alive()).toBe(true);
    const rejected = readAudit(stateDir).filter((e) => e.event === 'update_rejected');
    expect(rejected.some((e) => e.code === 'malformed')).toBe(true);
    // The round still works: a good update from the same connection is accepted.
    const good = updateFor(plan, () => 0.001);
    expect(await sendUpdate(raw.socket, plan, good)).toEqual({ ok: true });
    raw.socket.disconnect();
  });

  it('what already held still holds: stale, replay, NaN, bad shape, false hash, 2 GiB claim, huge frame', async () => {
    const { c, stateDir } = await coordinator(['site-1', 'site-2'], { chunkBytes: 4096, timeoutMs: 20_000 });
    const raw = await rawSite(c.url, 'site-1');
    await openRound(c);
    const plan = await raw.nextPlan();
    const stale = updateFor(plan, () => 0.001);
    expect(await ask(raw.socket, 'update:begin', { ...stale.begin, round: plan.round + 1 })).toMatchObject({
      code: 'stale_round',
    });
    expect(await ask(raw.socket, 'update:begin', { ...stale.begin, baseModelHash: 'b'.repeat(64) })).toMatchObject({
      code: 'stale_model',
    });
    const shape = updateFor(plan, () => 0.001);
    (shape.begin.tensors as { shape: number[] }[])[0].shape = [1, 2, 3];
    expect(await ask(raw.socket, 'update:begin', shape.begin)).toMatchObject({ code: 'manifest' });
    expect(await ask(raw.socket, 'update:begin', { ...shape.begin, byteLength: 2 ** 31 })).toMatchObject({
      ok: false,
    });
    const nan = updateFor(plan, (i) => (i === 2 ? Number.POSITIVE_INFINITY : 0.001));
    expect(await sendUpdate(raw.socket, plan, nan)).toMatchObject({ ok: false, code: 'not_finite' });
    const lying = updateFor(plan, () => 0.001);
    lying.begin.sha256 = 'c'.repeat(64);
    expect(await sendUpdate(raw.socket, plan, lying)).toMatchObject({ ok: false, code: 'hash' });
    const good = updateFor(plan, () => 0.001);
    expect(await sendUpdate(raw.socket, plan, good)).toEqual({ ok: true });
    expect(await ask(raw.socket, 'update:begin', good.begin)).toMatchObject({ code: 'replay' });
    const dropped = new Promise<string>((resolve) => raw.socket.once('disconnect', resolve));
    raw.socket.emit('update:chunk', {
      round: plan.round,
      nonce: '0'.repeat(32),
      index: 0,
      data: new Uint8Array(4096 + 128 * 1024),
    });
    expect(await within(dropped, 5000, 'huge frame disconnect')).toMatch(/transport (close|error)/);
    expect(c.alive()).toBe(true);
    const codes = readAudit(stateDir)
      .filter((e) => e.event === 'update_rejected')
      .map((e) => e.code);
    expect(codes).toEqual(expect.arrayContaining(['stale_round', 'stale_model', 'manifest', 'not_finite', 'hash']));
    expect(codes).toContain('replay');
  });
});

describe('abandoned uploads do not pile up', () => {
  it('one in-flight upload per site, 300 begins leave one spool, idle/abandoned/closed uploads are removed and audited', async () => {
    const { c, stateDir } = await coordinator(['site-1', 'site-2'], {
      timeoutMs: 6000,
      uploadIdleMs: 800,
      maxUploadsPerSite: 8,
      minSites: 1,
    });
    const raw = await rawSite(c.url, 'site-1');
    const round = await openRound(c);
    const plan = await raw.nextPlan();
    const spools = () => readdirSync(join(stateDir, 'rounds', String(round).padStart(6, '0'), 'updates'));
    const first = updateFor(plan, () => 0.001);
    expect(await ask(raw.socket, 'update:begin', first.begin)).toEqual({ ok: true });
    const codes = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const reply = await ask(raw.socket, 'update:begin', updateFor(plan, () => 0.001).begin);
      expect(reply.ok).toBe(false);
      codes.set(reply.code ?? '', (codes.get(reply.code ?? '') ?? 0) + 1);
    }
    expect(codes.get('busy')).toBe(7); // uploads 2..8 of the 8 allowed
    expect(codes.get('too_many_uploads')).toBe(293);
    expect(spools()).toHaveLength(1);
    // Idle: no chunk for uploadIdleMs, the spool goes.
    await within(
      (async () => {
        while (spools().length > 0) await sleep(100);
      })(),
      5000,
      'idle upload dropped',
    );
    const audit = readAudit(stateDir);
    expect(audit.filter((e) => e.event === 'update_dropped')[0]).toMatchObject({
      siteId: 'site-1',
      nonce: first.nonce,
      reason: 'upload idle for 800 ms',
    });
    // Disconnect mid-upload (new site connection): spool removed, audited.
    const second = await rawSite(c.url, 'site-2');
    const plan2 = await second.nextPlan();
    const half = updateFor(plan2, () => 0.001);
    expect(await ask(second.socket, 'update:begin', half.begin)).toEqual({ ok: true });
    expect(spools()).toHaveLength(1);
    second.socket.disconnect();
    await within(
      (async () => {
        while (spools().length > 0) await sleep(50);
      })(),
      5000,
      'abandoned upload removed',
    );
    expect(readAudit(stateDir).find((e) => e.event === 'update_abandoned')).toMatchObject({
      siteId: 'site-2',
      reason: 'site disconnected',
    });
    // The journal keeps this round's nonces, bounded by maxUploadsPerSite per site.
    const journal = JSON.parse(
      readFileSync(join(stateDir, 'rounds', String(round).padStart(6, '0'), 'journal.json'), 'utf8'),
    ) as { seenNonces: string[] };
    expect(journal.seenNonces.length).toBeLessThanOrEqual(16);
    raw.socket.disconnect();
  });

  it('an upload still running when the round closes is dropped with its reason; a site over its spool quota is refused', async () => {
    const { c, stateDir } = await coordinator(['site-1', 'site-2'], { timeoutMs: 1500, minSites: 1 });
    const a = await rawSite(c.url, 'site-1');
    const b = await rawSite(c.url, 'site-2');
    const round = await openRound(c);
    const plan = await a.nextPlan();
    await b.nextPlan();
    expect(
      await sendUpdate(
        a.socket,
        plan,
        updateFor(plan, () => 0.001),
      ),
    ).toEqual({ ok: true });
    const pending = updateFor(plan, () => 0.001);
    expect(await ask(b.socket, 'update:begin', pending.begin)).toEqual({ ok: true });
    expect(await c.next('round-closed', (m) => m.round === round)).toMatchObject({ outcome: 'aggregated' });
    expect(readAudit(stateDir).find((e) => e.event === 'update_dropped')).toMatchObject({
      siteId: 'site-2',
      nonce: pending.nonce,
      reason: 'upload unfinished when the round closed (deadline)',
    });
    a.socket.disconnect();
    b.socket.disconnect();
    await c.stop();
    // A quota smaller than one spool: every upload refused at begin, nothing written.
    const small = await coordinator(['site-1'], { siteSpoolQuotaBytes: 16 });
    const q = await rawSite(small.c.url, 'site-1');
    await openRound(small.c);
    const qplan = await q.nextPlan();
    expect(await ask(q.socket, 'update:begin', updateFor(qplan, () => 0.001).begin)).toMatchObject({
      ok: false,
      code: 'quota',
    });
    q.socket.disconnect();
  });
});

describe('files are created with their final mode', () => {
  it('every state file is 0600 and every state directory 0700', async () => {
    const { c, stateDir } = await coordinator(['site-1'], { minSites: 1, timeoutMs: 20_000 });
    const raw = await rawSite(c.url, 'site-1');
    const round = await openRound(c);
    const plan = await raw.nextPlan();
    expect(
      await sendUpdate(
        raw.socket,
        plan,
        updateFor(plan, () => 0.001),
      ),
    ).toEqual({ ok: true });
    await c.next('round-closed', (m) => m.round === round);
    raw.socket.disconnect();
    const walk = (path: string): string[] =>
      statSync(path).isDirectory() ? [path, ...readdirSync(path).flatMap((f) => walk(join(path, f)))] : [path];
    const entries = walk(stateDir);
    expect(entries.length).toBeGreaterThan(5);
    for (const entry of entries) {
      const mode = statSync(entry).mode & 0o777;
      expect(`${entry} ${mode.toString(8)}`).toBe(`${entry} ${statSync(entry).isDirectory() ? '700' : '600'}`);
    }
    expect(verifyAuditChain(stateDir).entries).toBeGreaterThan(3);
    // Keys from the development PKI: 0600 (written so, not chmod'ed after); certificates stay readable.
    const certs = await generateDevCertificates({ outDir: join(dir.path, 'mode-certs'), sites: ['site-1'] });
    for (const key of [certs.caKey, certs.serverKey, certs.sites[0].key])
      expect(`${key} ${(statSync(key).mode & 0o777).toString(8)}`).toBe(`${key} 600`);
    expect(statSync(certs.ca).mode & 0o044).not.toBe(0);
  });
});

describe('one authenticated site cannot take the model over', () => {
  it.each([
    ['after three honest rounds (enrolled with its true count)', true],
    ['joining with the claim (enrolment itself is the lie)', false],
  ])(
    'a site claiming 1e9 examples with a delta of norm 50 moves validation accuracy by < 2 points: %s',
    async (_, enrolled) => {
      const data = makeSiteData(3, 120);
      const ids = data.sites.map((s) => s.id);
      const { c, stateDir } = await coordinator(ids, { minSites: 2, timeoutMs: 30_000 });
      const honest = await Promise.all(
        data.sites.slice(0, 2).map(async (site) => siteProcess(site.id, await writeSiteFiles(dir.path, site, c.url))),
      );
      sites.push(...honest);
      await Promise.all(honest.map((p) => p.ready));
      // site-3 is honest for three rounds (it enrols with its true count), then turns; or it is away until then.
      const third = newAgent(c.url, data.sites[2]);
      if (enrolled) await third.start();
      for (let r = 1; r <= 3; r++) {
        const round = await openRound(c);
        expect(await c.next('round-closed', (m) => m.round === round)).toMatchObject({ outcome: 'aggregated' });
      }
      const before = accuracy(globalModel(stateDir), data.test);
      expect(before).toBeGreaterThan(0.6); // the federation learned something worth attacking
      await third.stop();
      const attacker = await rawSite(c.url, 'site-3');
      const round = await openRound(c);
      const plan = await attacker.nextPlan();
      // All of the delta on the class biases, pushing every prediction to class 0: norm 50 (< normBound 1000).
      const bias = plan.tensors.find((t) => t.shape.length === 1)!;
      const a = 50 / Math.sqrt(1.5);
      let offset = 0;
      for (const t of plan.tensors) {
        if (t.name === bias.name) break;
        offset += t.shape.reduce((x, y) => x * y, 1);
      }
      const evil = updateFor(
        plan,
        (i) => (i === offset ? a : i > offset && i < offset + bias.shape[0] ? -a / 2 : 0),
        1e9,
      );
      expect(await sendUpdate(attacker.socket, plan, evil)).toEqual({ ok: true });
      expect(await c.next('round-closed', (m) => m.round === round)).toMatchObject({ outcome: 'aggregated' });
      const after = accuracy(globalModel(stateDir), data.test);
      expect(Math.abs(after - before), `accuracy ${before} → ${after}`).toBeLessThan(0.02);
      // Audited: the weight was limited and the share capped, the update clipped (with its factor).
      const audit = readAudit(stateDir);
      const weights = audit.filter((e) => e.event === 'round_weights' && e.round === round)[0] as unknown as {
        sites: Record<string, { claimed: number; weight: number; limited: boolean; share: number }>;
      };
      if (enrolled) {
        expect(weights.sites['site-3']).toMatchObject({ claimed: 1e9, limited: true });
        expect(weights.sites['site-3'].weight).toBeLessThan(1000);
      } else expect(weights.sites['site-3']).toMatchObject({ claimed: 1e9, basis: 'enrolment' });
      expect(weights.sites['site-3'].share).toBeLessThanOrEqual(0.5 + 1e-12);
      const clipped = audit.find((e) => e.event === 'update_clipped' && e.round === round);
      expect(clipped).toMatchObject({ siteId: 'site-3', norm: expect.closeTo(50, 1) });
      expect(clipped?.factor as number).toBeLessThan(0.05);
      attacker.socket.disconnect();
      for (const p of honest) p.kill();
    },
  );
});

describe('bounded influence under secure aggregation', () => {
  it('the coordinator sees only the masked sum, but a claimed count above the enrolled bound is refused', async () => {
    const data = makeSiteData(2, 60);
    const ids = data.sites.map((s) => s.id);
    const { c, stateDir } = await coordinator(ids, { minSites: 2, timeoutMs: 8000, secureAggregation: true });
    let inflate = false;
    const agents = data.sites.map((site) => {
      const inner = trainerFor(site);
      return newAgent(c.url, site, {
        trainer: {
          train: async (global, plan, signal) => {
            const result = await inner.train(global, plan, signal);
            return site.id === 'site-2' && inflate ? { ...result, numExamples: 1e9 } : result;
          },
          evaluate: (global) => inner.evaluate(global),
        },
      });
    });
    for (const agent of agents) await agent.start();
    const first = await openRound(c);
    expect(await c.next('round-closed', (m) => m.round === first)).toMatchObject({ outcome: 'aggregated' });
    inflate = true;
    const second = await openRound(c);
    expect(await c.next('round-closed', (m) => m.round === second)).toMatchObject({ outcome: 'failed' });
    const refusal = readAudit(stateDir).find((e) => e.event === 'update_rejected' && e.round === second);
    expect(refusal).toMatchObject({ siteId: 'site-2', code: 'weight' });
    expect(String(refusal?.reason)).toMatch(/claims 1000000000 examples, more than the \d+ allowed/);
    for (const agent of agents) await agent.stop();
  });
});

describe('a resumed round keeps its plan', () => {
  it('after a SIGKILL, the resumed round waits for every site of the plan, with the same deadline', async () => {
    const data = makeSiteData(3, 60);
    const ids = data.sites.map((s) => s.id);
    const port = await freePort();
    const { c, configPath, stateDir } = await coordinator(ids, { minSites: 1, timeoutMs: 60_000 }, { port });
    const gates = new Map<string, () => void>();
    const held = new Map<string, Promise<void>>();
    for (const site of data.sites)
      held.set(
        site.id,
        new Promise<void>((resolve) => {
          gates.set(site.id, resolve);
        }),
      );
    const training: Promise<void>[] = [];
    const agents = data.sites.map((site) => {
      const inner = trainerFor(site);
      const agent = newAgent(c.url, site, {
        trainer: {
          train: async (global, plan, signal) => {
            await held.get(site.id);
            return inner.train(global, plan, signal);
          },
          evaluate: (global) => inner.evaluate(global),
        },
      });
      training.push(new Promise((resolve) => agent.once('training', () => resolve())));
      return agent;
    });
    for (const agent of agents) await agent.start();
    const round = await openRound(c);
    await within(Promise.all(training), 20_000, 'all sites training');
    const deadline = (await httpCall(`${c.url}/api/status`, { headers: admin }).then((r) => JSON.parse(r.body))).round
      .deadline as number;
    c.child.kill('SIGKILL');
    await c.exited;
    const second = await startCoordinatorProcess(configPath);
    coordinators.push(second);
    const resumed = JSON.parse((await httpCall(`${second.url}/api/status`, { headers: admin })).body) as {
      round: { number: number; open: boolean; deadline: number; participants: number };
    };
    expect(resumed.round).toMatchObject({ number: round, open: true, deadline, participants: 3 });
    // The first site to finish no longer closes the round (it did: quorum 1, "everyone" = those back so far).
    gates.get('site-1')!();
    await second.next('update-accepted', (m) => m.siteId === 'site-1');
    await sleep(500);
    const waiting = JSON.parse((await httpCall(`${second.url}/api/status`, { headers: admin })).body) as {
      round: { open: boolean; accepted: number };
    };
    expect(waiting.round).toMatchObject({ open: true, accepted: 1 });
    gates.get('site-2')!();
    gates.get('site-3')!();
    const closed = await second.next('round-closed', (m) => m.round === round);
    expect(closed).toMatchObject({ outcome: 'aggregated' });
    const state = JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8')) as {
      history: { round: number; sites: string[] }[];
    };
    expect(state.history.find((h) => h.round === round)?.sites.sort()).toEqual(ids);
    for (const agent of agents) await agent.stop();
  });
});

describe('site processes', () => {
  it('secure aggregation with --rounds 1: every site stays for the unmasking, then exits 0', async () => {
    const data = makeSiteData(3, 60);
    const ids = data.sites.map((s) => s.id);
    const { c } = await coordinator(ids, { minSites: 3, timeoutMs: 60_000, secureAggregation: true });
    const procs = await Promise.all(
      data.sites.map(async (site) => siteProcess(site.id, await writeSiteFiles(dir.path, site, c.url), { rounds: 1 })),
    );
    sites.push(...procs);
    await Promise.all(procs.map((p) => p.ready));
    const round = await openRound(c);
    const closed = await c.next('round-closed', (m) => m.round === round, 90_000);
    expect(closed.outcome, c.stderr()).toBe('aggregated');
    const exits = await within(Promise.all(procs.map(exitOf)), 20_000, 'sites exit after their round');
    expect(exits.map((e) => e.code)).toEqual([0, 0, 0]);
  });

  it('a site started while the coordinator is down retries with back-off and joins; a bad token exits at once, saying so', async () => {
    const data = makeSiteData(1, 60);
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const retry = { initialDelayMs: 100, maxDelayMs: 400 };
    const early = siteProcess('site-1', await writeSiteFiles(dir.path, data.sites[0], url, { retry }));
    sites.push(early);
    await sleep(1500); // several refused connections meanwhile
    expect(early.child.exitCode).toBeNull();
    const { c } = await coordinator(['site-1'], { minSites: 1 }, { port });
    await within(early.ready, 30_000, 'site joins once the coordinator is up');
    expect(early.stderr()).toMatch(/cannot reach .*retrying/);
    const round = await openRound(c);
    expect(await c.next('round-closed', (m) => m.round === round)).toMatchObject({ outcome: 'aggregated' });
    early.kill();
    const badDir = join(dir.path, 'bad');
    mkdirSync(badDir, { recursive: true });
    const bad = siteProcess(
      'site-1',
      await writeSiteFiles(badDir, data.sites[0], url, { token: 'not-the-token-of-site-1', retry }),
    );
    sites.push(bad);
    const started = Date.now();
    const exit = await within(exitOf(bad), 20_000, 'bad token exit');
    expect(exit.code).toBe(3);
    expect(bad.stderr()).toMatch(/coordinator refused site-1: bad credentials/);
    expect(Date.now() - started).toBeLessThan(15_000);
  });
});

describe('a flood of refused attempts', () => {
  it('is rate-limited and summarised per source; the log rotates with its chain; a huge log does not stop a start', async () => {
    const { c, stateDir, configPath } = await coordinator(
      ['site-1'],
      { minSites: 1, timeoutMs: 20_000 },
      { audit: { refusalIntervalMs: 15_000, maxRefusalsPerInterval: 20, maxBytes: 4096, tarpitMs: 1500 } },
    );
    let attempts = 0;
    const started = Date.now();
    // Bad site tokens, bad admin tokens, bad logins, from one client, for about 2 s.
    while (Date.now() - started < 2000) {
      attempts += 3;
      await expect(rawSite(c.url, 'site-1', { token: 'wrong-token-wrong-token' })).rejects.toThrow(
        /bad credentials|too many refused/,
      );
      expect(
        (await httpCall(`${c.url}/api/rounds`, { method: 'POST', headers: { authorization: 'Bearer x' } })).status,
      ).toBeGreaterThanOrEqual(401);
      const login = await httpCall(`${c.url}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'token=guess-guess-guess-guess',
      });
      expect([401, 429]).toContain(login.status);
    }
    // Past 20 refusals in the interval each refusal waits the tarpit (1.5 s): the flood is slowed down...
    expect(attempts).toBeGreaterThan(20);
    expect(attempts).toBeLessThan(60);
    const slow = Date.now();
    await expect(rawSite(c.url, 'site-1', { token: 'wrong-token-wrong-token' })).rejects.toThrow(/bad credentials/);
    attempts++;
    expect(Date.now() - slow).toBeGreaterThanOrEqual(1400);
    const slowHttp = await httpCall(`${c.url}/api/rounds`, { method: 'POST', headers: { authorization: 'Bearer y' } });
    attempts++;
    expect(slowHttp.status).toBe(429);
    // ...while the right token from the same address still gets in at once.
    const fast = Date.now();
    const site = await rawSite(c.url, 'site-1');
    expect(Date.now() - fast).toBeLessThan(1000);
    for (let r = 0; r < 4; r++) {
      const round = await openRound(c);
      const plan = await site.nextPlan();
      expect(
        await sendUpdate(
          site.socket,
          plan,
          updateFor(plan, () => 0.001),
        ),
      ).toEqual({ ok: true });
      await c.next('round-closed', (m) => m.round === round);
    }
    // The dashboard's audit view still shows real events.
    const snapshot = JSON.parse((await httpCall(`${c.url}/api/status`, { headers: admin })).body) as {
      audit: { event: string }[];
    };
    expect(snapshot.audit.map((e) => e.event)).toEqual(
      expect.arrayContaining(['coordinator_started', 'update_accepted', 'round_aggregated']),
    );
    site.socket.disconnect();
    await c.stop(); // flushes the last interval's summaries
    const audit = readAudit(stateDir);
    const refusalEvents = new Set(['auth_refused', 'admin_refused', 'login_refused', 'http_refused']);
    const full = audit.filter((e) => refusalEvents.has(e.event));
    const summaries = audit.filter((e) => e.event === 'refusals_summarised');
    // Every refused attempt is counted, in a handful of lines.
    const counted = full.length + summaries.reduce((n, e) => n + (e.count as number), 0);
    expect(counted).toBe(attempts);
    expect(full.length + summaries.length).toBeLessThanOrEqual(12);
    expect(summaries.every((e) => e.source === '127.0.0.1')).toBe(true);
    // Rotation: several files, one unbroken chain.
    const chain = verifyAuditChain(stateDir);
    expect(chain.files).toBeGreaterThan(1);
    expect(chain.entries).toBe(audit.length);
    // A 600 MB audit log (a sparse hole, then the real entries): the coordinator still starts, at once.
    const current = join(stateDir, 'audit.jsonl');
    const tail = readFileSync(current);
    const fd = openSync(current, 'w');
    ftruncateSync(fd, 600 * 1024 * 1024);
    writeSync(fd, tail, 0, tail.length, 600 * 1024 * 1024);
    closeSync(fd);
    const t0 = Date.now();
    const again = await startCoordinatorProcess(configPath, 30_000);
    coordinators.push(again);
    expect(Date.now() - t0).toBeLessThan(20_000);
    const lastSeq = audit[audit.length - 1].seq;
    // The huge file was rotated away at the first append; the new current file goes on with the chain's seq.
    const restarted = [...readLines(current)].map((line) => JSON.parse(line) as { event: string; seq: number });
    expect(restarted[0]).toMatchObject({ event: 'coordinator_started', seq: lastSeq + 1 });
    await again.stop();
  });
});

describe('the dashboard and the status API need a credential', () => {
  it('login page, HttpOnly/Secure/SameSite=Strict cookie, viewers see no addresses, nonces or keys', async () => {
    const certs = await generateDevCertificates({ outDir: join(dir.path, 'dash-certs') });
    const ca = readFileSync(certs.ca, 'utf8');
    const viewerToken = 'viewer-token-0123456789abcdef';
    const { c, stateDir } = await coordinator(
      ['site-1'],
      { minSites: 1, timeoutMs: 20_000 },
      { tls: { cert: certs.serverCert, key: certs.serverKey }, viewerToken },
    );
    expect(c.url).toMatch(/^https:/);
    const get = (path: string, headers: Record<string, string> = {}) => httpCall(`${c.url}${path}`, { headers, ca });
    expect(await get('/')).toMatchObject({ status: 303, headers: { location: '/login' } });
    expect((await get('/login')).body).toMatch(/<form method="post" action="\/login">/);
    expect((await get('/api/status')).status).toBe(401);
    expect((await get('/api/status', { authorization: 'Bearer wrong-wrong-wrong-wrong' })).status).toBe(401);
    // A round, so the audit holds an address-free but nonce- and hash-bearing entry.
    const site = await rawSite(c.url, 'site-1', { ca });
    const round = await openRound(c);
    const plan = await site.nextPlan();
    const update = updateFor(plan, () => 0.001);
    expect(await sendUpdate(site.socket, plan, update)).toEqual({ ok: true });
    await c.next('round-closed', (m) => m.round === round);
    const adminView = (await get('/api/status', admin)).body;
    expect(adminView).toContain(update.nonce);
    const viewerView = (await get('/api/status', { authorization: `Bearer ${viewerToken}` })).body;
    expect(JSON.parse(viewerView).round.number).toBe(round);
    for (const secret of [update.nonce, '127.0.0.1', '"address"', '"source"', '"publicKey"', '"sha256"'])
      expect(viewerView).not.toContain(secret);
    const post = (body: string) =>
      httpCall(`${c.url}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body,
        ca,
      });
    expect((await post('token=not-a-token-at-all')).status).toBe(401);
    const login = await post(`token=${viewerToken}`);
    expect(login.status).toBe(303);
    const cookie = String((login.headers['set-cookie'] as string[])[0]);
    expect(cookie).toMatch(/^fedcxr_session=[0-9a-f]{64}; /);
    for (const flag of ['HttpOnly', 'SameSite=Strict', 'Secure', 'Path=/']) expect(cookie).toContain(flag);
    const session = cookie.split(';')[0];
    expect((await get('/', { cookie: session })).status).toBe(200);
    const viaCookie = (await get('/api/status', { cookie: session })).body;
    expect(viaCookie).not.toContain(update.nonce);
    // A session cookie is not the admin token: it cannot start a round.
    expect((await httpCall(`${c.url}/api/rounds`, { method: 'POST', headers: { cookie: session }, ca })).status).toBe(
      401,
    );
    // The live dashboard socket: refused without a session, redacted snapshots with a viewer's.
    const refused = io(`${c.url}/dashboard`, { transports: ['websocket'], ca, reconnection: false });
    await expect(
      within(
        new Promise<void>((resolve, reject) => {
          refused.once('connect', () => resolve());
          refused.once('connect_error', reject);
        }),
        5000,
        'dashboard refusal',
      ),
    ).rejects.toThrow(/sign in/);
    refused.close();
    const live = io(`${c.url}/dashboard`, {
      transports: ['websocket'],
      ca,
      reconnection: false,
      extraHeaders: { cookie: session },
    });
    const snapshot = await within(
      new Promise<unknown>((resolve) => live.once('snapshot', resolve)),
      5000,
      'dashboard snapshot',
    );
    live.close();
    expect(JSON.stringify(snapshot)).not.toContain(update.nonce);
    expect(readAudit(stateDir).some((e) => e.event === 'dashboard_login' && e.role === 'viewer')).toBe(true);
    site.socket.disconnect();
  });
});

describe('TLS failures are audited and named', () => {
  it('a client certificate from another CA: the site exits at once naming the cause; the handshake failures are audited', async () => {
    const certs = await generateDevCertificates({ outDir: join(dir.path, 'mtls'), sites: ['site-1'] });
    const rogue = await generateDevCertificates({ outDir: join(dir.path, 'rogue'), sites: ['site-1'] });
    const data = makeSiteData(1, 60);
    const { c, stateDir, port } = await coordinator(
      ['site-1'],
      { minSites: 1 },
      {
        tls: { cert: certs.serverCert, key: certs.serverKey, clientCa: certs.ca },
        audit: { refusalIntervalMs: 100 },
      },
    );
    const rogueSite = rogue.sites[0];
    const siteDir = join(dir.path, 'mtls-site');
    mkdirSync(siteDir, { recursive: true });
    const untrusted = siteProcess(
      'site-1',
      await writeSiteFiles(siteDir, data.sites[0], c.url, { ca: certs.ca, cert: rogueSite.cert, key: rogueSite.key }),
    );
    sites.push(untrusted);
    const t0 = Date.now();
    expect((await within(exitOf(untrusted), 15_000, 'untrusted certificate exit')).code).toBe(3);
    expect(Date.now() - t0).toBeLessThan(10_000); // not socket.io's 20 s "timeout"
    expect(untrusted.stderr()).toMatch(/certificate not trusted by the coordinator/);
    await sleep(150);
    // Plain TCP on the TLS port: a handshake failure, audited with its source and reason.
    expect(await rawHttp(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')).toBe('closed');
    await sleep(150);
    // The site not trusting the coordinator's certificate says so, at once.
    const noCa = siteProcess('site-1', await writeSiteFiles(siteDir, data.sites[0], c.url));
    sites.push(noCa);
    expect((await within(exitOf(noCa), 15_000, 'untrusted coordinator exit')).code).toBe(3);
    expect(noCa.stderr()).toMatch(/coordinator's certificate is not trusted by this site/);
    await sleep(150);
    const audit = readAudit(stateDir);
    expect(audit.find((e) => e.event === 'auth_refused')).toMatchObject({
      source: '127.0.0.1',
      siteId: 'site-1',
      reason: expect.stringMatching(/client certificate not trusted by the coordinator/),
    });
    expect(audit.filter((e) => e.event === 'tls_refused').length).toBeGreaterThanOrEqual(1);
    expect(audit.find((e) => e.event === 'tls_refused')).toMatchObject({
      source: '127.0.0.1',
      reason: expect.any(String),
    });
    expect(c.alive()).toBe(true);
  });
});
