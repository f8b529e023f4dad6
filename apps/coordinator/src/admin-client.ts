/** A tiny client of the coordinator's HTTP API (admin token as Bearer; dev CA for https). */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { FedcxrError } from '@fedcxr/core';

export async function coordinatorRequest<T>(
  base: string,
  method: 'GET' | 'POST',
  path: string,
  options: { adminToken?: string; ca?: string; timeoutMs?: number } = {},
): Promise<T> {
  const url = new URL(path, base);
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<T>((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        headers: options.adminToken ? { authorization: `Bearer ${options.adminToken}` } : {},
        ...(options.ca ? { ca: options.ca } : {}),
        timeout: options.timeoutMs ?? 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown;
          try {
            body = JSON.parse(text);
          } catch {
            body = text;
          }
          if ((res.statusCode ?? 500) >= 400) {
            const error = (body as { error?: { code?: string; message?: string } }).error;
            reject(
              new FedcxrError(
                error?.code ?? 'coordinator_error',
                `${method} ${url.pathname}: ${res.statusCode} ${error?.message ?? text}`,
              ),
            );
          } else resolve(body as T);
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (error) =>
      reject(new FedcxrError('coordinator_unreachable', `cannot reach ${base}: ${error.message}`)),
    );
    req.end();
  });
}
