import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import {
  drawBoxes,
  drawBoxesForDisplay,
  encodeRgbPng,
  enlargeForDisplay,
  greyToRgb,
  heatmapOverlay,
  jet,
} from './overlay.js';

const pixel = (image: { width: number; data: Uint8Array }, x: number, y: number) =>
  Array.from(image.data.slice((y * image.width + x) * 3, (y * image.width + x) * 3 + 3));

describe('overlays', () => {
  it('draws the box outline in its colour and leaves the inside untouched', () => {
    const grey = new Float32Array(64 * 64).fill(0.5);
    const out = drawBoxes(greyToRgb(grey, 64, 64), [{ box: [10, 20, 40, 50], color: [255, 0, 0] }]);
    expect(pixel(out, 10, 30)).toEqual([255, 0, 0]);
    expect(pixel(out, 40, 30)).toEqual([255, 0, 0]);
    expect(pixel(out, 25, 20)).toEqual([255, 0, 0]);
    expect(pixel(out, 25, 35)).toEqual([128, 128, 128]);
    expect(pixel(out, 5, 5)).toEqual([128, 128, 128]);
  });

  it('writes the label text in white on a strip of the box colour above the box', () => {
    const grey = new Uint8Array(100 * 100);
    const out = drawBoxes(greyToRgb(grey, 100, 100), [{ box: [20, 40, 90, 90], text: 'AB 0.9', color: [0, 0, 255] }]);
    let white = 0;
    let blue = 0;
    for (let y = 31; y < 40; y++) {
      for (let x = 20; x < 60; x++) {
        const [r, g, b] = pixel(out, x, y);
        if (r === 255 && g === 255 && b === 255) white++;
        if (r === 0 && g === 0 && b === 255) blue++;
      }
    }
    expect(white).toBeGreaterThan(20);
    expect(blue).toBeGreaterThan(white);
  });

  it('enlarges a small image by a whole factor for display, each pixel a square, and leaves a large one alone', () => {
    const grey = Float32Array.from({ length: 6 * 4 }, (_, i) => i / 24);
    const small = greyToRgb(grey, 6, 4);
    const { image, scale } = enlargeForDisplay(small, 10);
    // Shorter side 4 → 12 (factor 3, the least whole factor reaching 10).
    expect([image.width, image.height, scale]).toEqual([18, 12, 3]);
    for (let y = 0; y < 12; y++)
      for (let x = 0; x < 18; x++)
        expect(image.data[(y * 18 + x) * 3]).toBe(small.data[(Math.floor(y / 3) * 6 + Math.floor(x / 3)) * 3]);
    const large = greyToRgb(new Float32Array(600 * 520), 600, 520);
    expect(enlargeForDisplay(large).image).toBe(large);
  });

  it('draws display boxes where the enlarged image has the box (coordinates scaled with it)', () => {
    const image = greyToRgb(new Float32Array(64 * 64), 64, 64);
    const shown = drawBoxesForDisplay(image, [{ box: [8, 8, 24, 40], color: [255, 0, 0] }]);
    expect([shown.width, shown.height]).toEqual([512, 512]);
    const red = (x: number, y: number) =>
      shown.data[(y * 512 + x) * 3] === 255 && shown.data[(y * 512 + x) * 3 + 1] === 0;
    // The outline runs along x = 64…192, y = 64…320 (×8); inside stays black.
    expect(red(64, 200)).toBe(true);
    expect(red(192, 100)).toBe(true);
    expect(red(120, 64)).toBe(true);
    expect(red(120, 320)).toBe(true);
    expect(red(120, 200)).toBe(false);
    expect(red(40, 200)).toBe(false);
  });

  it("moves a label left where it would run off the image's right edge", () => {
    const image = greyToRgb(new Float32Array(64 * 64), 64, 64);
    const shown = drawBoxesForDisplay(image, [{ box: [50, 30, 63, 50], text: 'CARDIAC 0.97', color: [255, 0, 0] }]);
    // The strip sits just above the box (y < 240) and ends at the right edge, starting left of the box (x < 400).
    const redRow = (y: number) =>
      Array.from(
        { length: 512 },
        (_, x) => shown.data[(y * 512 + x) * 3] === 255 && shown.data[(y * 512 + x) * 3 + 1] === 0,
      );
    const row = redRow(236);
    expect(row[511]).toBe(true);
    expect(row.indexOf(true)).toBeLessThan(400);
  });

  it('maps heat through jet: cold is blue, hot is red', () => {
    expect(jet(0)).toEqual([0, 0, 128]);
    expect(jet(1)).toEqual([128, 0, 0]);
    expect(jet(0.5)).toEqual([128, 255, 128]);
    const heat = new Float32Array([0, 1, 2, 3]);
    const out = heatmapOverlay(new Float32Array(4), heat, 2, 2, 1);
    expect(pixel(out, 0, 0)).toEqual([0, 0, 128]);
    expect(pixel(out, 1, 1)).toEqual([128, 0, 0]);
  });

  it('encodes a PNG that decodes to the same pixels', () => {
    const image = greyToRgb(new Float32Array([0, 0.25, 0.5, 1]), 2, 2);
    const decoded = PNG.sync.read(Buffer.from(encodeRgbPng(image)));
    expect([decoded.width, decoded.height]).toEqual([2, 2]);
    expect(Array.from(decoded.data.slice(0, 4))).toEqual([0, 0, 0, 255]);
    expect(Array.from(decoded.data.slice(12, 16))).toEqual([255, 255, 255, 255]);
  });
});
