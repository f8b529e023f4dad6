import { describe, expect, it } from 'vitest';
import { DicomwebError } from './errors.js';
import { buildMultipart, parseMediaType, parseMultipart } from './multipart.js';

const bytes = (text: string) => new Uint8Array(Buffer.from(text, 'latin1'));
const text = (data: Uint8Array) => Buffer.from(data).toString('latin1');

describe('parseMediaType', () => {
  it('reads the type and (quoted, case-insensitive) parameters', () => {
    expect(parseMediaType('Multipart/Related; type="application/dicom"; Boundary=abc')).toEqual({
      type: 'multipart/related',
      parameters: { type: 'application/dicom', boundary: 'abc' },
    });
    expect(parseMediaType('multipart/related; boundary="a;b \\"c\\""; type=application/dicom').parameters).toEqual({
      boundary: 'a;b "c"',
      type: 'application/dicom',
    });
    expect(parseMediaType('application/dicom')).toEqual({ type: 'application/dicom', parameters: {} });
  });
});

describe('parseMultipart', () => {
  it('splits parts on the boundary from the Content-Type, keeping bodies byte for byte', () => {
    const binary = String.fromCharCode(...Array.from({ length: 256 }, (_, i) => i));
    const body = bytes(
      `--XyZ\r\nContent-Type: application/dicom\r\nContent-Length: 256\r\n\r\n${binary}\r\n` +
        '--XyZ\r\nContent-Type: application/dicom; transfer-syntax=1.2.840.10008.1.2.1\r\n\r\nsecond\r\n--XyZ--\r\n',
    );
    const parts = parseMultipart(body, 'multipart/related; type="application/dicom"; boundary=XyZ');
    expect(parts).toHaveLength(2);
    expect(parts[0].mediaType).toBe('application/dicom');
    expect(parts[0].headers['content-length']).toBe('256');
    expect(Array.from(parts[0].body)).toEqual(Array.from({ length: 256 }, (_, i) => i));
    expect(text(parts[1].body)).toBe('second');
    expect(parts[1].headers['content-type']).toBe('application/dicom; transfer-syntax=1.2.840.10008.1.2.1');
  });

  it('allows a preamble, transport padding, LF line breaks, an empty part, no headers and an epilogue', () => {
    const body = bytes(
      'preamble text\r\n--b  \r\nContent-Type: text/plain\r\n\r\n\r\n--b\n\nno headers\n--b\t\r\n' +
        'content-type: application/dicom\r\n\r\n--not-the-boundary--\r\n--b--\r\nepilogue',
    );
    const parts = parseMultipart(body, 'multipart/related; boundary=b');
    expect(parts.map((p) => [p.mediaType, text(p.body)])).toEqual([
      ['text/plain', ''],
      ['application/octet-stream', 'no headers'],
      ['application/dicom', '--not-the-boundary--'],
    ]);
  });

  it('does not take the boundary inside a body for a delimiter unless it starts a line', () => {
    const parts = parseMultipart(bytes('--b\r\n\r\nx--b y\r\n--b--'), 'multipart/related; boundary=b');
    expect(text(parts[0].body)).toBe('x--b y');
  });

  it('refuses a missing boundary, a non-multipart type, no delimiter and a truncated body', () => {
    const expectBad = (run: () => unknown, message: RegExp) => {
      try {
        run();
        expect.unreachable();
      } catch (error) {
        expect(error).toBeInstanceOf(DicomwebError);
        expect((error as DicomwebError).code).toBe('dicomweb_bad_response');
        expect((error as Error).message).toMatch(message);
      }
    };
    expectBad(() => parseMultipart(bytes('--b--'), 'multipart/related'), /without a boundary/);
    expectBad(() => parseMultipart(bytes('{}'), 'application/json'), /expected a multipart/);
    expectBad(() => parseMultipart(bytes('hello'), 'multipart/related; boundary=b'), /no "--b" delimiter/);
    expectBad(
      () => parseMultipart(bytes('--b\r\n\r\nfirst\r\n--b\r\n\r\nsecond, cut'), 'multipart/related; boundary=b'),
      /truncated after 1 part/,
    );
  });
});

describe('buildMultipart', () => {
  it('round-trips through parseMultipart with the Content-Type it returns', () => {
    const files = [bytes('DICM one'), new Uint8Array([0, 13, 10, 45, 45, 255]), new Uint8Array(0)];
    const built = buildMultipart(
      files.map((body) => ({ body })),
      { type: 'application/dicom' },
    );
    expect(built.contentType).toMatch(/^multipart\/related; type="application\/dicom"; boundary=fedcxr-/);
    const parts = parseMultipart(built.body, built.contentType);
    expect(parts.map((p) => Array.from(p.body))).toEqual(files.map((f) => Array.from(f)));
    expect(parts.every((p) => p.mediaType === 'application/dicom')).toBe(true);
  });

  it('writes the standard layout and never uses a boundary that occurs in a part', () => {
    const built = buildMultipart([{ body: bytes('abc') }], { type: 'application/dicom', boundary: 'B' });
    expect(text(built.body)).toBe('--B\r\nContent-Type: application/dicom\r\n\r\nabc\r\n--B--\r\n');
    expect(() => buildMultipart([{ body: bytes('x--B') }], { type: 'application/dicom', boundary: 'B' })).toThrow(
      /occurs in a part/,
    );
  });
});
