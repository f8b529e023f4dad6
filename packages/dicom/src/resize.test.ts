import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Box, boxToOriginal, boxToResized, resizeKeepAspect, resizeLookup, resizeTransform } from './resize.js';

function constant(width: number, height: number, value: number) {
  return { data: new Float32Array(width * height).fill(value), width, height };
}

describe('resizeKeepAspect', () => {
  it('scales the longer side to size, keeps the aspect, letterboxes at the bottom/right', () => {
    const t = resizeTransform(1841, 1955, 512);
    expect([t.contentWidth, t.contentHeight, t.outputWidth, t.outputHeight]).toEqual([482, 512, 512, 512]);
    const r = resizeKeepAspect(constant(1841, 1955, 0.7), 512);
    expect(r.width).toBe(512);
    expect(r.data[0]).toBeCloseTo(0.7, 6);
    expect(r.data[511 * 512 + 481]).toBeCloseTo(0.7, 6);
    expect(r.data[511 * 512 + 482]).toBe(0);
    const bare = resizeKeepAspect(constant(1841, 1955, 0.7), 512, { letterbox: false });
    expect([bare.width, bare.height]).toEqual([482, 512]);
  });

  it('halving averages 2×2 blocks of a ramp exactly in the interior', () => {
    const width = 8;
    const data = Float32Array.from({ length: 64 }, (_, i) => i % width);
    const r = resizeKeepAspect({ data, width, height: 8 }, 4);
    // Output pixel 1 covers source columns 2..3 (centre 3.0) and its neighbours with a triangle of radius 2.
    expect(r.data[1]).toBeCloseTo(2.5, 5);
    expect(r.data[2]).toBeCloseTo(4.5, 5);
  });

  it('upscaling interpolates bilinearly between pixel centres', () => {
    const r = resizeKeepAspect({ data: Float32Array.from([0, 1]), width: 2, height: 1 }, 4, { letterbox: false });
    expect([r.width, r.height]).toEqual([4, 2]);
    const rounded = Array.from(r.data).map((v) => Math.round(v * 1000) / 1000);
    expect(rounded).toEqual([0, 0.25, 0.75, 1, 0, 0.25, 0.75, 1]);
  });

  it('box mapping is exact both ways (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4000 }),
        fc.integer({ min: 1, max: 4000 }),
        fc.integer({ min: 16, max: 1024 }),
        fc.tuple(fc.double({ min: 0, max: 4000, noNaN: true }), fc.double({ min: 0, max: 4000, noNaN: true })),
        (w, h, size, [x, y]) => {
          const t = resizeTransform(w, h, size);
          const box: Box = [x, y, 10, 20];
          const back = boxToOriginal(boxToResized(box, t), t);
          for (let k = 0; k < 4; k++) expect(back[k]).toBeCloseTo(box[k], 9);
          // The image corner maps onto the content corner.
          const corner = boxToResized([0, 0, w, h], t);
          expect(corner[2]).toBeCloseTo(t.contentWidth, 9);
          expect(corner[3]).toBeCloseTo(t.contentHeight, 9);
        },
      ),
      { seed: 7, numRuns: 200 },
    );
  });

  it('resizeLookup gives the same floats as resizeKeepAspect over the looked-up image (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 70 }),
        fc.integer({ min: 1, max: 70 }),
        fc.integer({ min: 1, max: 90 }),
        fc.integer({ min: -50, max: 50 }),
        fc.integer({ min: 1, max: 300 }),
        fc.boolean(),
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        (width, height, size, offset, span, letterbox, seed) => {
          // Deterministic pseudo-random values in [offset, offset + span) and a table over that range.
          let state = seed;
          const next = () => {
            state = (Math.imul(state, 1103515245) + 12345) >>> 0;
            return state;
          };
          const values = Int32Array.from({ length: width * height }, () => offset + (next() % span));
          const table = Float32Array.from({ length: span }, () => (next() % 10007) / 10007);
          const looked = Float32Array.from(values, (v) => table[v - offset]);
          const options = { letterbox, padValue: letterbox ? 0.25 : 0 };
          const fused = resizeLookup(values, offset, table, width, height, size, options);
          const twoStep = resizeKeepAspect({ data: looked, width, height }, size, options);
          expect(fused.transform).toEqual(twoStep.transform);
          expect(Buffer.from(fused.data.buffer).equals(Buffer.from(twoStep.data.buffer))).toBe(true);
        },
      ),
      { seed: 11, numRuns: 300 },
    );
  });

  it('resizeLookup halving 64×40 → 32×20: every table layout gives the floats of resizeKeepAspect', () => {
    // Offsets ≥ 0 index a widened table directly, negative ones subtract, a table as large as the image is read as is.
    for (const [offset, span] of [
      [0, 256],
      [17, 100],
      [-30, 200],
      [5, 64 * 40],
    ]) {
      const values = Int32Array.from({ length: 64 * 40 }, (_, i) => offset + ((i * 7919) % span));
      const table = Float32Array.from({ length: span }, (_, k) => Math.fround(Math.sin(k) * 0.5 + 0.5));
      const looked = Float32Array.from(values, (v) => table[v - offset]);
      const fused = resizeLookup(values, offset, table, 64, 40, 32);
      const twoStep = resizeKeepAspect({ data: looked, width: 64, height: 40 }, 32);
      expect([fused.transform.contentWidth, fused.transform.contentHeight]).toEqual([32, 20]);
      expect(Buffer.from(fused.data.buffer).equals(Buffer.from(twoStep.data.buffer)), `offset ${offset}`).toBe(true);
    }
  });

  it('resizeLookup on an integer shrink (the uniform 4-tap interior) matches a direct triangle filter', () => {
    // 8 → 4: every output averages source columns/rows 2o-1..2o+2 with weights 1/8, 3/8, 3/8, 1/8 (edges renormalized).
    const values = Int32Array.from({ length: 64 }, (_, i) => (i * 37) % 11);
    const table = Float32Array.from({ length: 11 }, (_, v) => v / 10);
    const r = resizeLookup(values, 0, table, 8, 8, 4);
    const at = (x: number, y: number) => table[values[y * 8 + x]];
    const w = [1 / 8, 3 / 8, 3 / 8, 1 / 8];
    let expected = 0;
    for (let j = 0; j < 4; j++) {
      let row = 0;
      for (let i = 0; i < 4; i++) row += at(1 + i, 1 + j) * w[i];
      expected += row * w[j];
    }
    expect(r.data[1 * 4 + 1]).toBeCloseTo(expected, 6);
  });

  it('resizeLookup refuses too few values', () => {
    expect(() => resizeLookup(new Int32Array(5), 0, new Float32Array(1), 3, 2, 4)).toThrow(
      /5 values cannot fill a 3x2/,
    );
  });
});
