import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DicomwebClient } from './client.js';
import { DicomwebError } from './errors.js';
import { TAGS } from './json.js';
import { buildMultipart, parseMultipart } from './multipart.js';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A fake DICOMweb server: enough of QIDO, WADO and STOW to check what the client sends and how it reads answers. */
function handler(seen: Seen[]) {
  return (request: http.IncomingMessage, response: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers, body });
      const url = request.url ?? '';
      const json = (status: number, value: unknown) => {
        response.writeHead(status, { 'Content-Type': 'application/dicom+json' });
        response.end(JSON.stringify(value));
      };
      if (request.headers.authorization !== `Basic ${Buffer.from('alice:secret').toString('base64')}`) {
        response.writeHead(401, { 'WWW-Authenticate': 'Basic realm="pacs"' });
        response.end();
        return;
      }
      if (url === '/dw/studies' || url.startsWith('/dw/studies?')) {
        json(200, [{ [TAGS.StudyInstanceUID]: { vr: 'UI', Value: ['1.2'] } }]);
      } else if (url === '/dw/studies/9.9/series') {
        response.writeHead(204);
        response.end();
      } else if (url === '/dw/studies/1.2/series/3/instances/4') {
        // Refuses "as stored" (like some servers) so the client falls back to the default transfer syntax.
        if (String(request.headers.accept).includes('transfer-syntax=*')) {
          response.writeHead(406);
          response.end();
          return;
        }
        const built = buildMultipart([{ body: new Uint8Array(Buffer.from('DICM-bytes')) }], {
          type: 'application/dicom',
        });
        response.writeHead(200, { 'Content-Type': built.contentType });
        response.end(Buffer.from(built.body));
      } else if (url === '/dw/studies/1.2/series/3/instances/5') {
        response.writeHead(200, { 'Content-Type': 'multipart/related; type="application/dicom"; boundary=zz' });
        response.end('--zz\r\nContent-Type: application/dicom\r\n\r\nhalf a fi');
      } else if (request.method === 'POST' && url === '/dw/studies/1.2') {
        const parts = parseMultipart(new Uint8Array(body), String(request.headers['content-type']));
        json(202, {
          [TAGS.ReferencedSOPSequence]: {
            vr: 'SQ',
            Value: [{ [TAGS.ReferencedSOPInstanceUID]: { vr: 'UI', Value: [`stored-${parts.length}`] } }],
          },
          [TAGS.FailedSOPSequence]: {
            vr: 'SQ',
            Value: [
              {
                [TAGS.ReferencedSOPInstanceUID]: { vr: 'UI', Value: ['refused-1'] },
                [TAGS.FailureReason]: { vr: 'US', Value: [0xa900] },
              },
            ],
          },
        });
      } else if (url.startsWith('/dw/broken')) {
        response.writeHead(500, { 'Content-Type': 'application/json' });
        response.end(JSON.stringify({ Message: 'database locked' }));
      } else {
        response.writeHead(404);
        response.end();
      }
    });
  };
}

const listen = (server: http.Server) =>
  new Promise<number>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );

async function caught(promise: Promise<unknown>): Promise<DicomwebError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(DicomwebError);
    return error as DicomwebError;
  }
  throw new Error('expected a DicomwebError');
}

describe('DicomwebClient against a fake server', () => {
  const seen: Seen[] = [];
  const server = http.createServer(handler(seen));
  let base = '';
  let client: DicomwebClient;

  beforeAll(async () => {
    base = `http://127.0.0.1:${await listen(server)}/dw/`;
    client = new DicomwebClient({ baseUrl: base, user: 'alice', password: 'secret' });
  });
  afterAll(() => {
    client.close();
    server.close();
  });

  it('QIDO: sends the query and basic auth, reads DICOM JSON; 204 is no match', async () => {
    const studies = await client.searchStudies({ modality: 'CR', studyDateFrom: '20240101' });
    expect(studies).toHaveLength(1);
    const request = seen.at(-1)!;
    expect(request.url).toBe('/dw/studies?ModalitiesInStudy=CR&StudyDate=20240101-');
    expect(request.headers.accept).toMatch(/^application\/dicom\+json/);
    expect(await client.searchSeries('9.9')).toEqual([]);
  });

  it('WADO-RS: asks for the stored transfer syntax, falls back on 406, unpacks the multipart answer', async () => {
    const bytes = await client.retrieveInstance('1.2', '3', '4');
    expect(Buffer.from(bytes).toString()).toBe('DICM-bytes');
    const [first, second] = seen.slice(-2);
    expect(first.headers.accept).toBe('multipart/related; type="application/dicom"; transfer-syntax=*');
    expect(second.headers.accept).toBe('multipart/related; type="application/dicom"');
    const truncated = await caught(client.retrieveInstance('1.2', '3', '5'));
    expect(truncated.code).toBe('dicomweb_bad_response');
    expect(truncated.message).toMatch(/truncated/);
  });

  it('STOW-RS: posts multipart/related; type="application/dicom" and reads stored and failed instances', async () => {
    const result = await client.store([new Uint8Array([1, 2, 3]), new Uint8Array([4])], '1.2');
    const request = seen.at(-1)!;
    expect(request.method).toBe('POST');
    expect(request.headers['content-type']).toMatch(/^multipart\/related; type="application\/dicom"; boundary=/);
    expect(result.stored).toEqual([{ sopClassUid: undefined, sopInstanceUid: 'stored-2', url: undefined }]);
    expect(result.failed).toEqual([
      {
        sopClassUid: undefined,
        sopInstanceUid: 'refused-1',
        reason: 0xa900,
        message: 'data set does not match its SOP class (0xA900)',
      },
    ]);
  });

  it('401 says authentication failed; 404 not found; 500 quotes the server', async () => {
    const anonymous = new DicomwebClient({ baseUrl: base });
    const denied = await caught(anonymous.searchStudies());
    anonymous.close();
    expect(denied.code).toBe('dicomweb_auth');
    expect(denied.status).toBe(401);
    expect(denied.message).toBe(`authentication failed at ${base}studies (HTTP 401)`);
    const missing = await caught(client.searchInstances('7.7', '8'));
    expect(missing.code).toBe('dicomweb_not_found');
    const broken = await caught(
      new DicomwebClient({ baseUrl: `${base}broken`, user: 'alice', password: 'secret' }).searchStudies(),
    );
    expect(broken.code).toBe('dicomweb_http');
    expect(broken.message).toMatch(/answered HTTP 500: database locked$/);
  });

  it('a server that is down: connection refused, naming the URL', async () => {
    const closed = http.createServer();
    const port = await listen(closed);
    await new Promise((resolve) => closed.close(resolve));
    const down = new DicomwebClient({ baseUrl: `http://127.0.0.1:${port}/dicom-web` });
    const error = await caught(down.searchStudies());
    down.close();
    expect(error.code).toBe('dicomweb_unreachable');
    expect(error.message).toBe(
      `cannot reach the DICOMweb server at http://127.0.0.1:${port}/dicom-web/studies: connection refused (is the server running, and is this its port?) (ECONNREFUSED)`,
    );
  });

  it('a server that does not answer in time', async () => {
    const silent = http.createServer(() => undefined);
    const port = await listen(silent);
    const slow = new DicomwebClient({ baseUrl: `http://127.0.0.1:${port}`, timeoutMs: 200 });
    const error = await caught(slow.searchStudies());
    slow.close();
    silent.closeAllConnections();
    silent.close();
    expect(error.code).toBe('dicomweb_unreachable');
    expect(error.message).toMatch(/no answer in 0 s|no answer in/);
  });
});

let openssl = false;
try {
  execFileSync('openssl', ['version'], { stdio: 'ignore' });
  openssl = true;
} catch {
  console.warn('dicomweb TLS tests skipped: no openssl to make a test certificate');
}

describe.skipIf(!openssl)('DicomwebClient over TLS', () => {
  let server: https.Server;
  let base = '';
  let ca = '';

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dicomweb-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    ca = readFileSync(join(dir, 'cert.pem'), 'utf8');
    server = https.createServer({ key: readFileSync(join(dir, 'key.pem')), cert: ca }, handler([]));
    base = `https://127.0.0.1:${await listen(server)}/dw`;
  });
  afterAll(() => server?.close());

  it('refuses an unknown certificate, trusts it with ca, or with insecure', async () => {
    const strict = new DicomwebClient({ baseUrl: base, user: 'alice', password: 'secret' });
    const error = await caught(strict.searchStudies());
    strict.close();
    expect(error.code).toBe('dicomweb_tls');
    expect(error.message).toMatch(/self-signed|self signed/);
    for (const options of [{ ca }, { insecure: true }]) {
      const client = new DicomwebClient({ baseUrl: base, user: 'alice', password: 'secret', ...options });
      expect(await client.searchStudies()).toHaveLength(1);
      client.close();
    }
  });
});
