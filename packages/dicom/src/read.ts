import { readFile } from 'node:fs/promises';
import type { DataSet, Element } from 'dicom-parser';
import { type DecodedFrame, decodeJpegLossless, decodeWithWasmView } from './codecs.js';
import { DicomError, thrownMessage } from './errors.js';
import { decodeSequentialJpeg, jpegWantsRawComponents } from './jpeg-sequential.js';
import { type DicomHeader, type ParsedDicom, parseDicomBytes, readHeader } from './parse.js';
import { decodeRleSegments } from './rle.js';
import { byteRange, rememberValueRange } from './value-range.js';

/**
 * Stored values of a frame: a Uint8Array for grey 8-bit unsigned samples that need no masking (the decoder's own
 * width, as pydicom's uint8 pixel_array: a quarter of the memory and of the copying), an Int32Array otherwise.
 */
export type StoredValues = Int32Array | Uint8Array;

/** One decoded frame of stored values (before any Modality LUT), row-major, samples interleaved. */
export interface DicomFrame {
  rows: number;
  columns: number;
  /** 1 for grey; 3 for colour (always RGB: YBR data are converted to RGB as pydicom does by default). */
  samplesPerPixel: number;
  /**
   * Stored values after BitsStored/HighBit masking and PixelRepresentation sign extension. Read-only: their range
   * and value counts are computed once per array and cached (normalize's tables rely on them).
   */
  stored: StoredValues;
}

export interface DicomImage {
  /** Path, or the name given for in-memory bytes; errors name it. */
  file: string;
  header: DicomHeader;
  /** Number of frames in the file (1 when Number of Frames is absent). */
  frameCount: number;
  /** The decoded frames: frame 0 by default, all or a selection on request. */
  frames: DicomFrame[];
}

export interface ReadDicomOptions {
  /** 'first' (default), 'all', or explicit 0-based frame indices. */
  frames?: 'first' | 'all' | number[];
  /** Name for errors when `source` is bytes (default '<buffer>'). */
  file?: string;
}

/** Reads the file (or takes bytes) and returns the parsed data set; errors name the file. */
export async function loadDicom(
  source: string | Uint8Array,
  file?: string,
): Promise<{ parsed: ParsedDicom; file: string }> {
  const name = typeof source === 'string' ? source : (file ?? '<buffer>');
  let bytes: Uint8Array;
  if (typeof source === 'string') {
    try {
      bytes = await readFile(source);
    } catch (thrown) {
      throw new DicomError('read_failed', `cannot read file (${thrownMessage(thrown)})`, { file: name, cause: thrown });
    }
  } else {
    bytes = source;
  }
  return { parsed: parseDicomBytes(bytes, name), file: name };
}

/** Header facts only (no pixel decoding). */
export async function readDicomHeader(
  source: string | Uint8Array,
  options: { file?: string } = {},
): Promise<DicomHeader> {
  const { parsed, file } = await loadDicom(source, options.file);
  let header: DicomHeader;
  try {
    header = readHeader(parsed);
  } catch (thrown) {
    throw new DicomError('invalid_header', `header attributes cannot be read (${thrownMessage(thrown)})`, {
      file,
      cause: thrown,
    });
  }
  checkFrameCount(header, file);
  return header;
}

/** Reads a DICOM file (path or bytes) into header facts and stored pixel values. Never throws anything but DicomError. */
export async function readDicom(source: string | Uint8Array, options: ReadDicomOptions = {}): Promise<DicomImage> {
  const { parsed, file } = await loadDicom(source, options.file);
  try {
    return await decodeParsed(parsed, file, options.frames ?? 'first');
  } catch (thrown) {
    if (thrown instanceof DicomError) throw thrown;
    throw new DicomError('corrupt_pixel_data', `pixel data cannot be decoded (${thrownMessage(thrown)})`, {
      file,
      cause: thrown,
    });
  }
}

function checkFrameCount(header: DicomHeader, file: string): number {
  if (header.numberOfFrames === null) return 1;
  if (!Number.isInteger(header.numberOfFrames) || header.numberOfFrames < 1) {
    throw new DicomError('invalid_header', 'Number of Frames (0028,0008) is not a positive integer', { file });
  }
  return header.numberOfFrames;
}

interface Layout {
  rows: number;
  columns: number;
  samples: number;
  bitsAllocated: number;
  bitsStored: number;
  highBit: number;
  signed: boolean;
  planar: boolean;
  photometric: string;
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** 2^27 samples (e.g. 11585 x 11585 grey): far above any radiograph, low enough that a bogus header cannot exhaust memory. */
const MAX_SAMPLES_PER_FRAME = 2 ** 27;

function requireLayout(header: DicomHeader, file: string): Layout {
  const missing = (name: string, tag: string) =>
    new DicomError('invalid_header', `${name} ${tag} is missing or invalid`, { file });
  if (!header.rows) throw missing('Rows', '(0028,0010)');
  if (!header.columns) throw missing('Columns', '(0028,0011)');
  if (!header.bitsAllocated) throw missing('Bits Allocated', '(0028,0100)');
  const bitsAllocated = header.bitsAllocated;
  if (![1, 8, 16, 32].includes(bitsAllocated)) {
    throw new DicomError(
      'unsupported_pixel_format',
      `Bits Allocated ${bitsAllocated} is not supported (1, 8, 16, 32)`,
      {
        file,
      },
    );
  }
  const bitsStored = header.bitsStored ?? bitsAllocated;
  if (bitsStored < 1 || bitsStored > bitsAllocated) {
    throw new DicomError('invalid_header', `Bits Stored ${bitsStored} does not fit Bits Allocated ${bitsAllocated}`, {
      file,
    });
  }
  let highBit = header.highBit ?? bitsStored - 1;
  if (highBit < bitsStored - 1 || highBit >= bitsAllocated) highBit = bitsStored - 1;
  const samples = header.samplesPerPixel ?? 1;
  if (header.rows * header.columns * samples > MAX_SAMPLES_PER_FRAME) {
    throw new DicomError(
      'unsupported_pixel_format',
      `${header.columns}x${header.rows}x${samples} samples per frame exceed the ${MAX_SAMPLES_PER_FRAME} supported`,
      { file },
    );
  }
  if (samples !== 1 && samples !== 3) {
    throw new DicomError('unsupported_pixel_format', `Samples per Pixel ${samples} is not supported (1 or 3)`, {
      file,
    });
  }
  return {
    rows: header.rows,
    columns: header.columns,
    samples,
    bitsAllocated,
    bitsStored,
    highBit,
    signed: header.pixelRepresentation === 1,
    planar: header.planarConfiguration === 1,
    photometric: (header.photometricInterpretation ?? (samples === 1 ? 'MONOCHROME2' : 'RGB')).toUpperCase(),
  };
}

function selectFrames(request: 'first' | 'all' | number[], frameCount: number, file: string): number[] {
  if (request === 'first') return [0];
  if (request === 'all') return Array.from({ length: frameCount }, (_, i) => i);
  for (const index of request) {
    if (!Number.isInteger(index) || index < 0 || index >= frameCount) {
      throw new DicomError('invalid_header', `frame ${index} requested but the file has ${frameCount} frame(s)`, {
        file,
      });
    }
  }
  return request;
}

async function decodeParsed(
  parsed: ParsedDicom,
  file: string,
  request: 'first' | 'all' | number[],
): Promise<DicomImage> {
  const header = readHeader(parsed);
  if (parsed.truncation) throw new DicomError('truncated', parsed.truncation, { file });
  const pixelElement = parsed.dataSet.elements.x7fe00010;
  if (!pixelElement) {
    const what = header.sopClassUid
      ? ` (SOP class ${header.sopClassUid}, modality ${header.modality ?? 'unknown'})`
      : '';
    throw new DicomError('no_pixel_data', `no Pixel Data (7FE0,0010): not an image${what}`, { file });
  }
  const frameCount = checkFrameCount(header, file);
  const layout = requireLayout(header, file);
  const indices = selectFrames(request, frameCount, file);
  const { encoding, name } = parsed.syntax;
  if (encoding === 'unsupported') {
    throw new DicomError('unsupported_transfer_syntax', `unsupported transfer syntax: ${name} (${parsed.syntax.uid})`, {
      file,
    });
  }
  const frames: DicomFrame[] = [];
  if (encoding === 'native') {
    if (pixelElement.encapsulatedPixelData) {
      throw new DicomError('corrupt_pixel_data', `encapsulated pixel data in a native transfer syntax (${name})`, {
        file,
      });
    }
    for (const index of indices) frames.push(nativeFrame(parsed, pixelElement, layout, index, frameCount, file));
  } else {
    if (!pixelElement.encapsulatedPixelData || !pixelElement.fragments) {
      throw new DicomError('corrupt_pixel_data', `${name} requires encapsulated pixel data, found native`, { file });
    }
    const fragmentsByFrame = groupFragments(parsed.dataSet, pixelElement, frameCount, file);
    for (const index of indices) {
      const encoded = concatFragments(parsed.dataSet, fragmentsByFrame[index]);
      frames.push(await encapsulatedFrame(encoded, parsed, layout, index, file));
    }
  }
  return { file, header, frameCount, frames };
}

// ---------------------------------------------------------------------------------------------- native

function nativeFrame(
  parsed: ParsedDicom,
  element: Element,
  layout: Layout,
  index: number,
  frameCount: number,
  file: string,
): DicomFrame {
  const { rows, columns, samples, bitsAllocated } = layout;
  // YBR_FULL_422 stores two samples per pixel (Y1 Y2 Cb Cr for each pair of pixels), as pydicom reads it.
  const subsampled = samples === 3 && layout.photometric === 'YBR_FULL_422';
  if (subsampled && (rows * columns) % 2 !== 0) {
    throw new DicomError(
      'unsupported_pixel_format',
      `YBR_FULL_422 with an odd number of pixels (${columns}x${rows}) has no pixel pairs to subsample (pydicom refuses it too)`,
      { file },
    );
  }
  const count = subsampled ? 2 * rows * columns : rows * columns * samples;
  const frameBits = count * bitsAllocated;
  const bytes = parsed.dataSet.byteArray;
  const available = Math.min(element.length, bytes.length - element.dataOffset);
  // 8-bit samples in an OW element of a big-endian data set are 16-bit words, most significant byte first: each
  // byte pair is swapped (an odd length's pad byte comes first in the last word). pydicom swaps them back; so do we:
  // the sample at byte p of the value is stored at p ^ 1, which also holds for a frame that starts mid-word.
  const swapPairs = !parsed.syntax.littleEndian && bitsAllocated === 8 && element.vr === 'OW';
  // 1-bit frames are packed back to back without byte alignment.
  const startBit = index * frameBits;
  let needBytes = Math.ceil((startBit + frameBits) / 8);
  if (swapPairs) needBytes += needBytes % 2;
  if (available < needBytes) {
    throw new DicomError(
      'truncated',
      `pixel data is truncated: ${available} bytes present, ${Math.ceil((frameCount * frameBits) / 8)} expected for ${frameCount} frame(s) of ${rows}x${columns}x${samples} at ${bitsAllocated} bits`,
      { file },
    );
  }
  const base = element.dataOffset;
  if (bitsAllocated === 8 && samples === 1 && !layout.signed && layout.bitsStored === 8) {
    // Grey 8-bit unsigned: every bit is stored, so the bytes are the values (kept compact, as decoded frames are).
    const offset = base + index * count;
    const compact = new Uint8Array(count);
    if (swapPairs) {
      for (let i = 0, at = index * count; i < count; i++, at++) compact[i] = bytes[base + (at ^ 1)];
    } else {
      compact.set(bytes.subarray(offset, offset + count));
    }
    rememberValueRange(compact, byteRange(compact, count));
    return { rows, columns, samplesPerPixel: 1, stored: compact };
  }
  const raw = new Int32Array(count);
  if (bitsAllocated === 1) {
    for (let i = 0; i < count; i++) {
      const bit = startBit + i;
      raw[i] = (bytes[base + (bit >> 3)] >> (bit & 7)) & 1;
    }
  } else {
    const offset = base + index * (frameBits / 8);
    const view = new DataView(bytes.buffer, bytes.byteOffset + offset, frameBits / 8);
    const little = parsed.syntax.littleEndian;
    if (bitsAllocated === 8 && swapPairs) {
      for (let i = 0, at = index * count; i < count; i++, at++) raw[i] = bytes[base + (at ^ 1)];
    } else if (bitsAllocated === 8) {
      for (let i = 0; i < count; i++) raw[i] = bytes[offset + i];
    } else if (bitsAllocated === 16) {
      for (let i = 0; i < count; i++) raw[i] = view.getUint16(2 * i, little);
    } else {
      for (let i = 0; i < count; i++) raw[i] = view.getUint32(4 * i, little) | 0;
    }
  }
  applyStoredBits(raw, layout);
  // pydicom expands 422 first and only then applies the planar configuration (a non-conformant 1 included).
  const values = subsampled ? expandYbr422(raw, rows, columns) : raw;
  return finishColour(values, layout, false, layout.planar, file);
}

/** Keeps bits [HighBit-BitsStored+1, HighBit] of each container and sign-extends them for signed data. */
export function applyStoredBits(values: Int32Array, layout: Pick<Layout, 'bitsStored' | 'highBit' | 'signed'>): void {
  const { bitsStored, highBit, signed } = layout;
  const shift = highBit + 1 - bitsStored;
  if (bitsStored >= 32) return;
  if (!signed && shift === 0) {
    // Common case: only the mask matters; skip the pass when nothing lies above Bits Stored.
    const limit = 2 ** bitsStored;
    let clean = true;
    for (let i = 0; i < values.length; i++) {
      if (values[i] >= limit || values[i] < 0) {
        clean = false;
        break;
      }
    }
    if (clean) return;
  }
  const mask = 2 ** bitsStored - 1;
  const signBit = 2 ** (bitsStored - 1);
  const range = 2 ** bitsStored;
  for (let i = 0; i < values.length; i++) {
    let v = (values[i] >>> shift) & mask;
    if (signed && v >= signBit) v -= range;
    values[i] = v;
  }
}

// ---------------------------------------------------------------------------------------------- colour

/**
 * Colour frames come out pixel-interleaved RGB. Planar configuration 1 is interleaved; YBR_FULL and
 * YBR_FULL_422 are converted as pydicom's default does (see ybrFullToRgb), which only converts unsigned 8-bit
 * samples: other YBR samples are refused, as pydicom refuses them.
 * `alreadyRgb`: the codec (JPEG, JPEG 2000) already applied its own colour transform.
 */
function finishColour(
  values: Int32Array,
  layout: Layout,
  alreadyRgb: boolean,
  planarInput: boolean,
  file: string,
): DicomFrame {
  const { rows, columns, samples, photometric } = layout;
  let stored = values;
  if (samples === 3) {
    const convert = !alreadyRgb && photometric.startsWith('YBR_FULL');
    if (convert && (layout.bitsAllocated !== 8 || layout.signed)) {
      throw new DicomError(
        'unsupported_pixel_format',
        `${photometric} with ${layout.signed ? 'signed ' : ''}${layout.bitsAllocated}-bit samples cannot be converted to RGB (only unsigned 8-bit YBR is, as in pydicom)`,
        { file },
      );
    }
    if (planarInput) stored = interleave(values, rows * columns);
    if (convert) ybrFullToRgb(stored);
  }
  return { rows, columns, samplesPerPixel: samples, stored };
}

function interleave(planar: Int32Array, pixels: number): Int32Array {
  const out = new Int32Array(planar.length);
  for (let i = 0; i < pixels; i++) {
    out[3 * i] = planar[i];
    out[3 * i + 1] = planar[pixels + i];
    out[3 * i + 2] = planar[2 * pixels + i];
  }
  return out;
}

const f = Math.fround;
const GB = f((-0.114 * 1.772) / 0.587);
const GR = f((-0.299 * 1.402) / 0.587);
const BB = f(1.772);
const RR = f(1.402);

/**
 * YBR_FULL to RGB in place, as pydicom's convert_color_space: float32 matrix product with the PS3.3 C.7.6.3.1.2
 * coefficients, then floor(x + 0.5) clipped to [0, 255]. numpy's float32 matmul goes through OpenBLAS, whose
 * kernels for x86-64 CPUs with FMA (Haswell, Zen and later) accumulate with fused multiply-adds: y, then
 * + cb * GB, then + cr * GR, each rounded once (checked for all 2^24 triples against pydicom 3.0.2). Each product and sum below is exact in float64 (24-bit by 9-bit products of
 * small numbers), so one fround is that single rounding. Rounding products separately differs from pydicom for
 * 42 of the 2^24 triples, where G lands on .5 (tools/reference/fixtures/dicom/colour/expected.json).
 */
export function ybrFullToRgb(values: Int32Array): void {
  for (let i = 0; i < values.length; i += 3) {
    const y = values[i];
    const cb = values[i + 1] - 128;
    const cr = values[i + 2] - 128;
    const r = f(cr * RR + y);
    const g = f(cr * GR + f(cb * GB + y));
    const b = f(cb * BB + y);
    values[i] = Math.min(255, Math.max(0, Math.floor(f(r + 0.5))));
    values[i + 1] = Math.min(255, Math.max(0, Math.floor(f(g + 0.5))));
    values[i + 2] = Math.min(255, Math.max(0, Math.floor(f(b + 0.5))));
  }
}

/** YBR_FULL_422 native data: each pair of pixels is stored as Y1 Y2 Cb Cr; expand to full YBR per pixel. */
function expandYbr422(bytes: Int32Array, rows: number, columns: number): Int32Array {
  const out = new Int32Array(rows * columns * 3);
  let read = 0;
  for (let pixel = 0; pixel < rows * columns; pixel += 2) {
    const y1 = bytes[read];
    const y2 = bytes[read + 1];
    const cb = bytes[read + 2];
    const cr = bytes[read + 3];
    read += 4;
    out.set([y1, cb, cr], 3 * pixel);
    if (pixel + 1 < rows * columns) out.set([y2, cb, cr], 3 * pixel + 3);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------- encapsulated

interface Fragment {
  position: number;
  length: number;
}

function groupFragments(dataSet: DataSet, element: Element, frameCount: number, file: string): Fragment[][] {
  const fragments = (element.fragments ?? []) as Fragment[];
  if (fragments.length === 0)
    throw new DicomError('corrupt_pixel_data', 'encapsulated pixel data has no fragments', { file });
  for (const fragment of fragments) {
    if (fragment.position + fragment.length > dataSet.byteArray.length) {
      throw new DicomError(
        'truncated',
        'encapsulated pixel data is truncated (a fragment runs past the end of the file)',
        {
          file,
        },
      );
    }
  }
  if (frameCount === 1) return [fragments];
  const table = element.basicOffsetTable ?? [];
  if (table.length === frameCount) {
    const firstOffset = (fragments[0] as Fragment & { offset: number }).offset;
    const groups: Fragment[][] = Array.from({ length: frameCount }, () => []);
    for (const fragment of fragments as Array<Fragment & { offset: number }>) {
      let frame = frameCount - 1;
      while (frame > 0 && fragment.offset - firstOffset < table[frame]) frame--;
      groups[frame].push(fragment);
    }
    if (groups.every((group) => group.length > 0)) return groups;
  }
  if (fragments.length === frameCount) return fragments.map((fragment) => [fragment]);
  // No usable offset table: a new frame starts at each fragment that opens with the first fragment's start marker.
  const bytes = dataSet.byteArray;
  const marker = (fragment: Fragment) => (bytes[fragment.position] << 8) | bytes[fragment.position + 1];
  const startMarker = marker(fragments[0]);
  const groups: Fragment[][] = [];
  for (const fragment of fragments) {
    if (fragment.length >= 2 && marker(fragment) === startMarker) groups.push([fragment]);
    else groups[groups.length - 1].push(fragment);
  }
  if (groups.length !== frameCount) {
    throw new DicomError(
      'corrupt_pixel_data',
      `cannot split ${fragments.length} fragments into ${frameCount} frames (found ${groups.length} frame starts)`,
      { file },
    );
  }
  return groups;
}

function concatFragments(dataSet: DataSet, fragments: Fragment[]): Uint8Array {
  const bytes = dataSet.byteArray;
  if (fragments.length === 1) {
    const [only] = fragments;
    return bytes.subarray(only.position, only.position + only.length);
  }
  const total = fragments.reduce((sum, fragment) => sum + fragment.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const fragment of fragments) {
    out.set(bytes.subarray(fragment.position, fragment.position + fragment.length), at);
    at += fragment.length;
  }
  return out;
}

/** Frame header (SOF marker) of a JPEG stream, or null when there is none. */
export function jpegPrecision(
  encoded: Uint8Array,
): { precision: number; sof: number; height: number; width: number; components: number } | null {
  let at = 2;
  while (at + 4 < encoded.length) {
    if (encoded[at] !== 0xff) {
      at++;
      continue;
    }
    const marker = encoded[at + 1];
    if (marker === 0xff || marker === 0x00 || (marker >= 0xd0 && marker <= 0xd8) || marker === 0x01) {
      at += marker === 0xff ? 1 : 2;
      continue;
    }
    if (
      (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) ||
      marker === 0xf7
    ) {
      if (at + 9 >= encoded.length) return null;
      return {
        precision: encoded[at + 4],
        sof: marker,
        height: (encoded[at + 5] << 8) | encoded[at + 6],
        width: (encoded[at + 7] << 8) | encoded[at + 8],
        components: encoded[at + 9],
      };
    }
    const length = (encoded[at + 2] << 8) | encoded[at + 3];
    at += 2 + length;
  }
  return null;
}

async function encapsulatedFrame(
  encoded: Uint8Array,
  parsed: ParsedDicom,
  layout: Layout,
  index: number,
  file: string,
): Promise<DicomFrame> {
  const { rows, columns, samples } = layout;
  const { encoding, name } = parsed.syntax;
  const corrupt = (reason: string, cause?: unknown) =>
    new DicomError('corrupt_pixel_data', `frame ${index}: ${name} stream cannot be decoded (${reason})`, {
      file,
      cause,
    });
  if (encoding === 'rle') {
    const bytesPerSample = Math.ceil(layout.bitsAllocated / 8);
    let planes: Uint8Array[];
    try {
      planes = decodeRleSegments(encoded, rows * columns);
    } catch (thrown) {
      throw corrupt(thrownMessage(thrown), thrown);
    }
    if (planes.length !== samples * bytesPerSample) {
      throw corrupt(`${planes.length} segments, expected ${samples * bytesPerSample}`);
    }
    const pixels = rows * columns;
    const values = new Int32Array(pixels * samples);
    for (let s = 0; s < samples; s++) {
      for (let b = 0; b < bytesPerSample; b++) {
        const plane = planes[s * bytesPerSample + b];
        const shift = 8 * (bytesPerSample - 1 - b);
        for (let i = 0; i < pixels; i++) values[s * pixels + i] |= plane[i] << shift;
      }
    }
    applyStoredBits(values, layout);
    return finishColour(values, layout, false, true, file);
  }
  let converted: { values: StoredValues; raw: boolean };
  try {
    converted = await decodeCompressed(encoded, encoding, layout, name, file, (decoded) => {
      if (decoded.width !== columns || decoded.height !== rows || decoded.components !== samples) {
        throw corrupt(
          `decoded ${decoded.width}x${decoded.height}x${decoded.components}, header says ${columns}x${rows}x${samples}`,
        );
      }
      return { values: storedValues(decoded, layout, corrupt), raw: decoded.raw === true };
    });
  } catch (thrown) {
    if (thrown instanceof DicomError) throw thrown;
    throw corrupt(thrownMessage(thrown), thrown);
  }
  // JPEG and JPEG 2000 decoders apply their own colour transform (except our raw JPEG path); JPEG-LS stores as is.
  const alreadyRgb = encoding !== 'jpeg-ls' && !converted.raw;
  const { values } = converted;
  // Compact (8-bit) values are grey only: nothing to interleave or convert.
  if (!(values instanceof Int32Array)) return { rows, columns, samplesPerPixel: samples, stored: values };
  return finishColour(values, layout, alreadyRgb, false, file);
}

/** A decoded frame's samples as stored values (masked and sign-extended as the header says). */
function storedValues(decoded: DecodedFrame, layout: Layout, corrupt: (reason: string) => DicomError): StoredValues {
  const count = layout.rows * layout.columns * layout.samples;
  const wide = decoded.bytesPerSample === 2;
  if (decoded.bytes.length < count * (wide ? 2 : 1)) throw corrupt('decoder returned too few bytes');
  const { bytes } = decoded;
  // Unsigned samples no wider than Bits Stored need no masking.
  const mask = decoded.signed || layout.signed || decoded.bitsPerSample > layout.bitsStored;
  if (!wide && !mask && layout.samples === 1) {
    // Grey 8-bit as decoded (an owned copy: `bytes` may view the decoder's memory); its range is cheap to find now.
    // A plain Uint8Array (the wasm decoders hand out Uint8ClampedArray views) keeps the kernels monomorphic.
    const compact = new Uint8Array(count);
    compact.set(bytes.subarray(0, count));
    rememberValueRange(compact, byteRange(compact, count));
    return compact;
  }
  const values = new Int32Array(count);
  if (wide && (bytes.byteOffset % 2 !== 0 || !LITTLE_ENDIAN_HOST)) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < count; i++)
      values[i] = decoded.signed ? view.getInt16(2 * i, true) : view.getUint16(2 * i, true);
  } else if (wide) {
    // Typed-array set converts natively (the wasm decoders emit little-endian samples, as this host is).
    values.set(
      decoded.signed
        ? new Int16Array(bytes.buffer, bytes.byteOffset, count)
        : new Uint16Array(bytes.buffer, bytes.byteOffset, count),
    );
  } else if (decoded.signed) {
    values.set(new Int8Array(bytes.buffer, bytes.byteOffset, count));
  } else {
    values.set(bytes.subarray(0, count));
  }
  if (mask) applyStoredBits(values, { ...layout, highBit: layout.bitsStored - 1 });
  return values;
}

/** Decodes with the codec for `encoding` and passes the frame to `take` (a wasm decoder's output only during it). */
async function decodeCompressed<T>(
  encoded: Uint8Array,
  encoding: string,
  layout: Layout,
  name: string,
  file: string,
  take: (decoded: DecodedFrame) => T,
): Promise<T> {
  switch (encoding) {
    case 'jpeg-baseline':
    case 'jpeg-extended': {
      const sof = jpegPrecision(encoded);
      if (sof === null) throw new Error('no JPEG frame header (SOF) found');
      checkJpegGeometry(sof, layout);
      if (sof.sof === 0xc3) return take(await decodeLossless(encoded, layout));
      if (sof.precision === 12 && layout.samples === 1) return take(decodeOwnSequential(encoded));
      // libjpeg-turbo's wasm build always converts 3 components from YCbCr; pydicom takes them raw (see there).
      if (layout.samples === 3 && jpegWantsRawComponents(encoded))
        return take({ ...decodeOwnSequential(encoded), raw: true });
      if (sof.precision !== 8) {
        throw new DicomError(
          'unsupported_transfer_syntax',
          `unsupported transfer syntax: ${name} with ${sof.precision}-bit samples and ${layout.samples} sample(s) per pixel`,
          { file },
        );
      }
      return decodeWithWasmView('libjpeg-turbo', encoded, take);
    }
    case 'jpeg-lossless':
      return take(await decodeLossless(encoded, layout));
    case 'jpeg-ls': {
      const sof = jpegPrecision(encoded);
      if (sof === null) throw new Error('no JPEG-LS frame header (SOF55) found');
      checkJpegGeometry(sof, layout);
      return decodeWithWasmView('charls', encoded, take);
    }
    case 'jpeg-2000':
      return decodeWithWasmView('openjpeg', encoded, take);
    default:
      throw new DicomError('unsupported_transfer_syntax', `unsupported transfer syntax: ${name}`, { file });
  }
}

function decodeOwnSequential(encoded: Uint8Array): DecodedFrame {
  const decoded = decodeSequentialJpeg(encoded);
  const samples = decoded.samples;
  return {
    width: decoded.width,
    height: decoded.height,
    bitsPerSample: decoded.precision,
    bytesPerSample: 2,
    components: decoded.components,
    signed: false,
    bytes: new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength),
  };
}

/** Refuse before decoding when the JPEG's own frame header disagrees with the DICOM header (saves decoding garbage). */
function checkJpegGeometry(sof: { width: number; height: number; components: number }, layout: Layout): void {
  if (sof.width !== layout.columns || sof.height !== layout.rows || sof.components !== layout.samples) {
    throw new Error(
      `JPEG frame is ${sof.width}x${sof.height}x${sof.components}, header says ${layout.columns}x${layout.rows}x${layout.samples}`,
    );
  }
}

async function decodeLossless(encoded: Uint8Array, layout: Layout): Promise<DecodedFrame> {
  const sof = jpegPrecision(encoded);
  if (sof === null) throw new Error('no JPEG frame header (SOF) found');
  checkJpegGeometry(sof, layout);
  const precision = sof.precision;
  const bytesPerSample = precision > 8 ? 2 : 1;
  const samples = await decodeJpegLossless(encoded, bytesPerSample);
  const bytes = new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength);
  const expected = layout.rows * layout.columns * layout.samples;
  const per = bytesPerSample;
  return {
    width: bytes.length / per === expected ? layout.columns : -1,
    height: layout.rows,
    bitsPerSample: precision,
    components: layout.samples,
    signed: false,
    bytesPerSample: bytesPerSample === 2 ? 2 : 1,
    bytes,
  };
}
