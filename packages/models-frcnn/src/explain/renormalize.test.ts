import { describe, expect, it } from 'vitest';
import { renormalizeCamInBoxes } from './pipeline.js';

describe('renormalizeCamInBoxes (pytorch-grad-cam renormalize_cam_in_bounding_boxes)', () => {
  // 4 wide × 3 high.
  const cam = Float32Array.from([0.9, 0.1, 0.2, 0.8, 0.5, 0.3, 0.6, 1.0, 0.7, 0.4, 0.2, 0.0]);

  it('zeroes the heat outside the boxes and min-max scales it inside each', () => {
    // x1 1.7 → 1 and y2 2.9 → 2, as Python's int(): the box covers columns 1–2 of rows 0–1.
    const out = renormalizeCamInBoxes(cam, 4, 3, [[1.7, 0, 3, 2.9]]);
    const inside = [0.1, 0.2, 0.3, 0.6];
    const scaled = inside.map((v) => (v - 0.1) / (1e-7 + 0.5));
    const expected = [0, scaled[0], scaled[1], 0, 0, scaled[2], scaled[3], 0, 0, 0, 0, 0];
    const top = Math.max(...expected);
    expected.forEach((v, i) => {
      expect(out[i]).toBeCloseTo(v / (1e-7 + top), 6);
    });
    expect(Math.max(...out)).toBeCloseTo(1, 6);
  });

  it('scales each box on its own (a later box overwrites an overlap) and clips boxes to the image', () => {
    const out = renormalizeCamInBoxes(cam, 4, 3, [
      [0, 0, 2, 1],
      [1, 0, 9, 1],
    ]);
    // Box 2 (columns 1–3 of row 0: 0.1, 0.2, 0.8) overwrites box 1's column 1; column 0 keeps box 1's scale.
    expect(out[0]).toBeCloseTo(1, 5);
    expect(out[1]).toBeCloseTo(0, 5);
    expect(out[2]).toBeCloseTo((0.2 - 0.1) / 0.7, 5);
    expect(out[3]).toBeCloseTo(1, 5);
    for (let i = 4; i < 12; i++) expect(out[i]).toBe(0);
  });
});
