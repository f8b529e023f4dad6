/**
 * multipart/related bodies (RFC 2387 over RFC 2046), as WADO-RS answers and STOW-RS requests use them: the
 * boundary comes from the Content-Type, parts are split on CRLF "--boundary" (a preamble, transport padding
 * after a delimiter and an epilogue are allowed), each part's headers are parsed, and its body is returned
 * as bytes, untouched.
 */
import { randomUUID } from 'node:crypto';
import { DicomwebError } from './errors.js';

export interface MultipartPart {
  /** Header names in lower case. */
  headers: Record<string, string>;
  /** The part's Content-Type (without parameters, lower case); `application/octet-stream` when absent. */
  mediaType: string;
  body: Uint8Array;
}

export interface MediaType {
  /** `type/subtype` in lower case. */
  type: string;
  /** Parameter names in lower case; quoted values unquoted. */
  parameters: Record<string, string>;
}

/** Parses a Content-Type such as `multipart/related; type="application/dicom"; boundary=abc`. */
export function parseMediaType(value: string): MediaType {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (quoted && c === '\\' && i + 1 < value.length) {
      current += c + value[++i];
    } else if (c === '"') {
      quoted = !quoted;
      current += c;
    } else if (c === ';' && !quoted) {
      parts.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  parts.push(current);
  const parameters: Record<string, string> = {};
  for (const part of parts.slice(1)) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim().toLowerCase();
    let raw = part.slice(eq + 1).trim();
    if (raw.startsWith('"') && raw.endsWith('"') && raw.length >= 2) raw = raw.slice(1, -1).replace(/\\(.)/g, '$1');
    if (name) parameters[name] = raw;
  }
  return { type: parts[0].trim().toLowerCase(), parameters };
}

const CR = 13;
const LF = 10;
const DASH = 45;

function isLineBreakAt(bytes: Uint8Array, at: number): number {
  if (bytes[at] === CR && bytes[at + 1] === LF) return 2;
  if (bytes[at] === LF) return 1;
  return 0;
}

function parseHeaders(text: string): Record<string, string> {
  const headers: Record<string, string> = {};
  let last = '';
  for (const line of text.split(/\r?\n/)) {
    if (line === '') continue;
    if ((line[0] === ' ' || line[0] === '\t') && last) {
      headers[last] += ` ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    last = line.slice(0, colon).trim().toLowerCase();
    headers[last] = line.slice(colon + 1).trim();
  }
  return headers;
}

/**
 * Splits a multipart body into its parts. `contentType` is the response's Content-Type header (the boundary is
 * read from it). Throws `dicomweb_bad_response` when there is no boundary, no first delimiter, or the body ends
 * before the closing delimiter (a truncated transfer).
 */
export function parseMultipart(body: Uint8Array, contentType: string, url?: string): MultipartPart[] {
  const media = parseMediaType(contentType);
  if (!media.type.startsWith('multipart/')) {
    throw new DicomwebError('dicomweb_bad_response', `expected a multipart response, got Content-Type ${contentType}`, {
      url,
    });
  }
  const boundary = media.parameters.boundary;
  if (!boundary) {
    throw new DicomwebError('dicomweb_bad_response', `multipart Content-Type without a boundary: ${contentType}`, {
      url,
    });
  }
  const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const delimiter = Buffer.from(`--${boundary}`, 'latin1');
  // The first delimiter: at the very start, or after a preamble ending in a line break.
  let at = bytes.indexOf(delimiter);
  while (at > 0 && bytes[at - 1] !== LF) at = bytes.indexOf(delimiter, at + 1);
  if (at < 0) {
    throw new DicomwebError('dicomweb_bad_response', `multipart body has no "--${boundary}" delimiter`, { url });
  }
  const parts: MultipartPart[] = [];
  for (;;) {
    let cursor = at + delimiter.length;
    if (bytes[cursor] === DASH && bytes[cursor + 1] === DASH) return parts; // the close delimiter
    while (bytes[cursor] === 32 || bytes[cursor] === 9) cursor++; // transport padding
    const afterDelimiter = isLineBreakAt(bytes, cursor);
    if (afterDelimiter === 0) {
      if (cursor >= bytes.length) break;
      throw new DicomwebError('dicomweb_bad_response', 'multipart delimiter not followed by a line break', { url });
    }
    cursor += afterDelimiter;
    // Headers end at the first empty line (a part without headers starts with that empty line).
    let headerEnd: number;
    let bodyStart: number;
    const blank = isLineBreakAt(bytes, cursor);
    if (blank > 0) {
      headerEnd = cursor;
      bodyStart = cursor + blank;
    } else {
      const crlf = bytes.indexOf('\r\n\r\n', cursor, 'latin1');
      const lf = bytes.indexOf('\n\n', cursor, 'latin1');
      if (crlf < 0 && lf < 0) break;
      if (crlf >= 0 && (lf < 0 || crlf < lf)) {
        headerEnd = crlf;
        bodyStart = crlf + 4;
      } else {
        headerEnd = lf;
        bodyStart = lf + 2;
      }
    }
    const headers = parseHeaders(bytes.toString('latin1', cursor, headerEnd));
    // The body ends at the line break before the next delimiter.
    let next = bytes.indexOf(delimiter, bodyStart);
    while (next >= 0 && bytes[next - 1] !== LF) next = bytes.indexOf(delimiter, next + 1);
    if (next < 0) break;
    const bodyEnd = next - (bytes[next - 2] === CR && next - 2 >= bodyStart ? 2 : 1);
    parts.push({
      headers,
      mediaType: headers['content-type'] ? parseMediaType(headers['content-type']).type : 'application/octet-stream',
      body: new Uint8Array(bytes.buffer, bytes.byteOffset + bodyStart, Math.max(0, bodyEnd - bodyStart)),
    });
    at = next;
  }
  throw new DicomwebError(
    'dicomweb_bad_response',
    `multipart body ends without its closing "--${boundary}--" (truncated after ${parts.length} part(s))`,
    { url },
  );
}

export interface MultipartBody {
  body: Uint8Array;
  /** The request's Content-Type, boundary included. */
  contentType: string;
}

/** Builds a multipart/related body whose root type is `type` (e.g. application/dicom), one part per item. */
export function buildMultipart(
  parts: readonly { body: Uint8Array; contentType?: string }[],
  options: { type: string; boundary?: string },
): MultipartBody {
  let boundary = options.boundary ?? `fedcxr-${randomUUID()}`;
  const clashes = (b: string) => parts.some((p) => Buffer.from(p.body).indexOf(`--${b}`, 0, 'latin1') >= 0);
  while (clashes(boundary)) {
    if (options.boundary) throw new Error(`the boundary "${boundary}" occurs in a part`);
    boundary = `fedcxr-${randomUUID()}`;
  }
  const chunks: Buffer[] = [];
  for (const part of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: ${part.contentType ?? options.type}\r\n\r\n`, 'latin1'));
    chunks.push(Buffer.from(part.body.buffer, part.body.byteOffset, part.body.byteLength));
    chunks.push(Buffer.from('\r\n', 'latin1'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`, 'latin1'));
  const body = Buffer.concat(chunks);
  return {
    body: new Uint8Array(body.buffer, body.byteOffset, body.byteLength),
    contentType: `multipart/related; type="${options.type}"; boundary=${boundary}`,
  };
}
