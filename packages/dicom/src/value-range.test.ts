import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readDicom } from './read.js';
import { byteRange, valueRange } from './value-range.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const rsnaDir = join(repoRoot, '../shared/data/rsna-pneumonia/dicom');

function plainRange(values: ArrayLike<number>, n = values.length) {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    min = Math.min(min, values[i]);
    max = Math.max(max, values[i]);
  }
  return n === 0 ? { min: 0, max: -1 } : { min, max };
}

describe('value ranges', () => {
  it('valueRange and byteRange agree with a plain min/max (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { maxLength: 40 }), (list) => {
        expect(valueRange(Int32Array.from(list))).toEqual(plainRange(list));
      }),
      { seed: 3, numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.nat(5), fc.nat(3), (list, cut, shift) => {
        // Also at every alignment: byteRange reads four bytes at a time where it can.
        const bytes = new Uint8Array(list.length + shift).subarray(shift);
        bytes.set(list);
        const n = Math.max(0, bytes.length - cut);
        expect(byteRange(bytes, n)).toEqual(plainRange(bytes, n));
      }),
      { seed: 4, numRuns: 300 },
    );
  });

  it('byteRange over long arrays: extremes anywhere, and the early stop once 0 and 255 are seen', () => {
    const length = 70_001;
    const cases: Array<[string, Array<[number, number]>]> = [
      ['narrow', [[40_000, 7]]],
      ['0 early, no 255', [[2, 0]]],
      ['255 early, no 0', [[2, 255]]],
      [
        'extremes at both ends',
        [
          [0, 0],
          [length - 1, 255],
        ],
      ],
      [
        'extremes early, others later',
        [
          [3, 255],
          [5, 0],
          [60_000, 1],
        ],
      ],
    ];
    for (const [name, sets] of cases) {
      const bytes = new Uint8Array(length + 1).subarray(1).fill(100);
      for (const [at, value] of sets) bytes[at] = value;
      expect(byteRange(bytes, length), name).toEqual(plainRange(bytes));
    }
  });

  it.skipIf(!existsSync(rsnaDir))(
    'the range the reader records for 8-bit JPEG frames is their true range',
    async () => {
      for (const name of readdirSync(rsnaDir).sort().slice(0, 3)) {
        const { stored } = (await readDicom(join(rsnaDir, name))).frames[0];
        expect(valueRange(stored), name).toEqual(plainRange(stored));
      }
    },
  );

  it.skipIf(!existsSync(rsnaDir))('no range is recorded from the bytes when masking changes the values', async () => {
    // The same JPEG frame declared signed (Pixel Representation 1): bytes ≥ 128 become negative stored values.
    const bytes = new Uint8Array(readFileSync(join(rsnaDir, readdirSync(rsnaDir).sort()[0])));
    const element = Buffer.from([0x28, 0x00, 0x03, 0x01, 0x55, 0x53, 0x02, 0x00, 0x00, 0x00]);
    const at = Buffer.from(bytes).indexOf(element);
    expect(at).toBeGreaterThan(0);
    bytes[at + 8] = 1;
    const { stored } = (await readDicom(bytes, { file: 'signed.dcm' })).frames[0];
    const range = plainRange(stored);
    expect(range.min).toBeLessThan(0);
    expect(valueRange(stored)).toEqual(range);
  });
});
