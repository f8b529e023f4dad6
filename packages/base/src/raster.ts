/**
 * PNG and JPEG in and out, for normalized training images and lesion masks. Pixels are row-major and
 * channel-interleaved; 16-bit PNG samples stay 16-bit (Uint16Array), everything else is 8-bit.
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { writeFileAtomic } from './atomic.js';
import { FedcxrError } from './errors.js';

export type RasterChannels = 1 | 2 | 3 | 4;

export interface Raster {
  width: number;
  height: number;
  /** 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA. */
  channels: RasterChannels;
  /** 8 for Uint8Array data, 16 for Uint16Array data. */
  bitDepth: 8 | 16;
  data: Uint8Array | Uint16Array;
}

export interface GreyRaster extends Raster {
  channels: 1;
}

export type RasterFormat = 'png' | 'jpeg';

/** What the leading bytes say the file is (null when neither PNG nor JPEG). */
export function sniffRasterFormat(bytes: Uint8Array): RasterFormat | null {
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) {
    return 'png';
  }
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return null;
}

/** Width and height from the PNG or JPEG header alone (no decoding); null when the header is not found. */
export function rasterSize(bytes: Uint8Array): { width: number; height: number } | null {
  const format = sniffRasterFormat(bytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (format === 'png') {
    if (bytes.length < 24) return null;
    return { width: view.getUint32(16), height: view.getUint32(20) };
  }
  if (format === 'jpeg') {
    const frame = jpegFrameOffset(bytes);
    if (frame < 0 || frame + 9 > bytes.length) return null;
    return { width: view.getUint16(frame + 7), height: view.getUint16(frame + 5) };
  }
  return null;
}

/** Decodes PNG (any bit depth/colour type; 16-bit kept) or JPEG, keeping the file's own channels. */
export function decodeRaster(bytes: Uint8Array, file = '<buffer>'): Raster {
  const format = sniffRasterFormat(bytes);
  if (format === null) throw new FedcxrError('image_unreadable', 'not a PNG or JPEG file', { file });
  try {
    return format === 'png' ? decodePng(bytes) : decodeJpeg(bytes);
  } catch (error) {
    throw new FedcxrError('image_unreadable', `cannot decode ${format.toUpperCase()}: ${(error as Error).message}`, {
      file,
      cause: error,
    });
  }
}

/** Decodes and converts to one grey channel (ITU-R BT.601 luma for colour; alpha is dropped). */
export function decodeGreyRaster(bytes: Uint8Array, file = '<buffer>'): GreyRaster {
  return toGrey(decodeRaster(bytes, file));
}

export async function readRaster(path: string): Promise<Raster> {
  return decodeRaster(await readBytes(path), path);
}

export async function readGreyRaster(path: string): Promise<GreyRaster> {
  return decodeGreyRaster(await readBytes(path), path);
}

/** Drops alpha and converts colour to luma; grey input is returned as is. */
export function toGrey(raster: Raster): GreyRaster {
  const { width, height, channels, bitDepth, data } = raster;
  if (channels === 1) return raster as GreyRaster;
  const n = width * height;
  const out = bitDepth === 16 ? new Uint16Array(n) : new Uint8Array(n);
  if (channels === 2) {
    for (let i = 0; i < n; i++) out[i] = data[i * 2];
  } else {
    for (let i = 0; i < n; i++) {
      const o = i * channels;
      out[i] = Math.round(0.299 * data[o] + 0.587 * data[o + 1] + 0.114 * data[o + 2]);
    }
  }
  return { width, height, channels: 1, bitDepth, data: out };
}

/** Encodes a grey image as PNG: 8-bit for Uint8Array data, 16-bit for Uint16Array data. */
export function encodeGreyPng(image: GreyRaster): Uint8Array {
  checkGrey(image);
  const sixteen = image.data instanceof Uint16Array;
  // pngjs reads 16-bit input through `new Uint16Array(buffer.buffer)`, ignoring byteOffset: hand it a fresh copy.
  const bytes = sixteen ? Buffer.from(Uint16Array.from(image.data).buffer) : Buffer.from(image.data as Uint8Array);
  const packed = PNG.sync.write({ width: image.width, height: image.height, data: bytes } as PNG, {
    colorType: 0,
    inputColorType: 0,
    inputHasAlpha: false,
    bitDepth: sixteen ? 16 : 8,
  });
  return new Uint8Array(packed.buffer, packed.byteOffset, packed.byteLength);
}

/** Encodes an 8-bit grey image as baseline JPEG (quality 1..100). Lossy: masks written this way need a threshold. */
export function encodeGreyJpeg(image: GreyRaster, quality = 90): Uint8Array {
  checkGrey(image);
  if (!(image.data instanceof Uint8Array)) {
    throw new FedcxrError('image_unwritable', 'JPEG output needs 8-bit samples; convert 16-bit images first');
  }
  const n = image.width * image.height;
  const rgba = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) {
    const v = image.data[i];
    rgba[i * 4] = v;
    rgba[i * 4 + 1] = v;
    rgba[i * 4 + 2] = v;
    rgba[i * 4 + 3] = 255;
  }
  const encoded = jpeg.encode({ width: image.width, height: image.height, data: rgba }, quality);
  return new Uint8Array(encoded.data.buffer, encoded.data.byteOffset, encoded.data.byteLength);
}

/** Writes a grey image atomically; the format follows the extension (.png, .jpg/.jpeg) unless given. */
export async function writeGreyRaster(
  path: string,
  image: GreyRaster,
  options: { format?: RasterFormat; quality?: number } = {},
): Promise<void> {
  const format = options.format ?? formatFromExtension(path);
  const bytes = format === 'png' ? encodeGreyPng(image) : encodeGreyJpeg(image, options.quality);
  await writeFileAtomic(path, bytes);
}

function formatFromExtension(path: string): RasterFormat {
  const ext = extname(path).toLowerCase();
  if (ext === '.png') return 'png';
  if (ext === '.jpg' || ext === '.jpeg') return 'jpeg';
  throw new FedcxrError('image_unwritable', `cannot tell the image format from the extension "${ext}"`, { file: path });
}

function checkGrey(image: GreyRaster): void {
  if (image.channels !== 1 || image.data.length !== image.width * image.height) {
    throw new FedcxrError(
      'image_unwritable',
      `expected ${image.width}x${image.height} grey samples, got ${image.data.length} with ${image.channels} channel(s)`,
    );
  }
}

async function readBytes(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (error) {
    throw new FedcxrError('image_unreadable', `cannot read: ${(error as Error).message}`, { file: path, cause: error });
  }
}

const PNG_CHANNELS: Record<number, RasterChannels> = { 0: 1, 2: 3, 3: 3, 4: 2, 6: 4 };

function decodePng(bytes: Uint8Array): Raster {
  // IHDR sits at a fixed offset: bit depth at byte 24, colour type at byte 25.
  if (bytes.length < 33) throw new Error('file too short for a PNG header');
  const depth = bytes[24];
  const colorType = bytes[25];
  const channels = PNG_CHANNELS[colorType];
  if (channels === undefined) throw new Error(`unknown PNG colour type ${colorType}`);
  const sixteen = depth === 16;
  // pngjs always expands to RGBA; with skipRescale 16-bit samples come back as a Uint16Array.
  const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), {
    skipRescale: sixteen,
  }) as unknown as { width: number; height: number; data: Uint8Array | Uint16Array };
  const { width, height } = png;
  const n = width * height;
  const rgba = png.data;
  const out = sixteen ? new Uint16Array(n * channels) : new Uint8Array(n * channels);
  // Picking channels out of RGBA: grey (R), grey+alpha (R, A), RGB, RGBA.
  const pick = channels === 1 ? [0] : channels === 2 ? [0, 3] : channels === 3 ? [0, 1, 2] : [0, 1, 2, 3];
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < channels; c++) out[i * channels + c] = rgba[i * 4 + pick[c]];
  }
  return { width, height, channels, bitDepth: sixteen ? 16 : 8, data: out };
}

function decodeJpeg(bytes: Uint8Array): Raster {
  const components = jpegComponentCount(bytes);
  const decoded = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 2048 });
  const { width, height, data } = decoded;
  if (components !== 1) return { width, height, channels: 3, bitDepth: 8, data };
  const grey = new Uint8Array(width * height);
  for (let i = 0; i < grey.length; i++) grey[i] = data[i * 3];
  return { width, height, channels: 1, bitDepth: 8, data: grey };
}

/** Number of components in the JPEG frame header (SOFn), or 3 when no frame header is found. */
function jpegComponentCount(bytes: Uint8Array): number {
  const frame = jpegFrameOffset(bytes);
  return frame >= 0 && frame + 9 < bytes.length ? bytes[frame + 9] : 3;
}

/** Offset of the SOFn marker (0xFF byte), or -1. */
function jpegFrameOffset(bytes: Uint8Array): number {
  let offset = 2;
  while (offset + 4 < bytes.length) {
    if (bytes[offset] !== 0xff) return -1;
    const marker = bytes[offset + 1];
    if (marker === 0xff) {
      offset++; // fill byte
      continue;
    }
    const length = (bytes[offset + 2] << 8) | bytes[offset + 3];
    const isFrame = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isFrame) return offset;
    offset += 2 + length;
  }
  return -1;
}
