/**
 * Real processes for the attack suite (attack.test.ts), on loopback only: a coordinator process
 * (coordinator-process.ts, IPC for its events), site processes (the federated package's site-process),
 * hand-driven site sockets that send whatever a test wants, raw TCP/TLS clients, and audit readers.
 * Every wait is bounded: a helper that does not get what it waits for rejects after its timeout.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer, connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import type { NamedTensors } from '@fedcxr/core';
import {
  decodeModel,
  encodeUpdate,
  evaluateTabular,
  type LabelledRows,
  PROTOCOL_VERSION,
  type RoundPlan,
  type SiteConfigInput,
  type SiteProcess,
  sha256Hex,
  spawnSiteProcess,
  writeSiteData,
} from '@fedcxr/federated';
import { io, type Socket } from 'socket.io-client';
import { type AuditEntry, readLines, rotatedFiles } from './audit.js';
import { MODEL, type SiteFixture, siteToken } from './testing.js';

export type Message = { type: string; [key: string]: unknown };

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Rejects after `ms` with `what` unless `promise` settles first. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]);
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface CoordinatorProcess {
  child: ChildProcess;
  url: string;
  stderr(): string;
  next(type: string, match?: (m: Message) => boolean, timeoutMs?: number): Promise<Message>;
  send(message: Message): void;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  alive(): boolean;
  stop(): Promise<void>;
}

const here = import.meta.url;
const tsExecArgv = [
  '--experimental-transform-types',
  '--no-warnings',
  '--import',
  fileURLToPath(new URL('../../../packages/federated/src/ts-source-register.mjs', here)),
];

/** Starts `coordinator-process <config.json>` and resolves once it listens. */
export async function startCoordinatorProcess(configPath: string, timeoutMs = 60_000): Promise<CoordinatorProcess> {
  const child = fork(fileURLToPath(new URL('./coordinator-process.ts', here)), [configPath], {
    execArgv: tsExecArgv,
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-50_000);
    if (process.env.FED_DEBUG) process.stderr.write(`[coordinator] ${chunk}`);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const seen: Message[] = [];
  const waiters: { type: string; match?: (m: Message) => boolean; resolve: (m: Message) => void }[] = [];
  child.on('message', (m: Message) => {
    const i = waiters.findIndex((w) => w.type === m.type && (!w.match || w.match(m)));
    if (i >= 0) waiters.splice(i, 1)[0].resolve(m);
    else seen.push(m);
  });
  const next = (type: string, match?: (m: Message) => boolean, ms = 60_000) => {
    const i = seen.findIndex((m) => m.type === type && (!match || match(m)));
    if (i >= 0) return Promise.resolve(seen.splice(i, 1)[0]);
    return within(
      new Promise<Message>((resolve) => waiters.push({ type, match, resolve })),
      ms,
      `coordinator message ${type}\n${stderr}`,
    );
  };
  const alive = () => child.exitCode === null && child.signalCode === null;
  const listening = await within(
    Promise.race([
      next('listening', undefined, timeoutMs),
      exited.then(({ code }) => {
        throw new Error(`coordinator exited with ${code} before listening:\n${stderr}`);
      }),
    ]),
    timeoutMs,
    'coordinator start',
  );
  return {
    child,
    url: listening.url as string,
    stderr: () => stderr,
    next,
    send: (message) => child.send(message),
    exited,
    alive,
    stop: async () => {
      if (!alive()) return;
      child.kill('SIGTERM');
      await within(exited, 10_000, 'coordinator stop').catch(() => child.kill('SIGKILL'));
    },
  };
}

/** Writes a coordinator config file (JSON). */
export function writeConfig(path: string, config: Record<string, unknown>): string {
  writeFileSync(path, JSON.stringify(config));
  return path;
}

/** Writes a site's data and config file; returns the config path. */
export async function writeSiteFiles(
  dir: string,
  site: SiteFixture,
  url: string,
  extra: Partial<SiteConfigInput> = {},
): Promise<string> {
  await writeSiteData(join(dir, `${site.id}.data.json`), site.train, site.validation, {
    features: MODEL.features,
    classes: MODEL.classes,
  });
  const config: SiteConfigInput = {
    siteId: site.id,
    token: siteToken(site.id),
    coordinator: url,
    trainer: { kind: 'tabular', data: `${site.id}.data.json`, learningRate: 0.2, batchSize: 16 },
    ...extra,
  };
  const path = join(dir, `${site.id}.site.json`);
  writeFileSync(path, JSON.stringify(config));
  return path;
}

export function siteProcess(id: string, configPath: string, options: { rounds?: number } = {}): SiteProcess {
  const p = spawnSiteProcess(id, configPath, { readyTimeoutMs: 60_000, ...options });
  if (process.env.FED_DEBUG) p.child.stderr?.on('data', (c: Buffer) => process.stderr.write(`[${id}] ${c}`));
  return p;
}

export function exitOf(p: SiteProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (p.child.exitCode !== null || p.child.signalCode !== null)
    return Promise.resolve({ code: p.child.exitCode, signal: p.child.signalCode });
  return new Promise((resolve) => p.child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** The audit log, every rotated file included, oldest first. */
export function readAudit(stateDir: string): AuditEntry[] {
  const current = join(stateDir, 'audit.jsonl');
  const out: AuditEntry[] = [];
  for (const file of [...rotatedFiles(current), current]) {
    try {
      for (const line of readLines(file)) out.push(JSON.parse(line) as AuditEntry);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return out;
}

/** A hand-driven site connection (bypasses the agent's own schema checks). */
export async function rawSite(
  url: string,
  siteId: string,
  options: { token?: string; ca?: string; cert?: string; key?: string } = {},
): Promise<{ socket: Socket; plans: RoundPlan[]; nextPlan(timeoutMs?: number): Promise<RoundPlan> }> {
  const socket = io(url, {
    transports: ['websocket'],
    auth: { protocol: PROTOCOL_VERSION, role: 'site', siteId, token: options.token ?? siteToken(siteId) },
    reconnection: false,
    ...(options.ca ? { ca: options.ca } : {}),
    ...(options.cert && options.key ? { cert: options.cert, key: options.key } : {}),
  });
  const plans: RoundPlan[] = [];
  const waiters: ((plan: RoundPlan) => void)[] = [];
  socket.on('round:plan', (plan: RoundPlan) => {
    const waiter = waiters.shift();
    if (waiter) waiter(plan);
    else plans.push(plan);
  });
  await within(
    new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', reject);
    }),
    10_000,
    `raw site ${siteId} connect`,
  );
  return {
    socket,
    plans,
    nextPlan: (ms = 20_000) => {
      const plan = plans.shift();
      if (plan) return Promise.resolve(plan);
      return within(new Promise<RoundPlan>((resolve) => waiters.push(resolve)), ms, `round plan for ${siteId}`);
    },
  };
}

export const ask = (socket: Socket, event: string, payload: unknown, ms = 5000) =>
  socket.timeout(ms).emitWithAck(event, payload) as Promise<{ ok: boolean; code?: string; error?: string }>;

/** A well-formed update of `plan`'s tensors with values `fill(i)` (flat, plan order). */
export function updateFor(
  plan: RoundPlan,
  fill: (i: number, tensor: string) => number,
  numExamples = 10,
): { nonce: string; bytes: Uint8Array; begin: Record<string, unknown> } {
  const delta: NamedTensors = new Map();
  let k = 0;
  for (const spec of plan.tensors) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    delta.set(spec.name, {
      dtype: 'float32',
      shape: spec.shape,
      data: Float32Array.from({ length: n }, () => fill(k++, spec.name)),
    });
  }
  const encoded = encodeUpdate(delta, plan.tensors, 'float32');
  const nonce = randomBytes(16).toString('hex');
  return {
    nonce,
    bytes: encoded.bytes,
    begin: {
      round: plan.round,
      nonce,
      baseModelHash: plan.modelHash,
      kind: 'delta',
      numExamples,
      metrics: { loss: 1 },
      tensors: encoded.tensors,
      byteLength: encoded.bytes.length,
      sha256: sha256Hex(encoded.bytes),
    },
  };
}

/** Sends a whole update (begin, chunks, end); returns the first refusal or the final ack. */
export async function sendUpdate(
  socket: Socket,
  plan: RoundPlan,
  update: ReturnType<typeof updateFor>,
): Promise<{ ok: boolean; code?: string; error?: string }> {
  const begin = await ask(socket, 'update:begin', update.begin);
  if (!begin.ok) return begin;
  return sendUpdateBody(socket, plan, update);
}

/** The chunks and end of an update whose begin was already acknowledged. */
export async function sendUpdateBody(
  socket: Socket,
  plan: RoundPlan,
  update: ReturnType<typeof updateFor>,
): Promise<{ ok: boolean; code?: string; error?: string }> {
  for (let index = 0, offset = 0; offset < update.bytes.length; index++, offset += plan.chunkBytes) {
    const chunk = await ask(socket, 'update:chunk', {
      round: plan.round,
      nonce: update.nonce,
      index,
      data: update.bytes.subarray(offset, offset + plan.chunkBytes),
    });
    if (!chunk.ok) return chunk;
  }
  return ask(socket, 'update:end', { round: plan.round, nonce: update.nonce });
}

/** The coordinator's current global model, read from its state dir. */
export function globalModel(stateDir: string): NamedTensors {
  const state = JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8')) as { modelFile: string };
  const bytes = readFileSync(join(stateDir, state.modelFile));
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return decodeModel(copy).tensors;
}

export function accuracy(model: NamedTensors, rows: LabelledRows): number {
  return evaluateTabular(MODEL, model, rows).metrics.accuracy;
}

/** One raw HTTP exchange over TCP (or TLS): the status line, or `closed` when the server hung up. */
export function rawHttp(
  port: number,
  bytes: string | Buffer,
  options: { tls?: { ca: string }; timeoutMs?: number; host?: string } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const host = options.host ?? '127.0.0.1';
    const socket = options.tls
      ? tlsConnect({ host, port, ca: options.tls.ca, servername: 'localhost' })
      : netConnect({ host, port });
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${options.timeoutMs ?? 5000} ms to ${JSON.stringify(String(bytes))}`));
    }, options.timeoutMs ?? 5000);
    socket.once(options.tls ? 'secureConnect' : 'connect', () => socket.write(bytes));
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('latin1');
      // Keep-alive: the status line is the answer; no need to wait for the server to hang up.
      if (data.includes('\r\n')) socket.destroy();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(data.split('\r\n')[0] || 'closed');
    });
  });
}

/** An HTTP(S) request; resolves with status, headers and body text. */
export function httpCall(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string; ca?: string } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const target = new URL(url);
  const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return within(
    new Promise((resolve, reject) => {
      const req = request(
        target,
        { method: options.method ?? 'GET', headers: options.headers, ...(options.ca ? { ca: options.ca } : {}) },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => {
            body += c.toString('utf8');
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        },
      );
      req.on('error', reject);
      req.end(options.body);
    }),
    10_000,
    `${options.method ?? 'GET'} ${url}`,
  );
}
