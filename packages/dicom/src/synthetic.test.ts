import { deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { DicomError } from './errors.js';
import { normalize } from './normalize.js';
import { readDicom, readDicomHeader } from './read.js';

/** One data element for the little test writer below: tag, VR and raw value bytes. */
type Element = [group: number, element: number, vr: string, value: Uint8Array];

const LONG_VRS = new Set(['OB', 'OW', 'SQ', 'UN', 'UT', 'OF', 'UC', 'UR']);

const text = (value: string): Uint8Array => {
  const bytes = new TextEncoder().encode(value.length % 2 ? `${value} ` : value);
  return bytes;
};
const uid = (value: string): Uint8Array => {
  const bytes = new Uint8Array(value.length + (value.length % 2));
  bytes.set(new TextEncoder().encode(value));
  return bytes;
};
const us = (...values: number[]): Uint8Array => {
  const bytes = new Uint8Array(2 * values.length);
  const view = new DataView(bytes.buffer);
  for (const [i, v] of values.entries()) view.setUint16(2 * i, v, true);
  return bytes;
};
const words = (values: number[], littleEndian = true): Uint8Array => {
  const bytes = new Uint8Array(2 * values.length);
  const view = new DataView(bytes.buffer);
  for (const [i, v] of values.entries()) view.setUint16(2 * i, v & 0xffff, littleEndian);
  return bytes;
};

function encodeElements(elements: Element[], littleEndian = true): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [group, element, vr, value] of elements) {
    const long = LONG_VRS.has(vr);
    const header = new Uint8Array(long ? 12 : 8);
    const view = new DataView(header.buffer);
    view.setUint16(0, group, littleEndian);
    view.setUint16(2, element, littleEndian);
    header[4] = vr.charCodeAt(0);
    header[5] = vr.charCodeAt(1);
    if (long) view.setUint32(8, value.length, littleEndian);
    else view.setUint16(6, value.length, littleEndian);
    // Helpers write values little endian; swap the 16-bit ones for a big endian data set.
    const swapped = !littleEndian && (vr === 'US' || vr === 'OW' || vr === 'SS') ? swap16(value) : value;
    parts.push(header, swapped);
  }
  return concat(parts);
}

function swap16(value: Uint8Array): Uint8Array {
  const out = new Uint8Array(value.length);
  for (let i = 0; i + 1 < value.length; i += 2) {
    out[i] = value[i + 1];
    out[i + 1] = value[i];
  }
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** A Part 10 file: preamble, DICM, file meta (explicit LE), then the data set in `transferSyntax`. */
function part10(dataSet: Element[], transferSyntax: string): Uint8Array {
  const meta = encodeElements([
    [0x0002, 0x0001, 'OB', new Uint8Array([0, 1])],
    [0x0002, 0x0002, 'UI', uid('1.2.840.10008.5.1.4.1.1.7')],
    [0x0002, 0x0003, 'UI', uid('1.2.3.4.5')],
    [0x0002, 0x0010, 'UI', uid(transferSyntax)],
  ]);
  const groupLength = encodeElements([[0x0002, 0x0000, 'UL', new Uint8Array(new Uint32Array([meta.length]).buffer)]]);
  const bigEndian = transferSyntax === '1.2.840.10008.1.2.2';
  let body = encodeElements(dataSet, !bigEndian);
  if (transferSyntax === '1.2.840.10008.1.2.1.99') body = new Uint8Array(deflateRawSync(body));
  const prefix = new Uint8Array(132);
  prefix.set(new TextEncoder().encode('DICM'), 128);
  return concat([prefix, groupLength, meta, body]);
}

function image(rows: number, columns: number, frames: number[][], extra: Element[] = []): Element[] {
  return [
    [0x0008, 0x0060, 'CS', text('CR')],
    [0x0010, 0x0020, 'LO', text('P1')],
    [0x0028, 0x0002, 'US', us(1)],
    [0x0028, 0x0004, 'CS', text('MONOCHROME2')],
    ...(frames.length > 1 ? ([[0x0028, 0x0008, 'IS', text(String(frames.length))]] as Element[]) : []),
    [0x0028, 0x0010, 'US', us(rows)],
    [0x0028, 0x0011, 'US', us(columns)],
    [0x0028, 0x0100, 'US', us(16)],
    [0x0028, 0x0101, 'US', us(12)],
    [0x0028, 0x0102, 'US', us(11)],
    [0x0028, 0x0103, 'US', us(0)],
    ...extra,
    [0x7fe0, 0x0010, 'OW', words(frames.flat())],
  ].sort(
    (a, b) => (a[0] as number) * 65536 + (a[1] as number) - ((b[0] as number) * 65536 + (b[1] as number)),
  ) as Element[];
}

const frameA = [0, 1, 2, 3, 4, 4095];
const frameB = [10, 20, 30, 40, 50, 60];
const frameC = [4095, 0, 4095, 0, 4095, 0];

describe('synthetic files written here (multi-frame, deflated, big endian, stored-bit masking, LUT sequences)', () => {
  it('multi-frame: frame 0 by default, all or a selection on request', async () => {
    const bytes = part10(image(2, 3, [frameA, frameB, frameC]), '1.2.840.10008.1.2.1');
    const first = await readDicom(bytes);
    expect(first.frameCount).toBe(3);
    expect(first.frames.map((f) => Array.from(f.stored))).toEqual([frameA]);
    const all = await readDicom(bytes, { frames: 'all' });
    expect(all.frames.map((f) => Array.from(f.stored))).toEqual([frameA, frameB, frameC]);
    const some = await readDicom(bytes, { frames: [2, 1] });
    expect(some.frames.map((f) => Array.from(f.stored))).toEqual([frameC, frameB]);
    await expect(readDicom(bytes, { frames: [3], file: 'x.dcm' })).rejects.toMatchObject({ code: 'invalid_header' });
  });

  it('deflated explicit VR little endian reads like the plain file', async () => {
    const plain = await readDicom(part10(image(2, 3, [frameA]), '1.2.840.10008.1.2.1'));
    const deflated = await readDicom(part10(image(2, 3, [frameA]), '1.2.840.10008.1.2.1.99'));
    expect(deflated.header.transferSyntaxName).toBe('Deflated Explicit VR Little Endian');
    expect(Array.from(deflated.frames[0].stored)).toEqual(Array.from(plain.frames[0].stored));
  });

  it('explicit big endian swaps the 16-bit samples', async () => {
    const big = await readDicom(part10(image(2, 3, [frameA]), '1.2.840.10008.1.2.2'));
    expect(Array.from(big.frames[0].stored)).toEqual(frameA);
  });

  it('masks bits above Bits Stored and sign-extends signed data', async () => {
    // 12 bits stored: 0xF123 keeps 0x123; as signed, 0x0800 becomes −2048.
    const raw = [0xf123, 0x0800, 0x07ff, 0xffff, 0, 1];
    const unsigned = await readDicom(part10(image(2, 3, [raw]), '1.2.840.10008.1.2.1'));
    expect(Array.from(unsigned.frames[0].stored)).toEqual([0x123, 0x800, 0x7ff, 0xfff, 0, 1]);
    const signedSet = image(2, 3, [raw]).map((e) =>
      e[0] === 0x0028 && e[1] === 0x0103 ? ([0x0028, 0x0103, 'US', us(1)] as Element) : e,
    );
    const signed = await readDicom(part10(signedSet, '1.2.840.10008.1.2.1'));
    expect(Array.from(signed.frames[0].stored)).toEqual([0x123, -2048, 2047, -1, 0, 1]);
  });

  it('reads a Modality LUT Sequence and a VOI LUT Sequence from the file and applies them', async () => {
    const item = (elements: Element[]) => {
      const body = encodeElements(elements);
      const head = new Uint8Array(8);
      const view = new DataView(head.buffer);
      view.setUint16(0, 0xfffe, true);
      view.setUint16(2, 0xe000, true);
      view.setUint32(4, body.length, true);
      return concat([head, body]);
    };
    const modalityLut = item([
      [0x0028, 0x3002, 'US', us(4, 0, 16)],
      [0x0028, 0x3004, 'LO', text('OD')],
      [0x0028, 0x3006, 'OW', words([100, 201, 202, 400])],
    ]);
    const voiLut = item([
      [0x0028, 0x3002, 'US', us(3, 200, 8)],
      [0x0028, 0x3006, 'OW', words([0, 128, 255])],
    ]);
    const extra: Element[] = [
      [0x0028, 0x3000, 'SQ', modalityLut],
      [0x0028, 0x3010, 'SQ', voiLut],
    ];
    const bytes = part10(image(2, 3, [[0, 1, 2, 3, 9, 0]], extra), '1.2.840.10008.1.2.1');
    const header = await readDicomHeader(bytes);
    expect(header.modalityLutSequence?.[0]).toMatchObject({ entries: 4, firstMapped: 0, bitsPerEntry: 16, type: 'OD' });
    expect(Array.from(header.modalityLutSequence?.[0].data ?? [])).toEqual([100, 201, 202, 400]);
    const out = normalize(await readDicom(bytes), 'window');
    // stored 0, 1, 2, 3 → 100, 201, 202, 400 (9 clamps to the last entry) → VOI LUT from 200: 0, 128, 255, 255.
    expect(Array.from(out.data)).toEqual([0, 128 / 255, 1, 1, 1, 0].map(Math.fround));
  });

  it('gives typed errors for an unsupported transfer syntax and for bad geometry', async () => {
    const hevc = part10(image(2, 3, [frameA]), '1.2.840.10008.1.2.4.107');
    const error = await readDicom(hevc, { file: 'hevc.dcm' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DicomError);
    expect((error as DicomError).code).toBe('unsupported_transfer_syntax');
    expect((error as DicomError).message).toContain('hevc.dcm');
    const noRows = part10(
      image(2, 3, [frameA]).filter((e) => !(e[0] === 0x0028 && e[1] === 0x0010)),
      '1.2.840.10008.1.2.1',
    );
    await expect(readDicom(noRows)).rejects.toMatchObject({ code: 'invalid_header' });
    await expect(readDicom(new TextEncoder().encode('hello, not a dicom file at all'))).rejects.toMatchObject({
      code: 'not_dicom',
    });
    await expect(readDicom('/nonexistent/file.dcm')).rejects.toMatchObject({ code: 'read_failed' });
  });

  it('native 8-bit grey: bytes kept as a Uint8Array (per frame, with their range); fewer bits stored are masked', async () => {
    const eightBit = (bitsStored: number, frames: number[][]): Element[] =>
      image(2, 3, frames)
        .filter((e) => !(e[0] === 0x7fe0 || (e[0] === 0x0028 && [0x0100, 0x0101, 0x0102].includes(e[1]))))
        .concat([
          [0x0028, 0x0100, 'US', us(8)],
          [0x0028, 0x0101, 'US', us(bitsStored)],
          [0x0028, 0x0102, 'US', us(bitsStored - 1)],
          [0x7fe0, 0x0010, 'OB', Uint8Array.from(frames.flat())],
        ])
        .sort((a, b) => a[0] * 65536 + a[1] - (b[0] * 65536 + b[1]));
    const frames = [
      [7, 200, 255, 3, 9, 11],
      [50, 40, 30, 20, 10, 128],
    ];
    const all = await readDicom(part10(eightBit(8, frames), '1.2.840.10008.1.2.1'), { frames: 'all' });
    for (const [k, frame] of all.frames.entries()) {
      expect(frame.stored).toBeInstanceOf(Uint8Array);
      expect(Array.from(frame.stored)).toEqual(frames[k]);
    }
    // minmax stretches between the frame's own extremes (the recorded range): 3..255 for frame 0.
    expect(normalize(all, 'minmax').data[0]).toBeCloseTo((7 - 3) / 252, 6);
    expect(normalize(all, 'minmax', { frame: 1 }).data[5]).toBe(1);
    const seven = await readDicom(part10(eightBit(7, frames), '1.2.840.10008.1.2.1'));
    expect(seven.frames[0].stored).toBeInstanceOf(Int32Array);
    expect(Array.from(seven.frames[0].stored)).toEqual(frames[0].map((v) => v & 0x7f));
  });
});
