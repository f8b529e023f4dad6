/**
 * The sites' side of socket.io: who may connect (per-site token, compared in constant time; with mutual TLS a
 * client certificate from the configured CA whose CN is the site id), one live connection per site, the
 * site table the dashboard shows, and every site event, each handled inside a guard: whatever a handler
 * throws (sync or async) is audited and answered with a refused ack, never an exception on the event loop.
 * The gateway serves the global model's chunks itself and hands everything about rounds to `SiteEvents`.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { type Ack, modelChunkRequestSchema, siteAuthSchema, siteStatusSchema } from '@fedcxr/federated';
import type { Socket, Server as SocketServer } from 'socket.io';
import type { AuditLog } from './audit.js';
import type { RefusalGate } from './refusals.js';

export interface SiteInfo {
  id: string;
  online: boolean;
  lastSeen: number;
  examples: number;
  state: string;
  round: number;
  socket?: Socket;
}

export type Reply = (value: Ack | Record<string, unknown>) => void;

/** What the coordinator does with the sites' round events. */
export interface SiteEvents {
  /** A site connected (or reconnected, replacing its older connection). */
  connected(site: SiteInfo): void;
  /** A connection closed (uploads over it are abandoned), whether or not it was the site's live one. */
  disconnected(socketId: string): void;
  /** The site's live connection closed: it is offline now. */
  offline(site: SiteInfo): void;
  updateBegin(siteId: string, raw: unknown, socketId: string, reply: Reply): void;
  updateChunk(siteId: string, raw: unknown, reply: Reply): void;
  updateEnd(siteId: string, raw: unknown, reply: Reply): Promise<void>;
  evalReport(siteId: string, raw: unknown, reply: Reply): void;
  secaggKey(siteId: string, raw: unknown, reply: Reply): void;
  secaggShares(siteId: string, raw: unknown, reply: Reply): void;
}

export interface GatewayOptions {
  sites: readonly { id: string; token: string }[];
  /** Require a client certificate issued to the site (its CN) by the configured CA. */
  clientCa: boolean;
  chunkBytes: number;
  /** The global model the sites download, chunk by chunk. */
  model: () => { hash: string; bytes: Uint8Array };
}

export class SiteGateway {
  readonly sites = new Map<string, SiteInfo>();
  private readonly tokenHashes = new Map<string, Buffer>();

  constructor(
    private readonly options: GatewayOptions,
    private readonly audit: AuditLog,
    private readonly refusals: RefusalGate,
    private readonly events: SiteEvents,
    private readonly changed: () => void,
  ) {
    for (const site of options.sites) {
      this.tokenHashes.set(site.id, sha256Buffer(site.token));
      this.sites.set(site.id, { id: site.id, online: false, lastSeen: 0, examples: 0, state: 'offline', round: 0 });
    }
  }

  /** Sites connected now. */
  online(): SiteInfo[] {
    return [...this.sites.values()].filter((s) => s.online && s.socket);
  }

  isOnline(siteId: string): boolean {
    return this.sites.get(siteId)?.online ?? false;
  }

  socket(siteId: string): Socket | undefined {
    return this.sites.get(siteId)?.socket;
  }

  /** Takes the default namespace of `io`: the handshake check, then the connection's handlers. */
  attach(io: SocketServer): void {
    io.use((socket, next) => {
      try {
        this.authenticate(socket, next);
      } catch (error) {
        this.refusals.refuse('auth_refused', socket.handshake.address, {
          reason: `handshake error: ${(error as Error).message.slice(0, 200)}`,
        });
        next(refusal('handshake error'));
      }
    });
    io.on('connection', (socket) => {
      try {
        this.onConnection(socket);
      } catch (error) {
        this.audit.append('handler_error', { event: 'connection', reason: (error as Error).message.slice(0, 300) });
        socket.disconnect(true);
      }
    });
  }

  private authenticate(socket: Socket, next: (error?: Error) => void) {
    const source = socket.handshake.address;
    const parsed = siteAuthSchema.safeParse(socket.handshake.auth);
    const refuse = (reason: string, siteId?: string) => {
      this.refusals.tarpit(source, 'auth_refused', { siteId: siteId ?? null, reason }, () => next(refusal(reason)));
      this.changed();
    };
    if (!parsed.success) return refuse('malformed handshake or protocol version');
    const { siteId, token } = parsed.data;
    const expected = this.tokenHashes.get(siteId);
    if (!expected) return refuse('unknown site', siteId);
    if (!timingSafeEqual(expected, sha256Buffer(token))) return refuse('bad credentials', siteId);
    if (this.options.clientCa) {
      const tlsSocket = socket.request.socket as TLSSocket;
      const peer = tlsSocket.getPeerCertificate?.();
      if (!peer || Object.keys(peer).length === 0)
        return refuse('client certificate missing: this coordinator requires one issued to the site', siteId);
      if (!tlsSocket.authorized)
        return refuse(
          `client certificate not trusted by the coordinator (${String(tlsSocket.authorizationError)})`,
          siteId,
        );
      if (peer.subject?.CN !== siteId)
        return refuse(`client certificate not issued to this site (CN ${String(peer.subject?.CN)})`, siteId);
    }
    socket.data.siteId = siteId;
    next();
  }

  private onConnection(socket: Socket): void {
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
    // Every event handler fails closed: whatever it throws (sync or async) is audited and answered with a
    // refused ack; nothing reaches the event loop. (socket.io ignores a second call of an ack.)
    const on = (event: string, handler: (raw: unknown, reply: Reply) => unknown) => {
      socket.on(event, (raw: unknown, ack: unknown) => {
        site.lastSeen = Date.now();
        const reply: Reply = (value) => {
          if (typeof ack === 'function') (ack as (v: unknown) => void)(value);
        };
        const failed = (error: unknown) => {
          this.audit.append('handler_error', {
            siteId,
            event,
            reason: (error as Error)?.message?.slice(0, 300) ?? String(error),
          });
          reply({ ok: false, code: 'internal', error: `the coordinator could not handle ${event}` });
        };
        try {
          const result = handler(raw, reply);
          if (result instanceof Promise) result.catch(failed);
        } catch (error) {
          failed(error);
        }
      });
    };
    on('model:chunk', (raw, reply) => this.modelChunk(raw, reply));
    on('update:begin', (raw, reply) => this.events.updateBegin(siteId, raw, socket.id, reply));
    on('update:chunk', (raw, reply) => this.events.updateChunk(siteId, raw, reply));
    on('update:end', (raw, reply) => this.events.updateEnd(siteId, raw, reply));
    on('eval:report', (raw, reply) => this.events.evalReport(siteId, raw, reply));
    on('secagg:key', (raw, reply) => this.events.secaggKey(siteId, raw, reply));
    on('secagg:shares', (raw, reply) => this.events.secaggShares(siteId, raw, reply));
    on('site:status', (raw) => {
      const status = siteStatusSchema.safeParse(raw);
      if (!status.success) return;
      site.state = status.data.state;
      site.round = status.data.round;
      this.changed();
    });
    on('disconnect', (reason) => {
      // A half-sent update over this connection is discarded (spool removed); the site re-sends it with a
      // fresh nonce when it is back. Done even when a newer connection of the site already replaced this one.
      this.events.disconnected(socket.id);
      if (site.socket?.id !== socket.id) return;
      site.online = false;
      site.socket = undefined;
      site.state = 'offline';
      site.lastSeen = Date.now();
      this.audit.append('site_disconnected', { siteId, reason });
      this.events.offline(site);
      this.changed();
    });
    this.events.connected(site);
  }

  private modelChunk(raw: unknown, reply: Reply) {
    const model = this.options.model();
    const request = modelChunkRequestSchema.safeParse(raw);
    if (!request.success || request.data.modelHash !== model.hash)
      return reply({ ok: false, error: 'unknown model (the global model changed, or malformed request)' });
    const { index } = request.data;
    const start = index * this.options.chunkBytes;
    if (start >= model.bytes.length) return reply({ ok: false, error: `no chunk ${index}` });
    reply({ ok: true, index, data: model.bytes.subarray(start, start + this.options.chunkBytes) });
  }
}

/** A refusal for socket.io middleware (`data` marks it as a refusal for the site agent). */
export function refusal(reason: string): Error {
  const error = new Error(reason) as Error & { data?: unknown };
  error.data = { code: 'auth_refused' };
  return error;
}

function sha256Buffer(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
