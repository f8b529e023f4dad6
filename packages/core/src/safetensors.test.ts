import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FedcxrError } from '@fedcxr/base';
import { describe, expect, it } from 'vitest';
import {
  decodeSafetensors,
  encodeSafetensors,
  float16BitsToNumber,
  numberToFloat16Bits,
  readSafetensors,
  writeSafetensors,
} from './safetensors.js';
import type { NamedTensors } from './tensors.js';

const fixtures = new URL('../../../tools/reference/fixtures/backbones/pth/', import.meta.url);

interface Expected {
  dtype: string;
  shape: number[];
  values: number[];
}

describe('safetensors', () => {
  it('reads the file written by the reference (Python safetensors) writer', () => {
    const expected = JSON.parse(readFileSync(new URL('expected.json', fixtures), 'utf8')) as Record<string, Expected>;
    const { tensors, metadata } = decodeSafetensors(readFileSync(new URL('tiny.safetensors', fixtures)));
    expect(metadata).toEqual({ format: 'pt', source: 'backbone_make_pth_fixture.py' });
    expect(tensors.size).toBe(20);
    const dtypes: Record<string, string> = { float64: 'float32', bfloat16: 'float32', int16: 'int32', int8: 'int32' };
    for (const [name, tensor] of tensors) {
      const want = expected[name];
      expect(tensor.shape, name).toEqual(want.shape);
      expect(tensor.dtype, name).toBe(dtypes[want.dtype] ?? want.dtype);
      const tolerance = want.dtype === 'float64' ? 1e-7 : 0;
      Array.from(tensor.data).forEach((v, i) => {
        expect(Math.abs(v - want.values[i]) <= tolerance * Math.abs(want.values[i]), `${name}[${i}]`).toBe(true);
      });
    }
  });

  it('round-trips every HostTensor dtype through write and read, with aligned data', async () => {
    const tensors: NamedTensors = new Map([
      ['a.weight', { dtype: 'float32', shape: [2, 2], data: Float32Array.of(1.5, -2, 3e-8, 1e30) }],
      ['half', { dtype: 'float16', shape: [3], data: Float32Array.of(0.5, -65504, 2 ** -24) }],
      ['count', { dtype: 'int64', shape: [], data: Float64Array.of(2 ** 40) }],
      ['index', { dtype: 'int32', shape: [2], data: Int32Array.of(-7, 2 ** 31 - 1) }],
      ['bytes', { dtype: 'uint8', shape: [2], data: Uint8Array.of(0, 255) }],
      ['mask', { dtype: 'bool', shape: [2], data: Uint8Array.of(1, 0) }],
      ['empty', { dtype: 'float32', shape: [0, 3], data: new Float32Array(0) }],
    ]);
    const dir = await mkdtemp(join(tmpdir(), 'st-'));
    try {
      const path = join(dir, 'w.safetensors');
      await writeSafetensors(path, tensors, { arch: 'x' });
      const bytes = await readFile(path);
      const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
      expect(headerLength % 8).toBe(0);
      const back = await readSafetensors(path);
      expect(back.metadata).toEqual({ arch: 'x' });
      expect([...back.tensors.keys()]).toEqual([...tensors.keys()]);
      for (const [name, tensor] of tensors) {
        expect(back.tensors.get(name), name).toEqual(tensor);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('rounds float16 to nearest even and keeps the specials', () => {
    expect(numberToFloat16Bits(1)).toBe(0x3c00);
    expect(numberToFloat16Bits(-2)).toBe(0xc000);
    expect(numberToFloat16Bits(65504)).toBe(0x7bff);
    expect(numberToFloat16Bits(1e6)).toBe(0x7c00);
    expect(numberToFloat16Bits(Number.NaN)).toBe(0x7e00);
    expect(numberToFloat16Bits(2 ** -24)).toBe(1);
    expect(numberToFloat16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie → even
    expect(numberToFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    for (let bits = 0; bits < 0x7c00; bits += 37) expect(numberToFloat16Bits(float16BitsToNumber(bits))).toBe(bits);
  });

  it('names the problem in corrupt files', () => {
    const good = encodeSafetensors(new Map([['w', { dtype: 'float32', shape: [2], data: Float32Array.of(1, 2) }]]));
    expect(() => decodeSafetensors(good.subarray(0, 5), 'x.safetensors')).toThrow(/x.safetensors: file is shorter/);
    expect(() => decodeSafetensors(good.subarray(0, good.length - 4), 'x.safetensors')).toThrow(/invalid data_offsets/);
    const bad = Uint8Array.from(good);
    bad[8] = 0x41;
    expect(() => decodeSafetensors(bad, 'x.safetensors')).toThrow(FedcxrError);
    expect(() => decodeSafetensors(bad, 'x.safetensors')).toThrow(/not valid JSON/);
  });
});
