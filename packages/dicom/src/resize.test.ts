import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Box, boxToOriginal, boxToResized, resizeKeepAspect, resizeTransform } from './resize.js';

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
});
