/**
 * Byte formats of the federation: the canonical model file (what the coordinator checkpoints, streams
 * and hashes) and the update encodings (float32, float16, int8 with a per-tensor scale), with a
 * streaming decoder that turns chunks of any size back into float32 values without buffering the update.
 */
import { createHash } from 'node:crypto';
import { elementCount, FedcxrError, type HostTensor, type NamedTensors } from '@fedcxr/core';
import type { Encoding, TensorSpec, UpdateTensor } from './protocol.js';

const MAGIC = 'FCXRW001';

interface Float16ArrayLike extends ArrayLike<number> {
  readonly buffer: ArrayBufferLike;
}
type Float16ArrayCtor = new (
  bufferOrLength: ArrayBufferLike | number,
  byteOffset?: number,
  length?: number,
) => Float16ArrayLike & { set(values: ArrayLike<number>): void };
/** Node 24 ships Float16Array (ES2025); the ES2023 lib types do not know it yet. */
const Float16 = (globalThis as unknown as { Float16Array: Float16ArrayCtor }).Float16Array;

/** Model tensors in order: the federation only carries float tensors (decoded as Float32Array). */
export function specsOf(tensors: NamedTensors): TensorSpec[] {
  return [...tensors].map(([name, t]) => {
    if (!(t.data instanceof Float32Array))
      throw new FedcxrError('federated_dtype', `tensor ${name}: only float tensors can be federated (got ${t.dtype})`);
    if (t.data.length !== elementCount(t.shape))
      throw new FedcxrError('federated_shape', `tensor ${name}: ${t.data.length} values for shape [${t.shape}]`);
    return { name, shape: [...t.shape] };
  });
}

export function totalElements(specs: readonly TensorSpec[]): number {
  return specs.reduce((n, s) => n + elementCount(s.shape), 0);
}

/**
 * Canonical model bytes: magic, u32 header length, JSON header {tensors:[{name,shape}]} padded to 4 bytes,
 * then every tensor's float32 little-endian values in header order. sha256 of these bytes = the model hash.
 */
export function encodeModel(tensors: NamedTensors): Uint8Array {
  const specs = specsOf(tensors);
  let header = JSON.stringify({ tensors: specs });
  while ((MAGIC.length + 4 + Buffer.byteLength(header)) % 4 !== 0) header += ' ';
  const headerBytes = Buffer.from(header, 'utf8');
  const dataOffset = MAGIC.length + 4 + headerBytes.length;
  const out = new Uint8Array(dataOffset + totalElements(specs) * 4);
  out.set(Buffer.from(MAGIC, 'latin1'), 0);
  new DataView(out.buffer).setUint32(MAGIC.length, headerBytes.length, true);
  out.set(headerBytes, MAGIC.length + 4);
  const values = new Float32Array(out.buffer, dataOffset);
  let offset = 0;
  for (const t of tensors.values()) {
    values.set(t.data as Float32Array, offset);
    offset += t.data.length;
  }
  return out;
}

export interface DecodedModel {
  specs: TensorSpec[];
  /** Byte offset of the first value in the model bytes. */
  dataOffset: number;
  tensors: NamedTensors;
  /** All values, in header order (a view; tensors are subarrays of it). */
  flat: Float32Array;
}

export function decodeModel(bytes: Uint8Array, source = 'model'): DecodedModel {
  const fail = (problem: string) => new FedcxrError('model_file_invalid', problem, { file: source });
  if (bytes.length < MAGIC.length + 4 || Buffer.from(bytes.subarray(0, MAGIC.length)).toString('latin1') !== MAGIC)
    throw fail('not a fedcxr federated model file (bad magic)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(MAGIC.length, true);
  const dataOffset = MAGIC.length + 4 + headerLength;
  if (dataOffset > bytes.length) throw fail('truncated header');
  let specs: TensorSpec[];
  try {
    specs = (
      JSON.parse(Buffer.from(bytes.subarray(MAGIC.length + 4, dataOffset)).toString('utf8')) as {
        tensors: TensorSpec[];
      }
    ).tensors;
  } catch (error) {
    throw fail(`unreadable header: ${(error as Error).message}`);
  }
  if (!Array.isArray(specs)) throw fail('header has no tensor list');
  const count = totalElements(specs);
  if (bytes.length !== dataOffset + count * 4)
    throw fail(`expected ${dataOffset + count * 4} bytes, got ${bytes.length}`);
  // A view when the values are 4-byte aligned in memory (the coordinator allocates them so); else a copy.
  let flat: Float32Array;
  if ((bytes.byteOffset + dataOffset) % 4 === 0)
    flat = new Float32Array(bytes.buffer, bytes.byteOffset + dataOffset, count);
  else {
    flat = new Float32Array(count);
    new Uint8Array(flat.buffer).set(bytes.subarray(dataOffset));
  }
  const tensors: NamedTensors = new Map();
  let offset = 0;
  for (const spec of specs) {
    const n = elementCount(spec.shape);
    tensors.set(spec.name, { dtype: 'float32', shape: [...spec.shape], data: flat.subarray(offset, offset + n) });
    offset += n;
  }
  return { specs, dataOffset, tensors, flat };
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function bytesPerElement(encoding: Encoding): number {
  return encoding === 'float32' || encoding === 'uint32' ? 4 : encoding === 'float16' ? 2 : 1;
}

export function encodedByteLength(tensors: readonly UpdateTensor[]): number {
  return tensors.reduce((n, t) => n + elementCount(t.shape) * bytesPerElement(t.encoding), 0);
}

/**
 * Encodes a delta in the plan's tensor order. int8 uses symmetric per-tensor quantization
 * (scale = max|x|/127, q = round(x/scale)); its error per value is at most scale/2.
 */
export function encodeUpdate(
  delta: NamedTensors,
  specs: readonly TensorSpec[],
  encoding: Encoding,
): { tensors: UpdateTensor[]; bytes: Uint8Array } {
  const tensors: UpdateTensor[] = [];
  const parts: Uint8Array[] = [];
  for (const spec of specs) {
    const t = delta.get(spec.name);
    if (!t) throw new FedcxrError('federated_missing_tensor', `update lacks tensor ${spec.name}`);
    const values = t.data as Float32Array;
    if (values.length !== elementCount(spec.shape))
      throw new FedcxrError(
        'federated_shape',
        `update tensor ${spec.name} has ${values.length} values, plan says [${spec.shape}]`,
      );
    if (encoding === 'uint32')
      throw new FedcxrError('usage', 'uint32 updates are built by secure aggregation (maskUpdate)');
    if (encoding === 'float32') {
      parts.push(new Uint8Array(Float32Array.from(values).buffer));
      tensors.push({ name: spec.name, shape: [...spec.shape], encoding });
    } else if (encoding === 'float16') {
      const half = new Float16(values.length);
      half.set(values);
      parts.push(new Uint8Array(half.buffer));
      tensors.push({ name: spec.name, shape: [...spec.shape], encoding });
    } else {
      let maxAbs = 0;
      for (let i = 0; i < values.length; i++) maxAbs = Math.max(maxAbs, Math.abs(values[i]));
      const scale = maxAbs > 0 ? maxAbs / 127 : 1;
      const q = new Int8Array(values.length);
      for (let i = 0; i < values.length; i++) q[i] = Math.round(values[i] / scale);
      parts.push(new Uint8Array(q.buffer));
      tensors.push({ name: spec.name, shape: [...spec.shape], encoding, scale });
    }
  }
  return { tensors, bytes: Buffer.concat(parts) };
}

/** Splits bytes into chunk views (no copy). */
export function* chunksOf(bytes: Uint8Array, chunkBytes: number): Generator<Uint8Array> {
  for (let offset = 0; offset < bytes.length; offset += chunkBytes) yield bytes.subarray(offset, offset + chunkBytes);
}

/**
 * Turns an encoded update arriving in chunks of any size back into float32 values, tensor by tensor,
 * carrying partial elements across chunk boundaries. `onValues(offset, values)` receives consecutive runs
 * of the flat float32 vector (offset in elements, `values` valid only during the call).
 */
export class StreamingUpdateDecoder {
  private tensorIndex = 0;
  private elementInTensor = 0;
  private flatOffset = 0;
  private carry: Uint8Array = new Uint8Array(0);
  private readonly counts: number[];

  constructor(
    private readonly tensors: readonly UpdateTensor[],
    private readonly onValues: (offset: number, values: Float32Array) => void,
  ) {
    this.counts = tensors.map((t) => elementCount(t.shape));
  }

  get done(): boolean {
    this.skipEmpty();
    return this.tensorIndex >= this.tensors.length && this.carry.length === 0;
  }

  push(chunk: Uint8Array): void {
    let bytes = chunk;
    if (this.carry.length > 0) {
      bytes = new Uint8Array(this.carry.length + chunk.length);
      bytes.set(this.carry);
      bytes.set(chunk, this.carry.length);
      this.carry = new Uint8Array(0);
    }
    let pos = 0;
    while (pos < bytes.length) {
      this.skipEmpty();
      if (this.tensorIndex >= this.tensors.length)
        throw new FedcxrError('update_too_long', `update has ${bytes.length - pos} bytes past its last tensor`);
      const tensor = this.tensors[this.tensorIndex];
      const size = bytesPerElement(tensor.encoding);
      const remaining = this.counts[this.tensorIndex] - this.elementInTensor;
      const whole = Math.min(remaining, Math.floor((bytes.length - pos) / size));
      if (whole === 0) {
        this.carry = Uint8Array.prototype.slice.call(bytes, pos);
        return;
      }
      const values = decodeRun(bytes, pos, whole, tensor);
      this.onValues(this.flatOffset, values);
      pos += whole * size;
      this.elementInTensor += whole;
      this.flatOffset += whole;
      if (this.elementInTensor === this.counts[this.tensorIndex]) {
        this.tensorIndex++;
        this.elementInTensor = 0;
      }
    }
  }

  private skipEmpty(): void {
    while (this.tensorIndex < this.tensors.length && this.counts[this.tensorIndex] === this.elementInTensor) {
      this.tensorIndex++;
      this.elementInTensor = 0;
    }
  }
}

function decodeRun(bytes: Uint8Array, pos: number, count: number, tensor: UpdateTensor): Float32Array {
  const size = bytesPerElement(tensor.encoding);
  // Copy into a fresh aligned buffer: chunk offsets are arbitrary, and a Buffer's slice() is only a view.
  const raw = new Uint8Array(count * size);
  raw.set(bytes.subarray(pos, pos + count * size));
  if (tensor.encoding === 'float32') return new Float32Array(raw.buffer, 0, count);
  if (tensor.encoding === 'uint32')
    throw new FedcxrError('update_masked', 'masked (uint32) updates are summed, not decoded');
  if (tensor.encoding === 'float16') return Float32Array.from(new Float16(raw.buffer, 0, count));
  const q = new Int8Array(raw.buffer, 0, count);
  const scale = tensor.scale ?? Number.NaN;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = q[i] * scale;
  return out;
}

/** Element-wise a − b over two models with the same specs. */
export function subtractTensors(a: NamedTensors, b: NamedTensors): NamedTensors {
  const out: NamedTensors = new Map();
  for (const [name, t] of a) {
    const other = b.get(name);
    if (!other || other.data.length !== t.data.length)
      throw new FedcxrError('federated_shape', `tensor ${name} differs between the two models`);
    const values = new Float32Array(t.data.length);
    for (let i = 0; i < values.length; i++) values[i] = t.data[i] - other.data[i];
    out.set(name, { dtype: 'float32', shape: [...t.shape], data: values });
  }
  return out;
}

export function l2Norm(tensors: Iterable<HostTensor>): number {
  let sum = 0;
  for (const t of tensors) for (let i = 0; i < t.data.length; i++) sum += t.data[i] * t.data[i];
  return Math.sqrt(sum);
}
