/**
 * A DICOMweb client (PS3.18): QIDO-RS searches (studies, series, instances), WADO-RS retrieval of instances
 * (multipart/related; type="application/dicom", as stored when the server allows) and of metadata, and STOW-RS
 * storage. HTTP basic or bearer authorization, extra CAs or no certificate check. Errors say what failed and
 * where: connection refused names the URL, 401/403 say authentication failed, 404 says not found.
 */
import { DicomwebError } from './errors.js';
import { HttpClient, type HttpResponse } from './http.js';
import { type DicomJson, jsonSequence, jsonString, TAGS } from './json.js';
import { buildMultipart, parseMediaType, parseMultipart } from './multipart.js';
import { type QueryParameters, resourceUrl, type StudySearch, studySearchParameters, withQuery } from './query.js';

export interface DicomwebClientOptions {
  /** The service's base URL, e.g. `http://pacs:8042/dicom-web` (QIDO, WADO and STOW under one root). */
  baseUrl: string;
  /** HTTP basic authentication. */
  user?: string;
  password?: string;
  /** Bearer token (OAuth 2 / OpenID Connect access token); wins over user/password. */
  token?: string;
  /** Extra trusted CA certificates, PEM. */
  ca?: string | Uint8Array;
  /** Accept any server certificate. */
  insecure?: boolean;
  timeoutMs?: number;
}

export interface StoredInstance {
  sopClassUid?: string;
  sopInstanceUid?: string;
  url?: string;
}

export interface FailedStore {
  sopClassUid?: string;
  sopInstanceUid?: string;
  /** The Failure Reason (0008,1197), e.g. 0xA700; undefined when the server gave none. */
  reason?: number;
  /** The reason in words. */
  message: string;
}

export interface StoreResult {
  stored: StoredInstance[];
  failed: FailedStore[];
}

/** Failure reasons of the Storage service (PS3.4 B.2.3) and STOW-RS (PS3.18 I.2.2), in words. */
const FAILURE_REASONS: Record<number, string> = {
  272: 'processing failure',
  274: 'no such SOP instance',
  290: 'SOP class not supported',
  292: 'not authorized',
  42752: 'out of resources',
  42864: 'referenced transfer syntax not supported',
  43264: 'data set does not match its SOP class',
  45056: 'coercion of data elements',
  45063: 'data set does not match its SOP class (warning)',
  45062: 'elements discarded',
  49152: 'cannot understand',
  49442: 'referenced transfer syntax not supported',
};

const DICOM_JSON = 'application/dicom+json, application/json;q=0.9';
const ANY_TRANSFER_SYNTAX = 'multipart/related; type="application/dicom"; transfer-syntax=*';
const DEFAULT_TRANSFER_SYNTAX = 'multipart/related; type="application/dicom"';

function header(response: HttpResponse, name: string): string {
  const value = response.headers[name];
  return Array.isArray(value) ? value.join(', ') : (value ?? '');
}

/** The server's own words about an error: a short excerpt of its body (text or JSON), if any. */
function serverMessage(response: HttpResponse): string {
  const text = Buffer.from(response.body).toString('utf8').replace(/\s+/g, ' ').trim();
  if (!text) return '';
  try {
    const parsed = JSON.parse(text) as Record<string, unknown>;
    const said = parsed.Message ?? parsed.message ?? parsed.Details ?? parsed.error ?? parsed.HttpError;
    if (typeof said === 'string') return `: ${said.slice(0, 200)}`;
  } catch {}
  return `: ${text.slice(0, 200)}`;
}

export class DicomwebClient {
  readonly baseUrl: string;
  private readonly http: HttpClient;
  private retrieveAccept = ANY_TRANSFER_SYNTAX;

  constructor(options: DicomwebClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    let authorization: string | undefined;
    if (options.token) authorization = `Bearer ${options.token}`;
    else if (options.user !== undefined) {
      authorization = `Basic ${Buffer.from(`${options.user}:${options.password ?? ''}`, 'utf8').toString('base64')}`;
    }
    this.http = new HttpClient({
      ca: options.ca,
      insecure: options.insecure,
      authorization,
      timeoutMs: options.timeoutMs,
    });
  }

  /** Closes kept-alive connections. */
  close(): void {
    this.http.close();
  }

  private async send(
    method: string,
    url: string,
    init: { headers?: Record<string, string>; body?: Uint8Array } = {},
  ): Promise<HttpResponse> {
    const response = await this.http.request(method, url, init);
    if (response.status >= 200 && response.status < 300) return response;
    this.fail(response);
  }

  private fail(response: HttpResponse): never {
    const { status, url } = response;
    const said = serverMessage(response);
    if (status === 401) {
      throw new DicomwebError('dicomweb_auth', `authentication failed at ${url} (HTTP 401)`, { url, status });
    }
    if (status === 403) {
      throw new DicomwebError('dicomweb_auth', `access denied at ${url} (HTTP 403)${said}`, { url, status });
    }
    if (status === 404) throw new DicomwebError('dicomweb_not_found', `not found: ${url} (HTTP 404)`, { url, status });
    if (status >= 300 && status < 400) {
      const location = header(response, 'location');
      throw new DicomwebError(
        'dicomweb_http',
        `${url} redirects (HTTP ${status})${location ? ` to ${location}: give that as the base URL` : ''}`,
        { url, status },
      );
    }
    throw new DicomwebError('dicomweb_http', `${url} answered HTTP ${status}${said}`, { url, status });
  }

  private async getJson(url: string): Promise<DicomJson[]> {
    const response = await this.send('GET', url, { headers: { Accept: DICOM_JSON } });
    if (response.status === 204 || response.body.byteLength === 0) return [];
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(response.body).toString('utf8'));
    } catch (error) {
      throw new DicomwebError(
        'dicomweb_bad_response',
        `${url} did not answer DICOM JSON (${header(response, 'content-type') || 'no Content-Type'}): ${(error as Error).message}`,
        { url, cause: error },
      );
    }
    if (!Array.isArray(parsed)) {
      throw new DicomwebError('dicomweb_bad_response', `${url} answered JSON that is not an array of data sets`, {
        url,
      });
    }
    return parsed as DicomJson[];
  }

  /** QIDO-RS /studies. */
  searchStudies(search: StudySearch = {}): Promise<DicomJson[]> {
    return this.getJson(withQuery(resourceUrl(this.baseUrl, 'studies'), studySearchParameters(search)));
  }

  /** The study's QIDO-RS record, or null when the server does not know the study. */
  async findStudy(studyInstanceUid: string): Promise<DicomJson | null> {
    const found = await this.searchStudies({ studyInstanceUid });
    return found.find((s) => jsonString(s, TAGS.StudyInstanceUID) === studyInstanceUid) ?? null;
  }

  /** QIDO-RS /studies/{study}/series. An unknown study gives [] (or not_found, depending on the server). */
  searchSeries(studyInstanceUid: string, parameters: QueryParameters = {}): Promise<DicomJson[]> {
    return this.getJson(withQuery(resourceUrl(this.baseUrl, 'studies', studyInstanceUid, 'series'), parameters));
  }

  /** QIDO-RS /studies/{study}[/series/{series}]/instances. */
  searchInstances(
    studyInstanceUid: string,
    seriesInstanceUid?: string,
    parameters: QueryParameters = {},
  ): Promise<DicomJson[]> {
    const path = seriesInstanceUid
      ? ['studies', studyInstanceUid, 'series', seriesInstanceUid, 'instances']
      : ['studies', studyInstanceUid, 'instances'];
    return this.getJson(withQuery(resourceUrl(this.baseUrl, ...path), parameters));
  }

  /** WADO-RS metadata of a series (every instance's attributes, bulk data left out). */
  retrieveSeriesMetadata(studyInstanceUid: string, seriesInstanceUid: string): Promise<DicomJson[]> {
    return this.getJson(
      resourceUrl(this.baseUrl, 'studies', studyInstanceUid, 'series', seriesInstanceUid, 'metadata'),
    );
  }

  /** The instance's URL (its WADO-RS resource). */
  instanceUrl(studyInstanceUid: string, seriesInstanceUid: string, sopInstanceUid: string): string {
    return resourceUrl(
      this.baseUrl,
      'studies',
      studyInstanceUid,
      'series',
      seriesInstanceUid,
      'instances',
      sopInstanceUid,
    );
  }

  /**
   * WADO-RS: one instance as a DICOM Part 10 file. Asks for the stored transfer syntax (`transfer-syntax=*`),
   * falling back to the server's default when it refuses that (HTTP 406/400).
   */
  async retrieveInstance(
    studyInstanceUid: string,
    seriesInstanceUid: string,
    sopInstanceUid: string,
  ): Promise<Uint8Array> {
    const url = this.instanceUrl(studyInstanceUid, seriesInstanceUid, sopInstanceUid);
    let response = await this.http.request('GET', url, { headers: { Accept: this.retrieveAccept } });
    if ((response.status === 406 || response.status === 400) && this.retrieveAccept === ANY_TRANSFER_SYNTAX) {
      this.retrieveAccept = DEFAULT_TRANSFER_SYNTAX;
      response = await this.http.request('GET', url, { headers: { Accept: this.retrieveAccept } });
    }
    if (response.status < 200 || response.status >= 300) this.fail(response);
    const contentType = header(response, 'content-type');
    const media = parseMediaType(contentType);
    if (media.type === 'application/dicom') return response.body;
    const parts = parseMultipart(response.body, contentType, url);
    const dicom = parts.find((p) => p.mediaType === 'application/dicom' || p.mediaType === 'application/octet-stream');
    if (!dicom) {
      throw new DicomwebError(
        'dicomweb_bad_response',
        `${url}: no application/dicom part in the answer (${parts.map((p) => p.mediaType).join(', ') || 'no parts'})`,
        { url },
      );
    }
    return dicom.body;
  }

  /**
   * STOW-RS: stores Part 10 files, into `studyInstanceUid` when given (the server then refuses instances of other
   * studies). Instances the server refuses are listed in `failed` with its reason; HTTP-level errors throw.
   */
  async store(instances: readonly Uint8Array[], studyInstanceUid?: string): Promise<StoreResult> {
    const url = studyInstanceUid
      ? resourceUrl(this.baseUrl, 'studies', studyInstanceUid)
      : resourceUrl(this.baseUrl, 'studies');
    const { body, contentType } = buildMultipart(
      instances.map((bytes) => ({ body: bytes })),
      { type: 'application/dicom' },
    );
    const response = await this.http.request('POST', url, {
      headers: { 'Content-Type': contentType, Accept: 'application/dicom+json' },
      body,
    });
    // 200: all stored; 202: some stored, some failed or with warnings; 409: none stored (PS3.18 10.5.3).
    if (![200, 202, 409].includes(response.status)) this.fail(response);
    let answer: DicomJson = {};
    if (response.body.byteLength > 0) {
      try {
        const parsed = JSON.parse(Buffer.from(response.body).toString('utf8')) as DicomJson | DicomJson[];
        answer = Array.isArray(parsed) ? (parsed[0] ?? {}) : parsed;
      } catch {
        // XML or empty answers: judge by the status alone.
      }
    }
    const stored = jsonSequence(answer, TAGS.ReferencedSOPSequence).map((item) => ({
      sopClassUid: jsonString(item, '00081150'),
      sopInstanceUid: jsonString(item, TAGS.ReferencedSOPInstanceUID),
      url: jsonString(item, TAGS.RetrieveURL),
    }));
    const failed = jsonSequence(answer, TAGS.FailedSOPSequence).map((item) => {
      const raw = item[TAGS.FailureReason]?.Value?.[0];
      const reason = typeof raw === 'number' ? raw : raw === undefined ? undefined : Number(raw);
      return {
        sopClassUid: jsonString(item, '00081150'),
        sopInstanceUid: jsonString(item, TAGS.ReferencedSOPInstanceUID),
        reason,
        message:
          reason === undefined
            ? 'refused (no reason given)'
            : `${FAILURE_REASONS[reason] ?? 'refused'} (0x${reason.toString(16).toUpperCase().padStart(4, '0')})`,
      };
    });
    if (response.status === 409 && failed.length === 0) {
      failed.push({
        sopClassUid: undefined,
        sopInstanceUid: undefined,
        reason: undefined,
        message: `refused (HTTP 409)${serverMessage(response)}`,
      });
    }
    return { stored, failed };
  }
}
