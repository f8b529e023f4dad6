import { inflateRawSync } from 'node:zlib';
import dicomParser, { type DataSet, type Element } from 'dicom-parser';
import { DicomError, thrownMessage } from './errors.js';
import {
  EXPLICIT_VR_LITTLE_ENDIAN,
  IMPLICIT_VR_LITTLE_ENDIAN,
  type TransferSyntax,
  transferSyntax,
} from './transfer-syntax.js';

export interface ParsedDicom {
  dataSet: DataSet;
  syntax: TransferSyntax;
  /** 128-byte preamble followed by "DICM". */
  hasPreamble: boolean;
  /** File meta information group (0002,xxxx) present. */
  hasFileMeta: boolean;
  /** Where the transfer syntax came from: the file meta, or guessed from the first element of an ACR-NEMA file. */
  transferSyntaxSource: 'file meta (0002,0010)' | 'inferred';
  /** Set when the data set ends before its last element does: the header is usable, the pixels are not. */
  truncation: string | null;
}

const PIXEL_DATA = 'x7fe00010';
const VR_CODES = new Set(
  'AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV'.split(' '),
);

function ascii(bytes: Uint8Array, start: number, length: number): string {
  let text = '';
  for (let i = start; i < start + length && i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
  return text;
}

/**
 * Files without "DICM" at 128 may be old ACR-NEMA data sets that start straight at the first element.
 * Accept them only when the first element looks like one (an even group from the usual header groups,
 * a sane length), and tell implicit from explicit VR by whether bytes 4-5 spell a VR.
 */
function inferRawSyntax(bytes: Uint8Array): string | null {
  if (bytes.length < 12) return null;
  const group = bytes[0] | (bytes[1] << 8);
  if (group !== 0x0000 && group !== 0x0002 && group !== 0x0008) return null;
  const vr = ascii(bytes, 4, 2);
  if (VR_CODES.has(vr)) return EXPLICIT_VR_LITTLE_ENDIAN;
  const length = (bytes[4] | (bytes[5] << 8) | (bytes[6] << 16) | (bytes[7] << 24)) >>> 0;
  if (length > bytes.length) return null;
  return IMPLICIT_VR_LITTLE_ENDIAN;
}

/**
 * Deflated data sets: dicom-parser's own Node path calls Buffer#copy, which plain Uint8Arrays lack, so inflate here:
 * the file meta bytes as they are, followed by the raw-inflated rest.
 */
function inflater(bytes: Uint8Array, position: number): Uint8Array {
  const inflated = inflateRawSync(bytes.subarray(position));
  const out = new Uint8Array(position + inflated.length);
  out.set(bytes.subarray(0, position), 0);
  out.set(inflated, position);
  return out;
}

/** Parses a whole DICOM file; every failure becomes a DicomError naming `file`. */
export function parseDicomBytes(bytes: Uint8Array, file: string): ParsedDicom {
  const hasPreamble = bytes.length >= 132 && ascii(bytes, 128, 4) === 'DICM';
  let rawSyntax: string | null = null;
  if (!hasPreamble) {
    rawSyntax = inferRawSyntax(bytes);
    if (rawSyntax === null) {
      throw new DicomError(
        'not_dicom',
        bytes.length < 132
          ? `not a DICOM file (${bytes.length} bytes, no DICM prefix and no recognizable data set)`
          : 'not a DICOM file (no "DICM" at byte 128 and no recognizable ACR-NEMA data set)',
        { file },
      );
    }
  }
  let dataSet: DataSet;
  let truncation: string | null = null;
  try {
    dataSet = dicomParser.parseDicom(bytes, rawSyntax ? { TransferSyntaxUID: rawSyntax, inflater } : { inflater });
  } catch (thrown) {
    const message = thrownMessage(thrown);
    const partial = (thrown as { dataSet?: DataSet } | null)?.dataSet;
    if (/overrun|eof|end of|beyond|past the end|truncat|Offset is outside|outside the bounds/i.test(message)) {
      truncation = describeTruncation(partial, bytes.length, message);
      if (!partial) throw new DicomError('truncated', truncation, { file, cause: thrown });
      dataSet = partial;
      if (hasPreamble) mergeFileMeta(dataSet, bytes);
    } else if (/meta header attribute 0002,0010/.test(message)) {
      throw new DicomError('invalid_header', 'file meta has no Transfer Syntax UID (0002,0010)', { file });
    } else {
      throw new DicomError('not_dicom', `cannot parse the DICOM data set (${message})`, { file, cause: thrown });
    }
  }
  const uid = hasPreamble ? (dataSet.string('x00020010') ?? '').replace(/\0/g, '').trim() : (rawSyntax as string);
  return {
    dataSet,
    syntax: transferSyntax(uid),
    hasPreamble,
    hasFileMeta: hasPreamble && dataSet.elements.x00020010 !== undefined,
    transferSyntaxSource: hasPreamble ? 'file meta (0002,0010)' : 'inferred',
    truncation,
  };
}

/** dicom-parser hands back the partial data set without the file meta group; read that group on its own. */
function mergeFileMeta(dataSet: DataSet, bytes: Uint8Array): void {
  try {
    const meta = dicomParser.readPart10Header(bytes);
    for (const [tag, element] of Object.entries(meta.elements)) dataSet.elements[tag] ??= element;
  } catch {
    // The truncation is reported anyway; a missing meta group only leaves header facts null.
  }
}

function describeTruncation(partial: DataSet | undefined, size: number, message: string): string {
  const last = partial ? Object.values(partial.elements).at(-1) : undefined;
  if (last && last.tag === 'x7fe00010' && !last.encapsulatedPixelData) {
    const present = Math.max(0, size - last.dataOffset);
    return `file is truncated: Pixel Data declares ${last.length} bytes but only ${present} are present`;
  }
  return `file is truncated: the data set ends early (${message})`;
}

/** A lookup table from a Modality or VOI LUT Sequence item. */
export interface DicomLut {
  /** Number of entries (a descriptor value of 0 means 65536). */
  entries: number;
  /** First stored (or modality) value mapped; inputs below map to entry 0, above to the last entry. */
  firstMapped: number;
  bitsPerEntry: number;
  data: Uint16Array;
  /** Modality LUT Type (0028,3004) or LUT Explanation (0028,3003) when present. */
  type: string | null;
}

/** Header facts a reader of chest X-rays needs; absent attributes are null. */
export interface DicomHeader {
  transferSyntaxUid: string;
  transferSyntaxName: string;
  transferSyntaxSource: string;
  hasPreamble: boolean;
  hasFileMeta: boolean;
  sopClassUid: string | null;
  sopInstanceUid: string | null;
  studyInstanceUid: string | null;
  seriesInstanceUid: string | null;
  patientId: string | null;
  modality: string | null;
  bodyPartExamined: string | null;
  photometricInterpretation: string | null;
  rows: number | null;
  columns: number | null;
  samplesPerPixel: number | null;
  bitsAllocated: number | null;
  bitsStored: number | null;
  highBit: number | null;
  pixelRepresentation: number | null;
  planarConfiguration: number | null;
  /** Parsed Number of Frames; null when absent. An unparsable value makes reading fail with `invalid_header`. */
  numberOfFrames: number | null;
  windowCenter: number[] | null;
  windowWidth: number[] | null;
  windowExplanation: string[] | null;
  voiLutFunction: string | null;
  voiLutSequence: DicomLut[] | null;
  modalityLutSequence: DicomLut[] | null;
  rescaleSlope: number | null;
  rescaleIntercept: number | null;
  rescaleType: string | null;
  pixelIntensityRelationship: string | null;
  pixelIntensityRelationshipSign: number | null;
  lossyImageCompression: string | null;
  pixelDataPresent: boolean;
  pixelDataEncapsulated: boolean;
  pixelDataLength: number | null;
}

function text(dataSet: DataSet, tag: string): string | null {
  const element = dataSet.elements[tag];
  if (!element || element.length === 0) return null;
  const value = dataSet.string(tag);
  if (value === undefined) return null;
  const trimmed = value.replace(/\0/g, '').trim();
  return trimmed === '' ? null : trimmed;
}

function texts(dataSet: DataSet, tag: string): string[] | null {
  const value = text(dataSet, tag);
  return value === null ? null : value.split('\\').map((part) => part.trim());
}

function decimals(dataSet: DataSet, tag: string): number[] | null {
  const parts = texts(dataSet, tag);
  if (parts === null) return null;
  const numbers = parts.filter((part) => part !== '').map(Number);
  return numbers.length > 0 && numbers.every(Number.isFinite) ? numbers : null;
}

function decimal(dataSet: DataSet, tag: string): number | null {
  return decimals(dataSet, tag)?.[0] ?? null;
}

function unsigned16(dataSet: DataSet, tag: string): number | null {
  const element = dataSet.elements[tag];
  if (!element || element.length < 2) return null;
  return dataSet.uint16(tag) ?? null;
}

function signed16(dataSet: DataSet, tag: string): number | null {
  const element = dataSet.elements[tag];
  if (!element || element.length < 2) return null;
  return dataSet.int16(tag) ?? null;
}

function readLutItems(dataSet: DataSet, tag: string, signedInput: boolean): DicomLut[] | null {
  const sequence = dataSet.elements[tag];
  if (!sequence?.items || sequence.items.length === 0) return null;
  const luts: DicomLut[] = [];
  for (const item of sequence.items) {
    const lut = item.dataSet ? readLut(item.dataSet, signedInput) : null;
    if (lut) luts.push(lut);
  }
  return luts.length > 0 ? luts : null;
}

function readLut(item: DataSet, signedInput: boolean): DicomLut | null {
  const descriptor = item.elements.x00283002;
  const dataElement = item.elements.x00283006;
  if (!descriptor || descriptor.length < 6 || !dataElement) return null;
  const entries = (item.uint16('x00283002', 0) ?? 0) || 65536;
  const firstMapped = signedInput ? (item.int16('x00283002', 1) ?? 0) : (item.uint16('x00283002', 1) ?? 0);
  const bitsPerEntry = item.uint16('x00283002', 2) ?? 16;
  const words = Math.min(entries, Math.floor(dataElement.length / 2));
  const data = new Uint16Array(entries);
  for (let i = 0; i < words; i++) data[i] = item.uint16('x00283006', i) ?? 0;
  // 8-bit entries stored one per byte (OB) instead of one per 16-bit word.
  if (bitsPerEntry === 8 && dataElement.length === entries) {
    for (let i = 0; i < entries; i++) data[i] = item.byteArray[dataElement.dataOffset + i];
  }
  return {
    entries,
    firstMapped,
    bitsPerEntry,
    data,
    type: text(item, 'x00283004') ?? text(item, 'x00283003'),
  };
}

export function readHeader(parsed: ParsedDicom): DicomHeader {
  const { dataSet, syntax } = parsed;
  const pixelRepresentation = unsigned16(dataSet, 'x00280103');
  const pixel: Element | undefined = dataSet.elements[PIXEL_DATA];
  const framesText = text(dataSet, 'x00280008');
  let numberOfFrames: number | null = null;
  if (framesText !== null) {
    numberOfFrames = /^[+]?\d+$/.test(framesText) ? Number(framesText) : Number.NaN;
  }
  return {
    transferSyntaxUid: syntax.uid,
    transferSyntaxName: syntax.name,
    transferSyntaxSource: parsed.transferSyntaxSource,
    hasPreamble: parsed.hasPreamble,
    hasFileMeta: parsed.hasFileMeta,
    sopClassUid: text(dataSet, 'x00080016') ?? text(dataSet, 'x00020002'),
    sopInstanceUid: text(dataSet, 'x00080018') ?? text(dataSet, 'x00020003'),
    studyInstanceUid: text(dataSet, 'x0020000d'),
    seriesInstanceUid: text(dataSet, 'x0020000e'),
    patientId: text(dataSet, 'x00100020'),
    modality: text(dataSet, 'x00080060'),
    bodyPartExamined: text(dataSet, 'x00180015'),
    photometricInterpretation: text(dataSet, 'x00280004'),
    rows: unsigned16(dataSet, 'x00280010'),
    columns: unsigned16(dataSet, 'x00280011'),
    samplesPerPixel: unsigned16(dataSet, 'x00280002'),
    bitsAllocated: unsigned16(dataSet, 'x00280100'),
    bitsStored: unsigned16(dataSet, 'x00280101'),
    highBit: unsigned16(dataSet, 'x00280102'),
    pixelRepresentation,
    planarConfiguration: unsigned16(dataSet, 'x00280006'),
    numberOfFrames,
    windowCenter: decimals(dataSet, 'x00281050'),
    windowWidth: decimals(dataSet, 'x00281051'),
    windowExplanation: texts(dataSet, 'x00281055'),
    voiLutFunction: text(dataSet, 'x00281056'),
    voiLutSequence: readLutItems(dataSet, 'x00283010', pixelRepresentation === 1),
    modalityLutSequence: readLutItems(dataSet, 'x00283000', pixelRepresentation === 1),
    rescaleSlope: decimal(dataSet, 'x00281053'),
    rescaleIntercept: decimal(dataSet, 'x00281052'),
    rescaleType: text(dataSet, 'x00281054'),
    pixelIntensityRelationship: text(dataSet, 'x00281040'),
    pixelIntensityRelationshipSign: signed16(dataSet, 'x00281041'),
    lossyImageCompression: text(dataSet, 'x00282110'),
    pixelDataPresent: pixel !== undefined,
    pixelDataEncapsulated: pixel?.encapsulatedPixelData === true,
    pixelDataLength: pixel ? pixel.length : null,
  };
}
