/**
 * A bounded, seeded fuzzer of a coordinator PROCESS on loopback (127.0.0.1): raw HTTP requests (request
 * line, headers, bodies; generated from a grammar, then byte-mutated), raw engine.io/socket.io frames over a
 * WebSocket (text and binary, attachments with missing/extra/bad placeholders), and socket.io events from an
 * authenticated site (random and near-valid payloads). After every batch a health probe (GET /api/status)
 * must answer within a few seconds: a probe that does not is a hang. The process exiting is an exit. At
 * the end a well-formed update must still be accepted. Run by `bench/federated/fuzz.ts` (≥ 10,000 inputs)
 * and by fuzz.test.ts (a smaller count in CI). Same seed, same inputs.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { Rng } from '@fedcxr/core';
import { createTabularModel, encodeModel, PROTOCOL_VERSION, type RoundPlan } from '@fedcxr/federated';
import {
  ask,
  httpCall,
  rawSite,
  sendUpdate,
  sleep,
  startCoordinatorProcess,
  updateFor,
  within,
  writeConfig,
} from './attack-harness.js';
import { ADMIN_TOKEN, coordinatorConfig, MODEL, siteToken, tempDir } from './testing.js';

export interface FuzzOptions {
  inputs: number;
  seed: number;
  /** Inputs between health probes. */
  batch?: number;
  log?: (message: string) => void;
}

export interface FuzzReport {
  seed: number;
  inputs: number;
  byKind: Record<string, number>;
  outcomes: Record<string, number>;
  exits: number;
  hangs: number;
  probes: number;
  finalUpdateAccepted: boolean;
  seconds: number;
  coordinatorPeakRssMiB: number | null;
}

/** core's seeded generator (mulberry32) with the draws a fuzzer needs. */
class Random extends Rng {
  constructor(seed: number) {
    super(seed >>> 0 || 1);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
  ascii(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(32 + this.int(95));
    return s;
  }
  hex(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += '0123456789abcdef'[this.int(16)];
    return s;
  }
}

const KEYS = [
  'round',
  'nonce',
  'index',
  'data',
  'modelHash',
  'baseModelHash',
  'tensors',
  'numExamples',
  'byteLength',
  'sha256',
  'metrics',
  'kind',
  'shares',
  'to',
  'from',
  'ciphertext',
  'publicKey',
  'shareKey',
  'state',
  'evaluation',
  'protocol',
  'siteId',
  'token',
  'role',
  'name',
  'shape',
  'encoding',
  'scale',
  '__proto__',
  'constructor',
  'toString',
];
const EVENTS = [
  'update:begin',
  'update:chunk',
  'update:end',
  'model:chunk',
  'eval:report',
  'secagg:key',
  'secagg:shares',
  'site:status',
  'disconnect',
  'connect',
  'error',
  'newListener',
  'x',
];

function randomValue(r: Random, depth = 0): unknown {
  const k = r.int(depth > 3 ? 6 : 9);
  switch (k) {
    case 0:
      return null;
    case 1:
      return r.chance(0.5);
    case 2:
      return r.pick([0, -1, 1, 2 ** 31, 2 ** 53, -(2 ** 63), 1e308, -0, 0.5, 1e9, 1e-300, r.int(1e6)]);
    case 3:
      return r.pick([r.ascii(r.int(40)), r.hex(32), r.hex(64), '', 'é漢🙂\u0000\ud800', r.ascii(r.int(5000))]);
    case 4:
      return r.hex(r.pick([32, 64, 320]));
    case 5:
      return r.int(10);
    case 6:
      return Array.from({ length: r.int(5) }, () => randomValue(r, depth + 1));
    default: {
      const out: Record<string, unknown> = {};
      for (let i = r.int(6); i > 0; i--) out[r.pick(KEYS)] = randomValue(r, depth + 1);
      return out;
    }
  }
}

/** A near-valid payload: a valid one with one field replaced (or removed, or added). */
function mutate(r: Random, valid: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = structuredClone(valid);
  const keys = Object.keys(out);
  const key = r.chance(0.8) && keys.length > 0 ? r.pick(keys) : r.pick(KEYS);
  if (r.chance(0.2)) delete out[key];
  else out[key] = randomValue(r);
  return out;
}

function httpRequest(r: Random, port: number): Buffer {
  const method = r.pick(['GET', 'GET', 'POST', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'HEAD', 'CONNECT', 'G\u0000T', '']);
  const target = r.pick([
    '/',
    '/dashboard',
    '/login',
    '/logout',
    '/api/status',
    '/api/rounds',
    '/api/evaluate',
    '/api/x',
    '/socket.io/?EIO=4&transport=polling',
    '/socket.io/?EIO=4&transport=websocket',
    '/socket.io/socket.io.min.js',
    'http://[::1',
    'http://[::1]:1/',
    `http://127.0.0.1:${port}/api/status`,
    '//[',
    '*',
    '%',
    '/%00',
    '/%zz',
    '/..%2f..%2fetc/passwd',
    `/${'a'.repeat(r.int(20_000))}`,
    `/${r.ascii(r.int(30))}`,
    '/?é',
  ]);
  const version = r.pick(['HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/9.9', 'http/1.1', '', 'HTTP/1.1 x']);
  const headers: string[] = [];
  if (r.chance(0.8)) headers.push(`Host: ${r.pick(['127.0.0.1', 'x', '', r.ascii(20)])}`);
  const body = r.chance(0.5)
    ? Buffer.from(
        r.pick([`token=${r.ascii(r.int(40))}`, `token=${ADMIN_TOKEN}`, r.ascii(r.int(3000)), '0\r\n\r\n', '']),
      )
    : r.bytes(r.int(2000));
  for (let i = r.int(6); i > 0; i--)
    headers.push(
      r.pick([
        `Content-Length: ${r.pick([body.length, 0, -1, 1e12, 'abc', body.length + 10, 4096, 5000])}`,
        'Transfer-Encoding: chunked',
        `Cookie: fedcxr_session=${r.pick([r.hex(64), r.ascii(30), ''])}`,
        `Cookie: ${r.ascii(r.int(200))}`,
        `Authorization: Bearer ${r.pick([r.ascii(30), ADMIN_TOKEN, ''])}`,
        `Authorization: ${r.ascii(r.int(50))}`,
        'Content-Type: application/x-www-form-urlencoded',
        'Connection: Upgrade',
        'Upgrade: websocket',
        `Sec-WebSocket-Key: ${r.pick([r.ascii(24), 'dGhlIHNhbXBsZSBub25jZQ=='])}`,
        'Sec-WebSocket-Version: 13',
        `${r.ascii(r.int(20))}: ${r.ascii(r.int(100))}`,
        `X-Long: ${'b'.repeat(r.int(20_000))}`,
        'Expect: 100-continue',
      ]),
    );
  let bytes = Buffer.concat([Buffer.from(`${method} ${target} ${version}\r\n${headers.join('\r\n')}\r\n\r\n`), body]);
  if (r.chance(0.2)) {
    bytes = Buffer.from(bytes);
    for (let i = 1 + r.int(8); i > 0; i--) bytes[r.int(bytes.length)] = r.int(256);
  }
  if (r.chance(0.1)) bytes = bytes.subarray(0, r.int(bytes.length));
  return bytes;
}

/** Sends raw bytes; resolves with the first status line, `closed`, or `pending` (no answer in `ms`). */
function sendRaw(port: number, bytes: Buffer, ms: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    let data = '';
    let done = false;
    const finish = (outcome: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish('pending'), ms);
    socket.once('connect', () => socket.write(bytes));
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('latin1');
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(data);
      if (status) finish(`http ${status[1][0]}xx`);
      else if (data.length > 64) finish('other');
    });
    socket.on('error', () => finish('error'));
    socket.on('close', () => finish(data ? 'other' : 'closed'));
  });
}

function engineFrames(r: Random, plan: RoundPlan | undefined, siteId: string): (string | Uint8Array)[] {
  const frames: (string | Uint8Array)[] = [];
  const auth = { protocol: PROTOCOL_VERSION, role: 'site', siteId, token: siteToken(siteId) };
  if (r.chance(0.7)) frames.push(`40${JSON.stringify(r.chance(0.7) ? auth : randomValue(r))}`);
  if (r.chance(0.1)) frames.push(`40/dashboard,${JSON.stringify(randomValue(r))}`);
  for (let i = 1 + r.int(12); i > 0; i--) {
    const event = r.pick(EVENTS);
    const payload =
      plan && r.chance(0.5) ? mutate(r, updateFor(plan, () => 0.001).begin as Record<string, unknown>) : randomValue(r);
    const ackId = r.chance(0.5) ? String(r.int(1000)) : '';
    switch (r.int(7)) {
      case 0:
      case 1:
        frames.push(`42${ackId}${JSON.stringify([event, payload])}`);
        break;
      case 2: {
        // A binary event: placeholders, with the right, too few or too many attachments.
        const n = r.int(3);
        const placeholder = { _placeholder: true, num: r.pick([0, 1, -1, 99, 'x']) };
        frames.push(
          `45${n}-${ackId}${JSON.stringify([event, { round: plan?.round ?? 1, nonce: r.hex(32), index: r.int(3), data: placeholder }])}`,
        );
        for (let k = r.int(4); k > 0; k--) frames.push(r.bytes(r.int(5000)));
        break;
      }
      case 3:
        frames.push(r.pick(['2', '3', '4', '6', '1', '5', '2probe', '49999', '41', '4{', '42[', '42["x"', '43']));
        break;
      case 4:
        frames.push(r.ascii(r.int(200)));
        break;
      case 5:
        frames.push(r.bytes(r.int(3000)));
        break;
      default:
        frames.push(`42${ackId}${JSON.stringify([event, randomValue(r), randomValue(r)])}`);
    }
  }
  return frames;
}

/** One raw WebSocket session: sends the frames, then closes; resolves with how it ended. */
async function engineSession(url: string, frames: (string | Uint8Array)[]): Promise<string> {
  return within(
    new Promise<string>((resolve) => {
      const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`);
      let settled = false;
      const end = (how: string) => {
        if (settled) return;
        settled = true;
        try {
          ws.close();
        } catch {}
        resolve(how);
      };
      ws.binaryType = 'arraybuffer';
      ws.onerror = () => end('ws error');
      ws.onclose = () => end('ws closed by server');
      ws.onopen = () => {
        for (const frame of frames) {
          if (ws.readyState !== WebSocket.OPEN) break;
          ws.send(frame);
        }
        setTimeout(() => end('ws sent'), 50);
      };
    }),
    5000,
    'websocket session',
  ).catch(() => 'ws pending');
}

function peakRssMiB(pid: number | undefined): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
    return hwm ? Math.round(Number(hwm[1]) / 1024) : null;
  } catch {
    return null;
  }
}

export async function fuzzCoordinator(options: FuzzOptions): Promise<FuzzReport> {
  const started = Date.now();
  const log = options.log ?? (() => {});
  const r = new Random(options.seed);
  const dir = tempDir('fedcxr-fuzz-');
  const modelPath = join(dir.path, 'initial.fcxw');
  writeFileSync(modelPath, encodeModel(createTabularModel(MODEL, 1)));
  const configPath = writeConfig(join(dir.path, 'coordinator.json'), {
    ...coordinatorConfig(join(dir.path, 'state'), ['site-1', 'site-2', 'site-3'], { minSites: 3, timeoutMs: 600_000 }),
    initialModel: modelPath,
    // Every input reaches the handlers (no source is rate-limited); refusals are still summarised.
    audit: { refusalIntervalMs: 5000, maxRefusalsPerInterval: 1_000_000_000 },
  });
  const coordinator = await startCoordinatorProcess(configPath);
  const port = Number(new URL(coordinator.url).port);
  const report: FuzzReport = {
    seed: options.seed,
    inputs: 0,
    byKind: {},
    outcomes: {},
    exits: 0,
    hangs: 0,
    probes: 0,
    finalUpdateAccepted: false,
    seconds: 0,
    coordinatorPeakRssMiB: null,
  };
  const count = (kind: string, outcome: string, n = 1) => {
    report.inputs += n;
    report.byKind[kind] = (report.byKind[kind] ?? 0) + n;
    report.outcomes[`${kind}: ${outcome}`] = (report.outcomes[`${kind}: ${outcome}`] ?? 0) + n;
  };
  const probe = async () => {
    report.probes++;
    try {
      const status = await httpCall(`${coordinator.url}/api/status`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      if (status.status !== 200) throw new Error(`status ${status.status}`);
    } catch (error) {
      if (!coordinator.alive()) return;
      report.hangs++;
      log(`probe failed: ${(error as Error).message}`);
    }
  };
  try {
    coordinator.send({ type: 'start-round' });
    await coordinator.next('round-opened');
    const site = await rawSite(coordinator.url, 'site-1');
    const plan = await site.nextPlan();
    const batch = options.batch ?? 100;
    for (let b = 0; report.inputs < options.inputs && coordinator.alive(); b++) {
      const target = Math.min(options.inputs, report.inputs + batch);
      const kind = b % 3;
      if (kind === 0) {
        // HTTP: 16 connections at a time.
        while (report.inputs < target) {
          const n = Math.min(16, target - report.inputs);
          const outcomes = await Promise.all(Array.from({ length: n }, () => sendRaw(port, httpRequest(r, port), 500)));
          for (const outcome of outcomes) count('http', outcome);
        }
      } else if (kind === 1) {
        while (report.inputs < target) {
          const frames = engineFrames(r, plan, r.pick(['site-2', 'site-3', 'intruder']));
          const outcome = await engineSession(coordinator.url, frames);
          count('engine.io/socket.io frames', outcome, frames.length);
        }
      } else {
        // Events from the authenticated site, with an ack (answered, refused) or without one.
        if (!site.socket.connected) site.socket.connect();
        while (report.inputs < target) {
          const event = r.pick(EVENTS.filter((e) => !['disconnect', 'connect', 'error', 'newListener'].includes(e)));
          const payload = r.chance(0.6)
            ? mutate(r, updateFor(plan, () => 0.001).begin as Record<string, unknown>)
            : randomValue(r);
          // Events the coordinator does not acknowledge (status reports, unknown names) go without an ack.
          if (r.chance(0.2) || event === 'site:status' || event === 'x') {
            site.socket.emit(event, payload);
            count('site events', 'no ack');
            continue;
          }
          try {
            const reply = await ask(site.socket, event, payload, 3000);
            count('site events', reply?.ok === true ? 'ok' : 'refused');
          } catch {
            count('site events', site.socket.connected ? 'no answer' : 'disconnected');
            if (!site.socket.connected) {
              site.socket.connect();
              await sleep(100);
            }
          }
        }
      }
      await probe();
      if (report.probes % 10 === 0) log(`${report.inputs} inputs, ${report.hangs} hangs`);
    }
    if (!coordinator.alive()) report.exits = 1;
    else {
      // Still working: a well-formed update from a fresh connection is accepted.
      site.socket.disconnect();
      const good = await rawSite(coordinator.url, 'site-2');
      const goodPlan = good.plans[0] ?? (await good.nextPlan());
      report.finalUpdateAccepted = (
        await sendUpdate(
          good.socket,
          goodPlan,
          updateFor(goodPlan, () => 0.001),
        )
      ).ok;
      good.socket.disconnect();
    }
    report.coordinatorPeakRssMiB = peakRssMiB(coordinator.child.pid);
  } finally {
    if (!coordinator.alive()) report.exits = 1;
    await coordinator.stop();
    dir.remove();
  }
  report.seconds = (Date.now() - started) / 1000;
  return report;
}
