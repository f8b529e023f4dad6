/**
 * Who may see the dashboard and the status API: the admin (admin token) or a viewer (the read-only viewer
 * token). Either comes as `Authorization: Bearer <token>` (the CLI) or as a session cookie set by the login
 * page (a browser): `fedcxr_session`, HttpOnly, SameSite=Strict, Secure under TLS, random 32 bytes, held in
 * memory only (a restart logs everyone out). The cookie alone never authorises a state change: the admin
 * API's POSTs take the Bearer token only, so a cross-site form cannot start a round.
 * Viewers get a redacted snapshot: no IP addresses, nonces, hashes of updates or key material.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { AuditEntry } from './audit.js';

export type Role = 'admin' | 'viewer';
export const SESSION_COOKIE = 'fedcxr_session';

export class AccessControl {
  private readonly admin: Buffer;
  private readonly viewer: Buffer | undefined;
  private readonly sessions = new Map<string, { role: Role; expires: number }>();

  constructor(
    adminToken: string,
    viewerToken: string | undefined,
    private readonly ttlMs: number,
    private readonly maxSessions = 1000,
  ) {
    this.admin = digest(adminToken);
    this.viewer = viewerToken ? digest(viewerToken) : undefined;
  }

  /** The role a token grants, if any (constant time in the token). */
  tokenRole(token: string): Role | undefined {
    const d = digest(token);
    if (timingSafeEqual(d, this.admin)) return 'admin';
    if (this.viewer && timingSafeEqual(d, this.viewer)) return 'viewer';
    return undefined;
  }

  /** The role of a request's Bearer token or session cookie. */
  requestRole(headers: IncomingMessage['headers']): Role | undefined {
    const header = headers.authorization ?? '';
    if (header.startsWith('Bearer ')) return this.tokenRole(header.slice(7));
    return this.sessionRole(headers.cookie);
  }

  sessionRole(cookieHeader: string | undefined): Role | undefined {
    const id = parseCookies(cookieHeader)[SESSION_COOKIE];
    if (!id || !/^[0-9a-f]{64}$/.test(id)) return undefined;
    const session = this.sessions.get(id);
    if (!session) return undefined;
    if (session.expires < Date.now()) {
      this.sessions.delete(id);
      return undefined;
    }
    return session.role;
  }

  /** A new session for `role`; returns its Set-Cookie header value. */
  login(role: Role, secure: boolean): string {
    const now = Date.now();
    for (const [id, s] of this.sessions) if (s.expires < now) this.sessions.delete(id);
    while (this.sessions.size >= this.maxSessions) {
      const oldest = this.sessions.keys().next().value;
      if (oldest === undefined) break;
      this.sessions.delete(oldest);
    }
    const id = randomBytes(32).toString('hex');
    this.sessions.set(id, { role, expires: now + this.ttlMs });
    return `${SESSION_COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${Math.floor(this.ttlMs / 1000)}${secure ? '; Secure' : ''}`;
  }

  logout(cookieHeader: string | undefined, secure: boolean): string {
    const id = parseCookies(cookieHeader)[SESSION_COOKIE];
    if (id) this.sessions.delete(id);
    return `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0${secure ? '; Secure' : ''}`;
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!header) return out;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

/** Fields a viewer never sees: addresses, nonces, update hashes, key material, the chain's hashes. */
const SECRET_FIELDS = new Set([
  'address',
  'source',
  'url',
  'nonce',
  'sha256',
  'publicKey',
  'shareKey',
  'prev',
  'reasons',
]);

export function redactEntry(entry: AuditEntry): AuditEntry {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(entry)) if (!SECRET_FIELDS.has(key)) out[key] = value;
  return out as AuditEntry;
}

export function loginPage(message = ''): string {
  const note = message ? `<p class="error">${escapeHtml(message)}</p>` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fedcxr coordinator: sign in</title>
<style>body{font:14px system-ui,sans-serif;margin:3rem auto;max-width:22rem;color:#1d2733}
input{width:100%;padding:.4rem;margin:.4rem 0;box-sizing:border-box}.error{color:#a50e0e}</style></head>
<body><h1>fedcxr coordinator</h1>${note}
<form method="post" action="/login"><label>Admin or viewer token<input type="password" name="token" autocomplete="current-password" required></label>
<button type="submit">Sign in</button></form></body></html>
`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
