/**
 * A minimal HTTP(S) client over node:http / node:https with keep-alive, custom CAs, `insecure` (no certificate
 * check), basic or bearer authorization and a timeout. Connection and TLS errors become DicomwebErrors that
 * name the URL and say what happened.
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { DicomwebError } from './errors.js';

export interface HttpClientOptions {
  /** Extra trusted CA certificates (PEM). */
  ca?: string | Uint8Array;
  /** Do not check the server's certificate. */
  insecure?: boolean;
  /** The Authorization header sent with every request. */
  authorization?: string;
  /** No byte from the server for this long fails the request (default 120 s). */
  timeoutMs?: number;
}

export interface HttpResponse {
  url: string;
  status: number;
  headers: IncomingHttpHeaders;
  body: Uint8Array;
}

const NETWORK_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused (is the server running, and is this its port?)',
  ENOTFOUND: 'unknown host',
  EAI_AGAIN: 'host name lookup failed',
  ECONNRESET: 'the server closed the connection',
  EPIPE: 'the server closed the connection',
  ETIMEDOUT: 'timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
};

const TLS_ERRORS = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'EPROTO',
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);

/** What a connection-level failure means, in words; the URL is named by the caller. */
export function describeNetworkError(error: NodeJS.ErrnoException): {
  code: 'dicomweb_unreachable' | 'dicomweb_tls';
  text: string;
} {
  const code = error.code ?? '';
  if (TLS_ERRORS.has(code) || /certificate|ssl|tls/i.test(error.message)) {
    return { code: 'dicomweb_tls', text: `TLS failed: ${error.message} (${code || 'tls'})` };
  }
  const known = code === 'ETIMEDOUT' && /no answer/.test(error.message) ? error.message : NETWORK_ERRORS[code];
  return { code: 'dicomweb_unreachable', text: known ? `${known} (${code})` : error.message };
}

export class HttpClient {
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private readonly options: HttpClientOptions;

  constructor(options: HttpClientOptions = {}) {
    this.options = options;
    this.httpAgent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    this.httpsAgent = new https.Agent({
      keepAlive: true,
      maxSockets: 4,
      ca: options.ca === undefined ? undefined : typeof options.ca === 'string' ? options.ca : Buffer.from(options.ca),
      rejectUnauthorized: !options.insecure,
    });
  }

  /**
   * One request. A kept-alive connection the server closed meanwhile (ECONNRESET on a reused socket: servers
   * close idle ones after their own keep-alive timeout) is retried once on a fresh connection.
   */
  async request(
    method: string,
    url: string,
    init: { headers?: Record<string, string>; body?: Uint8Array } = {},
  ): Promise<HttpResponse> {
    try {
      return await this.once(method, url, init);
    } catch (error) {
      if ((error as { staleSocket?: boolean }).staleSocket) return this.once(method, url, init);
      throw error;
    }
  }

  private once(
    method: string,
    url: string,
    init: { headers?: Record<string, string>; body?: Uint8Array },
  ): Promise<HttpResponse> {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return Promise.reject(new DicomwebError('dicomweb_unreachable', `not a URL: ${url}`, { url }));
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      return Promise.reject(
        new DicomwebError('dicomweb_unreachable', `${url}: only http:// and https:// URLs are supported`, { url }),
      );
    }
    const secure = parsed.protocol === 'https:';
    const headers: Record<string, string> = { ...init.headers };
    if (this.options.authorization) headers.Authorization = this.options.authorization;
    if (init.body) headers['Content-Length'] = String(init.body.byteLength);
    const timeoutMs = this.options.timeoutMs ?? 120_000;
    return new Promise<HttpResponse>((resolve, reject) => {
      const request = (secure ? https : http).request(
        parsed,
        { method, headers, agent: secure ? this.httpsAgent : this.httpAgent },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('error', (error) => fail(error));
          response.on('end', () => {
            if (!response.complete) {
              fail(Object.assign(new Error('the server closed the connection mid-response'), { code: 'ECONNRESET' }));
              return;
            }
            const body = Buffer.concat(chunks);
            resolve({
              url,
              status: response.statusCode ?? 0,
              headers: response.headers,
              body: new Uint8Array(body.buffer, body.byteOffset, body.byteLength),
            });
          });
        },
      );
      const fail = (error: NodeJS.ErrnoException) => {
        const { code, text } = describeNetworkError(error);
        const failure = new DicomwebError(code, `cannot reach the DICOMweb server at ${url}: ${text}`, {
          url,
          cause: error,
        });
        const stale = request.reusedSocket && (error.code === 'ECONNRESET' || error.code === 'EPIPE');
        reject(stale ? Object.assign(failure, { staleSocket: true }) : failure);
      };
      request.setTimeout(timeoutMs, () => {
        request.destroy(
          Object.assign(new Error(`no answer in ${Math.round(timeoutMs / 1000)} s`), { code: 'ETIMEDOUT' }),
        );
      });
      request.on('error', fail);
      request.end(init.body ? Buffer.from(init.body.buffer, init.body.byteOffset, init.body.byteLength) : undefined);
    });
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}
