import { type NamedTensors, Rng } from '@fedcxr/core';
import { describe, expect, it } from 'vitest';
import {
  chunksOf,
  decodeModel,
  encodedByteLength,
  encodeModel,
  encodeUpdate,
  StreamingUpdateDecoder,
  sha256Hex,
  specsOf,
} from './codec.js';

function randomTensors(seed: number): NamedTensors {
  const rng = new Rng(seed);
  const make = (shape: number[]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return { dtype: 'float32' as const, shape, data: Float32Array.from({ length: n }, () => (rng.next() - 0.5) * 4) };
  };
  return new Map([
    ['backbone.conv1.weight', make([4, 3, 3, 3])],
    ['backbone.bn1.bias', make([4])],
    ['empty', make([0])],
    ['head.fc.weight', make([5, 7])],
  ]);
}

function decodeAll(
  tensors: ReturnType<typeof encodeUpdate>['tensors'],
  bytes: Uint8Array,
  chunk: number,
): Float32Array {
  const total = tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
  const out = new Float32Array(total);
  const decoder = new StreamingUpdateDecoder(tensors, (offset, values) => out.set(values, offset));
  for (const part of chunksOf(bytes, chunk)) decoder.push(Buffer.from(part)); // Buffers, as socket.io delivers them
  expect(decoder.done).toBe(true);
  return out;
}

describe('model file', () => {
  it('round-trips names, shapes and values, and its hash changes with any value', () => {
    const model = randomTensors(1);
    const bytes = encodeModel(model);
    const decoded = decodeModel(bytes);
    expect(decoded.specs).toEqual(specsOf(model));
    for (const [name, t] of model) expect([...decoded.tensors.get(name)!.data]).toEqual([...t.data]);
    const changed = randomTensors(1);
    (changed.get('head.fc.weight')!.data as Float32Array)[3] += 1e-6;
    expect(sha256Hex(encodeModel(changed))).not.toBe(sha256Hex(bytes));
  });

  it('refuses truncated or foreign bytes with a FedcxrError naming the source', () => {
    const bytes = encodeModel(randomTensors(2));
    expect(() => decodeModel(bytes.subarray(0, bytes.length - 4), 'ckpt.fcxw')).toThrow(/ckpt.fcxw: expected/);
    expect(() => decodeModel(new Uint8Array(40), 'x.bin')).toThrow(/bad magic/);
  });
});

describe('update encodings through the streaming decoder', () => {
  const model = randomTensors(3);
  const specs = specsOf(model);
  const flat = Float32Array.from([...model.values()].flatMap((t) => [...t.data]));

  it.each([1, 3, 5, 64, 10_000])('float32 is exact for chunks of %i bytes', (chunk) => {
    const { tensors, bytes } = encodeUpdate(model, specs, 'float32');
    expect(bytes.length).toBe(encodedByteLength(tensors));
    expect([...decodeAll(tensors, bytes, chunk)]).toEqual([...flat]);
  });

  it.each([1, 7, 100])('float16 is within half precision for chunks of %i bytes', (chunk) => {
    const { tensors, bytes } = encodeUpdate(model, specs, 'float16');
    expect(bytes.length).toBe(flat.length * 2);
    const out = decodeAll(tensors, bytes, chunk);
    for (let i = 0; i < flat.length; i++)
      expect(Math.abs(out[i] - flat[i])).toBeLessThanOrEqual(Math.abs(flat[i]) * 2 ** -11 + 1e-7);
  });

  it('int8 error is at most half a quantization step per tensor', () => {
    const { tensors, bytes } = encodeUpdate(model, specs, 'int8');
    expect(bytes.length).toBe(flat.length);
    const out = decodeAll(tensors, bytes, 13);
    let offset = 0;
    for (const t of tensors) {
      const n = t.shape.reduce((a, b) => a * b, 1);
      for (let i = offset; i < offset + n; i++)
        expect(Math.abs(out[i] - flat[i])).toBeLessThanOrEqual(t.scale! / 2 + 1e-6);
      offset += n;
    }
  });

  it('refuses bytes past the last tensor', () => {
    const { tensors, bytes } = encodeUpdate(model, specs, 'float32');
    const decoder = new StreamingUpdateDecoder(tensors, () => {});
    decoder.push(bytes);
    expect(() => decoder.push(new Uint8Array(4))).toThrow(/past its last tensor/);
  });
});
