/**
 * safetensors (Hugging Face's weight format): an 8-byte little-endian header length, a JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {string: string}}`, then the raw
 * little-endian bytes. Read: F64/F32/F16/BF16/I64/I32/I16/I8/U8/BOOL; write: the HostTensor dtypes.
 */
import { readFile } from 'node:fs/promises';
import { FedcxrError, writeFileAtomic } from '@fedcxr/base';
import { elementCount, type HostDType, type HostTensor, type NamedTensors } from './tensors.js';

export interface SafetensorsContent {
  tensors: NamedTensors;
  metadata: Record<string, string>;
}

const BYTES_PER_ELEMENT: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

const LITTLE_ENDIAN_HOST = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** Largest header the reader accepts (the reference implementation's limit). */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export function decodeSafetensors(bytes: Uint8Array, file = 'safetensors'): SafetensorsContent {
  const fail = (problem: string) => new FedcxrError('invalid_safetensors', problem, { file });
  if (bytes.byteLength < 8) throw fail('file is shorter than the 8-byte header length');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > MAX_HEADER_BYTES || 8 + headerLength > bytes.byteLength) {
    throw fail(`header length ${headerLength} does not fit in the file (${bytes.byteLength} bytes)`);
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as Record<string, unknown>;
  } catch (error) {
    throw fail(`header is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw fail('header is not an object');
  const dataStart = 8 + headerLength;
  const dataLength = bytes.byteLength - dataStart;
  const metadata: Record<string, string> = {};
  const tensors: NamedTensors = new Map();
  const spans: [number, number, string][] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      for (const [key, value] of Object.entries((entry ?? {}) as Record<string, unknown>)) {
        if (typeof value !== 'string') throw fail(`__metadata__.${key} is not a string`);
        metadata[key] = value;
      }
      continue;
    }
    const {
      dtype,
      shape,
      data_offsets: offsets,
    } = (entry ?? {}) as {
      dtype?: unknown;
      shape?: unknown;
      data_offsets?: unknown;
    };
    if (typeof dtype !== 'string' || !(dtype in BYTES_PER_ELEMENT)) {
      throw fail(`tensor "${name}" has unsupported dtype ${JSON.stringify(dtype)}`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw fail(`tensor "${name}" has an invalid shape ${JSON.stringify(shape)}`);
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isInteger(o) && o >= 0) ||
      offsets[0] > offsets[1] ||
      offsets[1] > dataLength
    ) {
      throw fail(`tensor "${name}" has invalid data_offsets ${JSON.stringify(offsets)} (data is ${dataLength} bytes)`);
    }
    const [begin, end] = offsets as [number, number];
    const count = elementCount(shape as number[]);
    if (end - begin !== count * BYTES_PER_ELEMENT[dtype]) {
      throw fail(
        `tensor "${name}" (${dtype} ${JSON.stringify(shape)}) needs ${count * BYTES_PER_ELEMENT[dtype]} bytes, offsets give ${end - begin}`,
      );
    }
    spans.push([begin, end, name]);
    const raw = bytes.subarray(dataStart + begin, dataStart + end);
    tensors.set(
      name,
      decodeElements(raw, dtype, shape as number[], (problem) => fail(`tensor "${name}": ${problem}`)),
    );
  }
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i][0] < spans[i - 1][1]) throw fail(`tensors "${spans[i - 1][2]}" and "${spans[i][2]}" overlap`);
  }
  return { tensors, metadata };
}

/** Decodes little-endian elements of a safetensors/torch dtype into a HostTensor (widening as HostTensor says). */
export function decodeElements(
  raw: Uint8Array,
  dtype: string,
  shape: number[],
  fail: (problem: string) => Error = (problem) => new FedcxrError('invalid_tensor', problem),
): HostTensor {
  const count = elementCount(shape);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  switch (dtype) {
    case 'F32': {
      if (LITTLE_ENDIAN_HOST) {
        // One copy of the bytes into a fresh (aligned) buffer instead of a DataView call per element.
        const data = new Float32Array(count);
        new Uint8Array(data.buffer).set(raw.subarray(0, count * 4));
        return { dtype: 'float32', shape, data };
      }
      const data = new Float32Array(count);
      for (let i = 0; i < count; i++) data[i] = view.getFloat32(i * 4, true);
      return { dtype: 'float32', shape, data };
    }
    case 'F64': {
      const data = new Float32Array(count);
      for (let i = 0; i < count; i++) data[i] = view.getFloat64(i * 8, true);
      return { dtype: 'float32', shape, data };
    }
    case 'F16': {
      const data = new Float32Array(count);
      for (let i = 0; i < count; i++) data[i] = float16BitsToNumber(view.getUint16(i * 2, true));
      return { dtype: 'float16', shape, data };
    }
    case 'BF16': {
      const data = new Float32Array(count);
      const bits = new Uint32Array(data.buffer);
      for (let i = 0; i < count; i++) bits[i] = view.getUint16(i * 2, true) << 16;
      return { dtype: 'float32', shape, data };
    }
    case 'I64': {
      const data = new Float64Array(count);
      for (let i = 0; i < count; i++) {
        const value = view.getBigInt64(i * 8, true);
        if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
          throw fail(`int64 value ${value} cannot be represented exactly`);
        }
        data[i] = Number(value);
      }
      return { dtype: 'int64', shape, data };
    }
    case 'I32': {
      const data = new Int32Array(count);
      for (let i = 0; i < count; i++) data[i] = view.getInt32(i * 4, true);
      return { dtype: 'int32', shape, data };
    }
    case 'I16': {
      const data = new Int32Array(count);
      for (let i = 0; i < count; i++) data[i] = view.getInt16(i * 2, true);
      return { dtype: 'int32', shape, data };
    }
    case 'I8': {
      const data = new Int32Array(count);
      for (let i = 0; i < count; i++) data[i] = view.getInt8(i);
      return { dtype: 'int32', shape, data };
    }
    case 'U8':
      return { dtype: 'uint8', shape, data: Uint8Array.from(raw.subarray(0, count)) };
    case 'BOOL':
      return { dtype: 'bool', shape, data: Uint8Array.from(raw.subarray(0, count), (b) => (b ? 1 : 0)) };
    default:
      throw fail(`unsupported dtype ${dtype}`);
  }
}

const DTYPE_CODES: Record<HostDType, string> = {
  float32: 'F32',
  float16: 'F16',
  int32: 'I32',
  int64: 'I64',
  uint8: 'U8',
  bool: 'BOOL',
};

export function encodeSafetensors(tensors: NamedTensors, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  const entries: [HostTensor, number][] = [];
  for (const [name, tensor] of tensors) {
    const count = elementCount(tensor.shape);
    if (tensor.data.length !== count) {
      throw new FedcxrError(
        'invalid_tensor',
        `tensor "${name}" has ${tensor.data.length} values for shape ${JSON.stringify(tensor.shape)}`,
      );
    }
    const code = DTYPE_CODES[tensor.dtype];
    const size = count * BYTES_PER_ELEMENT[code];
    header[name] = { dtype: code, shape: tensor.shape, data_offsets: [offset, offset + size] };
    entries.push([tensor, offset]);
    offset += size;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so the data starts 8-byte aligned (as the reference writer does).
  const encoder = new TextEncoder();
  let headerBytes = encoder.encode(json);
  const padding = (8 - (headerBytes.byteLength % 8)) % 8;
  if (padding > 0) {
    json += ' '.repeat(padding);
    headerBytes = encoder.encode(json);
  }
  const out = new Uint8Array(8 + headerBytes.byteLength + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerBytes.byteLength), true);
  out.set(headerBytes, 8);
  const start = 8 + headerBytes.byteLength;
  for (const [tensor, at] of entries) {
    const base = start + at;
    const data = tensor.data;
    switch (tensor.dtype) {
      case 'float32':
        if (LITTLE_ENDIAN_HOST && data instanceof Float32Array) {
          out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), base);
        } else {
          for (let i = 0; i < data.length; i++) view.setFloat32(base + i * 4, data[i], true);
        }
        break;
      case 'float16':
        for (let i = 0; i < data.length; i++) view.setUint16(base + i * 2, numberToFloat16Bits(data[i]), true);
        break;
      case 'int32':
        for (let i = 0; i < data.length; i++) view.setInt32(base + i * 4, data[i], true);
        break;
      case 'int64':
        for (let i = 0; i < data.length; i++) view.setBigInt64(base + i * 8, BigInt(Math.trunc(data[i])), true);
        break;
      case 'uint8':
      case 'bool':
        for (let i = 0; i < data.length; i++) out[base + i] = data[i];
        break;
    }
  }
  return out;
}

export async function readSafetensors(path: string): Promise<SafetensorsContent> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new FedcxrError('file_unreadable', `cannot read: ${(error as Error).message}`, { file: path });
  }
  return decodeSafetensors(bytes, path);
}

/** Writes atomically (a crash leaves the old file or the new one). */
export async function writeSafetensors(
  path: string,
  tensors: NamedTensors,
  metadata: Record<string, string> = {},
): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

/** IEEE 754 half → number (exact). */
export function float16BitsToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/** number → IEEE 754 half, rounding to nearest even. */
export function numberToFloat16Bits(value: number): number {
  if (Number.isNaN(value)) return 0x7e00;
  const sign = value < 0 || Object.is(value, -0) ? 0x8000 : 0;
  let magnitude = Math.abs(value);
  if (magnitude >= 65520) return sign | 0x7c00;
  if (magnitude < 2 ** -14) {
    // Subnormal: units of 2^-24, ties to even.
    return sign | roundHalfEven(magnitude / 2 ** -24);
  }
  let exponent = Math.floor(Math.log2(magnitude));
  if (2 ** exponent > magnitude) exponent -= 1;
  if (2 ** (exponent + 1) <= magnitude) exponent += 1;
  magnitude = magnitude / 2 ** exponent - 1;
  let fraction = roundHalfEven(magnitude * 1024);
  if (fraction === 1024) {
    fraction = 0;
    exponent += 1;
  }
  if (exponent > 15) return sign | 0x7c00;
  return sign | ((exponent + 15) << 10) | fraction;
}

function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}
