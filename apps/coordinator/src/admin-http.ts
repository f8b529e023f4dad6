/**
 * The coordinator's HTTP(S) server: the sign-in page, the dashboard page and the admin API (socket.io, for
 * the sites and the live dashboard, rides on the same server). Public: /login (the page and its form) and
 * socket.io's client script. Admin or viewer (Bearer token or session cookie): the dashboard page and
 * GET /api/status. Admin by Bearer token only: the rest of /api. Every refusal is audited per source
 * (summarised, rate-limited: refusals.ts); a request Node cannot parse, a failed TLS handshake or an
 * unparsable target is a 4xx and an audit entry, never a crash.
 */
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket as NetSocket } from 'node:net';
import { FedcxrError } from '@fedcxr/core';
import { type AccessControl, loginPage, type Role } from './access.js';
import type { AuditLog } from './audit.js';
import type { CoordinatorConfig } from './config.js';
import { dashboardHtml } from './dashboard.js';
import { normalizeAddress, type RefusalGate } from './refusals.js';

/** What the admin API does. */
export interface AdminApi {
  status(role: Role): unknown;
  startRound(): Promise<number>;
  evaluate(): Promise<unknown>;
}

export interface AdminHttpDeps {
  config: Pick<CoordinatorConfig, 'tls' | 'audit'>;
  access: AccessControl;
  refusals: RefusalGate;
  audit: AuditLog;
  api: AdminApi;
}

/** The HTTP (or, with `tls`, HTTPS) server, not yet listening. */
export async function createAdminServer(deps: AdminHttpDeps): Promise<Server> {
  const { config, refusals } = deps;
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    route(deps, req, res).catch((error: unknown) => failed(deps.audit, req, res, error));
  };
  let server: Server;
  if (config.tls) {
    const { tls } = config;
    const [cert, key, clientCa] = await Promise.all([
      readFile(tls.cert),
      readFile(tls.key),
      tls.clientCa ? readFile(tls.clientCa) : undefined,
    ]);
    // With clientCa, the TLS layer verifies the chain; the site gateway binds CN to the site id (and names
    // the reason of a refusal, which a TLS-level rejection could not tell the site).
    server = createHttpsServer(
      { cert, key, ...(clientCa ? { ca: clientCa, requestCert: true, rejectUnauthorized: false } : {}) },
      handler,
    );
    // A failed handshake (plain TCP on the TLS port, an unsupported protocol, a client that aborts): audited.
    server.on('tlsClientError', (error: Error & { code?: string }, socket: NetSocket) => {
      refusals.refuse('tls_refused', socket.remoteAddress, {
        reason: `${error.code ?? 'tls_error'}: ${error.message.slice(0, 200)}`,
      });
      socket.destroy();
    });
  } else server = createHttpServer(handler);
  // A request line or header Node cannot parse: 400, audited, the connection closed (never an exception).
  server.on('clientError', (error: Error & { code?: string }, socket: NetSocket) => {
    // A client hanging up is not a refusal; a failed TLS handshake also arrives here, audited by tlsClientError.
    if (error.code === 'ECONNRESET' || (config.tls && /^ERR_SSL|^ERR_TLS/.test(error.code ?? '')))
      return void socket.destroy();
    refusals.refuse('http_refused', socket.remoteAddress, { reason: `${error.code ?? 'parse_error'}` });
    if (socket.writable && !(socket as NetSocket & { _httpMessage?: unknown })._httpMessage)
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
  });
  // Slow clients cannot hold connections open forever (upgraded socket.io connections are not affected).
  server.headersTimeout = 15_000;
  server.requestTimeout = 30_000;
  return server;
}

async function route(deps: AdminHttpDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { access, audit, refusals, api, config } = deps;
  const source = req.socket.remoteAddress;
  const secure = Boolean(config.tls);
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
    refusals.refuse('http_refused', source, { reason: 'unparsable request target' });
    return error(400, 'bad_request', 'unparsable request target');
  }
  const path = url.pathname;
  /** A refused credential: audited per source; a source over its budget waits, then gets a 429. */
  const deny = (event: string, reason: string, answer: () => void) =>
    refusals.tarpit(source, event, { path: path.slice(0, 100), reason }, answer, () =>
      send(429, { error: { code: 'rate_limited', message: 'too many refused attempts' } }, 'application/json', {
        'retry-after': String(Math.ceil(config.audit.refusalIntervalMs / 1000)),
      }),
    );
  try {
    if (path === '/login') {
      if (req.method === 'GET') return send(200, loginPage(), 'text/html; charset=utf-8');
      if (req.method === 'POST') {
        const body = await readBody(req, 4096);
        const token = new URLSearchParams(body).get('token') ?? '';
        const role = access.tokenRole(token);
        if (!role)
          return deny('login_refused', 'bad token', () =>
            send(401, loginPage('That token is not valid.'), 'text/html; charset=utf-8'),
          );
        audit.append('dashboard_login', { role, address: normalizeAddress(source) });
        return send(303, '', 'text/plain', { location: '/', 'set-cookie': access.login(role, secure) });
      }
      return error(405, 'method_not_allowed', `${req.method} /login`);
    }
    if (path === '/logout' && req.method === 'POST')
      return send(303, '', 'text/plain', {
        location: '/login',
        'set-cookie': access.logout(req.headers.cookie, secure),
      });
    if (req.method === 'GET' && (path === '/' || path === '/dashboard')) {
      if (!access.requestRole(req.headers)) return send(303, '', 'text/plain', { location: '/login' });
      return send(200, dashboardHtml, 'text/html; charset=utf-8');
    }
    if (req.method === 'GET' && path === '/api/status') {
      const role = access.requestRole(req.headers);
      if (!role)
        return deny('admin_refused', 'no valid credential', () =>
          error(401, 'unauthorized', 'admin or viewer token required'),
        );
      return send(200, api.status(role));
    }
    if (path.startsWith('/api/')) {
      const header = req.headers.authorization ?? '';
      const token = header.startsWith('Bearer ') ? header.slice(7) : '';
      if (access.tokenRole(token) !== 'admin')
        return deny('admin_refused', 'not the admin token', () => error(401, 'unauthorized', 'admin token required'));
      if (req.method === 'POST' && path === '/api/rounds') {
        const round = await api.startRound();
        audit.append('admin_round_start', { round });
        return send(202, { round });
      }
      if (req.method === 'POST' && path === '/api/evaluate') return send(200, await api.evaluate());
    }
    error(404, 'not_found', `${req.method} ${path.slice(0, 200)}`);
  } catch (caught) {
    const e = caught instanceof FedcxrError ? caught : new FedcxrError('internal', (caught as Error).message);
    if (e.code === 'body_too_large') {
      refusals.refuse('http_refused', source, { reason: 'body too large', path: path.slice(0, 100) });
      res.setHeader('connection', 'close');
      return error(413, e.code, e.message);
    }
    if (e.code !== 'round_open') audit.append('http_error', { path: path.slice(0, 100), reason: e.message });
    send(e.code === 'round_open' ? 409 : 500, { error: e.toJSON() });
  }
}

/** Last resort of the HTTP handler: a 500, audited; never an unhandled rejection. */
function failed(audit: AuditLog, req: IncomingMessage, res: ServerResponse, error: unknown): void {
  try {
    audit.append('http_error', { reason: (error as Error)?.message?.slice(0, 300) ?? String(error) });
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
    res.end('{"error":{"code":"internal","message":"internal error"}}');
  } catch {
    req.socket.destroy();
  }
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
