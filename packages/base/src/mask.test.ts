import { describe, expect, it } from 'vitest';
import { boxIou, maskToBoxes } from './mask.js';
import { decodeGreyRaster, encodeGreyJpeg, encodeGreyPng, type GreyRaster } from './raster.js';

function blank(width: number, height: number): GreyRaster {
  return { width, height, channels: 1, bitDepth: 8, data: new Uint8Array(width * height) };
}
function fillRect(mask: GreyRaster, x: number, y: number, w: number, h: number, value = 255): void {
  for (let r = y; r < y + h; r++) for (let c = x; c < x + w; c++) mask.data[r * mask.width + c] = value;
}
function fillEllipse(mask: GreyRaster, cx: number, cy: number, rx: number, ry: number): void {
  for (let r = 0; r < mask.height; r++)
    for (let c = 0; c < mask.width; c++)
      if (((c - cx) / rx) ** 2 + ((r - cy) / ry) ** 2 <= 1) mask.data[r * mask.width + c] = 255;
}

describe('maskToBoxes', () => {
  it('one box per component, in pixel-extent convention', () => {
    const mask = blank(64, 48);
    fillRect(mask, 5, 7, 10, 4);
    fillRect(mask, 40, 30, 1, 1);
    fillRect(mask, 40, 2, 20, 9);
    expect(maskToBoxes(mask, { minArea: 1 })).toEqual([
      { bbox: [40, 2, 20, 9], pixelArea: 180 },
      { bbox: [5, 7, 10, 4], pixelArea: 40 },
      { bbox: [40, 30, 1, 1], pixelArea: 1 },
    ]);
  });

  it('joins diagonal neighbours (8-connectivity) and drops components under minArea', () => {
    const mask = blank(20, 20);
    for (let i = 0; i < 10; i++) mask.data[(3 + i) * 20 + (2 + i)] = 255; // a diagonal stroke
    fillRect(mask, 17, 17, 1, 2); // 2-pixel speck
    expect(maskToBoxes(mask)).toEqual([{ bbox: [2, 3, 10, 10], pixelArea: 10 }]);
    expect(maskToBoxes(mask, { minArea: 2 })).toHaveLength(2);
  });

  it('ellipses give their analytic bounding boxes', () => {
    const mask = blank(100, 80);
    fillEllipse(mask, 30, 40, 12, 20);
    fillEllipse(mask, 75, 20, 8, 6);
    const boxes = maskToBoxes(mask).map((c) => c.bbox);
    expect(boxes).toEqual([
      [67, 14, 17, 13],
      [18, 20, 25, 41],
    ]);
  });

  it('0/1 masks count any non-zero pixel; grey values below the threshold are background', () => {
    const binary = blank(10, 10);
    fillRect(binary, 2, 2, 3, 3, 1);
    expect(maskToBoxes(binary).map((c) => c.bbox)).toEqual([[2, 2, 3, 3]]);
    const grey = blank(10, 10);
    fillRect(grey, 0, 0, 10, 10, 60); // faint background
    fillRect(grey, 4, 5, 2, 3, 200);
    expect(maskToBoxes(grey).map((c) => c.bbox)).toEqual([[4, 5, 2, 3]]);
    expect(maskToBoxes(grey, { threshold: 0.2 }).map((c) => c.bbox)).toEqual([[0, 0, 10, 10]]);
  });

  it('16-bit masks threshold at half of 65535', () => {
    const mask: GreyRaster = { width: 8, height: 8, channels: 1, bitDepth: 16, data: new Uint16Array(64) };
    mask.data.fill(30000, 0, 8);
    mask.data.fill(65535, 16, 16 + 8 * 3);
    expect(maskToBoxes(mask).map((c) => c.bbox)).toEqual([[0, 2, 8, 3]]);
  });

  it('JPEG-compressed masks with several components give the same boxes (±1 px) as the PNG', () => {
    const mask = blank(256, 200);
    fillEllipse(mask, 60, 70, 30, 45);
    fillEllipse(mask, 190, 60, 25, 18);
    fillRect(mask, 150, 150, 60, 12);
    fillRect(mask, 20, 170, 6, 6);
    const exact = maskToBoxes(decodeGreyRaster(encodeGreyPng(mask))).map((c) => c.bbox);
    expect(exact).toHaveLength(4);
    for (const quality of [95, 75, 50]) {
      const jpeg = decodeGreyRaster(encodeGreyJpeg(mask, quality));
      // Ringing really is there: some pixels are neither 0 nor 255.
      expect(jpeg.data.some((v) => v !== 0 && v !== 255)).toBe(true);
      const boxes = maskToBoxes(jpeg).map((c) => c.bbox);
      expect(boxes).toHaveLength(4);
      for (let i = 0; i < 4; i++) {
        for (let k = 0; k < 4; k++) expect(Math.abs(boxes[i][k] - exact[i][k])).toBeLessThanOrEqual(1);
        expect(boxIou(boxes[i], exact[i])).toBeGreaterThan(0.9);
      }
    }
  });

  it('boxIou', () => {
    expect(boxIou([0, 0, 10, 10], [0, 0, 10, 10])).toBe(1);
    expect(boxIou([0, 0, 10, 10], [5, 0, 10, 10])).toBeCloseTo(50 / 150);
    expect(boxIou([0, 0, 1, 1], [2, 2, 1, 1])).toBe(0);
  });
});
