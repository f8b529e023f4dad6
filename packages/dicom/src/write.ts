/**
 * Writes a single-frame grey DICOM file (Part 10: 128-byte preamble, "DICM", file meta information, then
 * the data set) in Explicit VR Little Endian, uncompressed, 16 bits allocated. Written by hand, not with
 * dcmjs, because the element set is small and fixed and every byte is then under test.
 */
import { createHash } from 'node:crypto';
import { FedcxrError, writeFileAtomic } from '@fedcxr/base';

export const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';
/** Computed Radiography Image Storage. */
export const CR_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.1';
/** The implementation UID of files fedcxr writes (a 2.25 UUID-derived UID, fixed). */
export const FEDCXR_IMPLEMENTATION_UID = uidFromText('fedcxr implementation');

export interface DicomImageToWrite {
  width: number;
  height: number;
  /** Stored values, row-major, each in [0, 2^bitsStored). */
  pixels: Uint16Array;
  /** 8..16; default 16. Bits allocated is always 16. */
  bitsStored?: number;
  /** MONOCHROME1: the lowest value is shown white (the seed's hospital export); default MONOCHROME2. */
  photometric?: 'MONOCHROME1' | 'MONOCHROME2';
  windowCenter?: number;
  windowWidth?: number;
  /** LOG: stored values are proportional to the log of the X-ray intensity; LIN: linear. Omitted when unset. */
  pixelIntensityRelationship?: 'LIN' | 'LOG';
  patientId: string;
  patientName?: string;
  studyInstanceUid?: string;
  seriesInstanceUid?: string;
  sopInstanceUid?: string;
  instanceNumber?: number;
  /** YYYYMMDD. */
  studyDate?: string;
  /** Default CR. */
  modality?: string;
  /** Default CHEST. */
  bodyPartExamined?: string;
}

/**
 * A deterministic DICOM UID for a piece of text: `2.25.` followed by the decimal value of the first 128 bits
 * of its SHA-256 (the UUID-derived UID root of PS3.5 B.2). Same text, same UID.
 */
export function uidFromText(text: string): string {
  const digest = createHash('sha256').update(text).digest();
  let value = 0n;
  for (let i = 0; i < 16; i++) value = (value << 8n) | BigInt(digest[i]);
  return `2.25.${value.toString()}`;
}

/** Encodes the image as DICOM Part 10 bytes. Invalid input throws a FedcxrError saying what is wrong. */
export function encodeDicom(image: DicomImageToWrite): Uint8Array {
  const bitsStored = image.bitsStored ?? 16;
  validate(image, bitsStored);
  const sopInstanceUid = image.sopInstanceUid ?? uidFromText(`sop:${image.patientId}:${image.instanceNumber ?? 1}`);
  const studyUid = image.studyInstanceUid ?? uidFromText(`study:${image.patientId}`);
  const seriesUid = image.seriesInstanceUid ?? uidFromText(`series:${studyUid}`);

  const meta: Element[] = [
    element(0x0002, 0x0001, 'OB', new Uint8Array([0, 1])),
    element(0x0002, 0x0002, 'UI', text(CR_IMAGE_STORAGE, 0)),
    element(0x0002, 0x0003, 'UI', text(sopInstanceUid, 0)),
    element(0x0002, 0x0010, 'UI', text(EXPLICIT_VR_LITTLE_ENDIAN, 0)),
    element(0x0002, 0x0012, 'UI', text(FEDCXR_IMPLEMENTATION_UID, 0)),
    element(0x0002, 0x0013, 'SH', text('FEDCXR_0_1', 0x20)),
  ];
  const metaBody = concat(meta.map(encodeElement));
  const groupLength = encodeElement(element(0x0002, 0x0000, 'UL', u32(metaBody.length)));

  const data: Element[] = [
    element(0x0008, 0x0016, 'UI', text(CR_IMAGE_STORAGE, 0)),
    element(0x0008, 0x0018, 'UI', text(sopInstanceUid, 0)),
    element(0x0008, 0x0060, 'CS', text(image.modality ?? 'CR', 0x20)),
    element(0x0010, 0x0010, 'PN', text(image.patientName ?? image.patientId, 0x20)),
    element(0x0010, 0x0020, 'LO', text(image.patientId, 0x20)),
    element(0x0018, 0x0015, 'CS', text(image.bodyPartExamined ?? 'CHEST', 0x20)),
    element(0x0020, 0x000d, 'UI', text(studyUid, 0)),
    element(0x0020, 0x000e, 'UI', text(seriesUid, 0)),
    element(0x0020, 0x0013, 'IS', text(String(image.instanceNumber ?? 1), 0x20)),
    element(0x0028, 0x0002, 'US', u16(1)),
    element(0x0028, 0x0004, 'CS', text(image.photometric ?? 'MONOCHROME2', 0x20)),
    element(0x0028, 0x0010, 'US', u16(image.height)),
    element(0x0028, 0x0011, 'US', u16(image.width)),
    element(0x0028, 0x0100, 'US', u16(16)),
    element(0x0028, 0x0101, 'US', u16(bitsStored)),
    element(0x0028, 0x0102, 'US', u16(bitsStored - 1)),
    element(0x0028, 0x0103, 'US', u16(0)),
    element(0x7fe0, 0x0010, 'OW', littleEndianWords(image.pixels)),
  ];
  if (image.studyDate !== undefined) data.push(element(0x0008, 0x0020, 'DA', text(image.studyDate, 0x20)));
  if (image.pixelIntensityRelationship !== undefined) {
    data.push(element(0x0028, 0x1040, 'CS', text(image.pixelIntensityRelationship, 0x20)));
  }
  if (image.windowCenter !== undefined && image.windowWidth !== undefined) {
    data.push(element(0x0028, 0x1050, 'DS', text(decimalString(image.windowCenter), 0x20)));
    data.push(element(0x0028, 0x1051, 'DS', text(decimalString(image.windowWidth), 0x20)));
  }
  data.sort((a, b) => a.group - b.group || a.element - b.element);

  const preamble = new Uint8Array(128);
  const magic = new TextEncoder().encode('DICM');
  return concat([preamble, magic, groupLength, metaBody, ...data.map(encodeElement)]);
}

/** Encodes and writes atomically. */
export async function writeDicom(path: string, image: DicomImageToWrite): Promise<void> {
  let bytes: Uint8Array;
  try {
    bytes = encodeDicom(image);
  } catch (error) {
    if (error instanceof FedcxrError) throw new FedcxrError(error.code, error.message, { file: path, cause: error });
    throw error;
  }
  await writeFileAtomic(path, bytes);
}

interface Element {
  group: number;
  element: number;
  vr: string;
  value: Uint8Array;
}

/** VRs whose explicit-VR header has 2 reserved bytes and a 32-bit length. */
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);

function element(group: number, elementNumber: number, vr: string, value: Uint8Array): Element {
  return { group, element: elementNumber, vr, value };
}

function encodeElement({ group, element: elementNumber, vr, value }: Element): Uint8Array {
  const long = LONG_VRS.has(vr);
  const header = new Uint8Array(long ? 12 : 8);
  const view = new DataView(header.buffer);
  view.setUint16(0, group, true);
  view.setUint16(2, elementNumber, true);
  header[4] = vr.charCodeAt(0);
  header[5] = vr.charCodeAt(1);
  if (long) view.setUint32(8, value.length, true);
  else {
    if (value.length > 0xffff) throw new FedcxrError('dicom_unwritable', `value of ${vr} element too long`);
    view.setUint16(6, value.length, true);
  }
  return concat([header, value]);
}

/** ASCII text padded to even length (UIDs with NUL, other strings with a space, as PS3.5 6.2 requires). */
function text(value: string, pad: 0 | 0x20): Uint8Array {
  const bytes = new TextEncoder().encode(value);
  if (bytes.length % 2 === 0) return bytes;
  const padded = new Uint8Array(bytes.length + 1);
  padded.set(bytes);
  padded[bytes.length] = pad;
  return padded;
}

function u16(value: number): Uint8Array {
  const out = new Uint8Array(2);
  new DataView(out.buffer).setUint16(0, value, true);
  return out;
}

function u32(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value, true);
  return out;
}

function littleEndianWords(words: Uint16Array): Uint8Array {
  const out = new Uint8Array(words.length * 2);
  const view = new DataView(out.buffer);
  for (let i = 0; i < words.length; i++) view.setUint16(i * 2, words[i], true);
  return out;
}

/** DS values are at most 16 characters. */
function decimalString(value: number): string {
  const plain = String(value);
  if (plain.length <= 16) return plain;
  return Number(value.toPrecision(10)).toString();
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function validate(image: DicomImageToWrite, bitsStored: number): void {
  const fail = (message: string) => new FedcxrError('dicom_unwritable', message);
  if (!Number.isInteger(bitsStored) || bitsStored < 8 || bitsStored > 16) {
    throw fail(`bitsStored must be an integer from 8 to 16, got ${bitsStored}`);
  }
  if (!Number.isInteger(image.width) || !Number.isInteger(image.height) || image.width < 1 || image.height < 1) {
    throw fail(`image size must be positive integers, got ${image.width}x${image.height}`);
  }
  if (image.width > 0xffff || image.height > 0xffff) throw fail('rows and columns must fit in 16 bits');
  if (image.pixels.length !== image.width * image.height) {
    throw fail(`expected ${image.width * image.height} pixels, got ${image.pixels.length}`);
  }
  const limit = 2 ** bitsStored;
  for (let i = 0; i < image.pixels.length; i++) {
    if (image.pixels[i] >= limit) {
      throw fail(`pixel ${i} is ${image.pixels[i]}, outside the ${bitsStored}-bit range [0, ${limit - 1}]`);
    }
  }
  if (image.patientId.length === 0 || image.patientId.length > 64) throw fail('patientId must be 1..64 characters');
  if ((image.windowCenter === undefined) !== (image.windowWidth === undefined)) {
    throw fail('windowCenter and windowWidth go together');
  }
  if (image.windowWidth !== undefined && !(image.windowWidth >= 1)) throw fail('windowWidth must be at least 1');
  for (const uid of [image.studyInstanceUid, image.seriesInstanceUid, image.sopInstanceUid]) {
    if (uid !== undefined && !/^[0-9]+(\.[0-9]+)*$/.test(uid)) throw fail(`"${uid}" is not a valid UID`);
    if (uid !== undefined && uid.length > 64) throw fail(`UID "${uid}" is longer than 64 characters`);
  }
}
