import { readFileSync } from 'node:fs';
import { FedcxrError, type HostTensor } from '@fedcxr/core';
import { describe, expect, it } from 'vitest';
import { findStateDict, parsePth, readPth } from './pth.js';

const fixtures = new URL('../../../../tools/reference/fixtures/backbones/pth/', import.meta.url);
const fixture = (name: string) => new URL(name, fixtures).pathname;

interface Expected {
  dtype: string;
  shape: number[];
  values: number[];
}
const expected = JSON.parse(readFileSync(fixture('expected.json'), 'utf8')) as Record<string, Expected>;
const hostDtype: Record<string, string> = { float64: 'float32', bfloat16: 'float32', int16: 'int32', int8: 'int32' };

function expectMatches(name: string, tensor: HostTensor | undefined): void {
  const want = expected[name];
  expect(tensor, name).toBeDefined();
  expect(tensor?.shape, name).toEqual(want.shape);
  expect(tensor?.dtype, name).toBe(hostDtype[want.dtype] ?? want.dtype);
  const tolerance = want.dtype === 'float64' ? 1e-7 : 0;
  const got = Array.from(tensor?.data ?? []);
  expect(got.length, name).toBe(want.values.length);
  got.forEach((v, i) => {
    expect(Math.abs(v - want.values[i]) <= tolerance * Math.abs(want.values[i]), `${name}[${i}] ${v}`).toBe(true);
  });
}

describe('.pth reader', () => {
  for (const file of ['tiny.pth', 'tiny-legacy.pth', 'tiny-deflated.pth', 'tiny-nested.pth']) {
    it(`reads every tensor of ${file} exactly (dtypes, strides, offsets, shared storages)`, async () => {
      const tensors = await readPth(fixture(file));
      expect([...tensors.keys()]).toEqual(Object.keys(expected));
      for (const name of Object.keys(expected)) expectMatches(name, tensors.get(name));
    });
  }

  it('keeps the rest of a training checkpoint readable', () => {
    const root = parsePth(readFileSync(fixture('tiny-nested.pth')));
    expect(root).toBeInstanceOf(Map);
    const map = root as Map<string, unknown>;
    expect(map.get('epoch')).toBe(3);
    expect((map.get('args') as Map<string, unknown>).get('lr')).toBe(0.01);
  });

  it('reports files that are not checkpoints, truncated archives and missing state_dicts', () => {
    const zip = readFileSync(fixture('tiny.pth'));
    expect(() => parsePth(zip.subarray(0, zip.length - 30), 'cut.pth')).toThrow(/cut.pth: zip archive is truncated/);
    expect(() => parsePth(new TextEncoder().encode('hello world'), 'x.pth')).toThrow(/not a PyTorch checkpoint/);
    expect(() => findStateDict(new Map([['epoch', 3]]), 'y.pth')).toThrow(FedcxrError);
    expect(() => findStateDict(new Map([['epoch', 3]]), 'y.pth')).toThrow(/no state_dict.*epoch/);
  });

  it('names unsupported pickle opcodes instead of guessing', () => {
    // PROTO 2, then opcode 'S' (protocol-0 STRING) which a state_dict never uses.
    const pickle = Uint8Array.of(0x80, 0x02, 0x53, 0x27, 0x61, 0x27, 0x0a, 0x2e);
    expect(() => parsePth(pickle, 'odd.pth')).toThrow(/odd.pth.*magic number|unsupported pickle opcode 0x53/);
  });
});
