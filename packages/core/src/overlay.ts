/**
 * Pictures people look at: a grey image with labelled detection boxes, and a heat map blended over a grey
 * image (jet colour map, as pytorch-grad-cam shows CAMs). Output is 8-bit RGB, encoded as PNG.
 */
import { PNG } from 'pngjs';

export interface RgbImage {
  width: number;
  height: number;
  /** RGB, 8-bit, row-major. */
  data: Uint8Array;
}

export interface OverlayBox {
  /** x1, y1, x2, y2 in the image's pixels. */
  box: [number, number, number, number];
  text?: string;
  color?: [number, number, number];
}

/** Distinct colours for class indices (Tableau 10). */
export const CLASS_COLORS: [number, number, number][] = [
  [31, 119, 180],
  [255, 127, 14],
  [44, 160, 44],
  [214, 39, 40],
  [148, 103, 189],
  [140, 86, 75],
  [227, 119, 194],
  [127, 127, 127],
  [188, 189, 34],
  [23, 190, 207],
];

/** Grey values (Float32 in [0, 1] or 8-bit) to RGB. */
export function greyToRgb(grey: Float32Array | Uint8Array, width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  const scale = grey instanceof Float32Array ? 255 : 1;
  for (let i = 0; i < width * height; i++) {
    const v = Math.max(0, Math.min(255, Math.round(grey[i] * scale)));
    data[i * 3] = v;
    data[i * 3 + 1] = v;
    data[i * 3 + 2] = v;
  }
  return { width, height, data };
}

/**
 * Boxes drawn on a small image (a 64 px detector input) leave no room for their labels: `drawBoxesForDisplay`
 * first enlarges the image by a whole factor (nearest neighbour: every source pixel stays a visible square, no
 * invented detail) until its shorter side is at least this, then draws the boxes scaled by the same factor.
 */
export const DISPLAY_MIN_SIDE = 512;

/** `image` enlarged by the whole factor that brings its shorter side to `minSide` (1: already that large). */
export function enlargeForDisplay(image: RgbImage, minSide = DISPLAY_MIN_SIDE): { image: RgbImage; scale: number } {
  const scale = Math.max(1, Math.ceil(minSide / Math.max(1, Math.min(image.width, image.height))));
  if (scale === 1) return { image, scale };
  const width = image.width * scale;
  const height = image.height * scale;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const row = Math.floor(y / scale) * image.width;
    for (let x = 0; x < width; x++) {
      const from = (row + Math.floor(x / scale)) * 3;
      const to = (y * width + x) * 3;
      data[to] = image.data[from];
      data[to + 1] = image.data[from + 1];
      data[to + 2] = image.data[from + 2];
    }
  }
  return { image: { width, height, data }, scale };
}

/** drawBoxes on the image enlarged for display (see DISPLAY_MIN_SIDE); box coordinates are the image's own. */
export function drawBoxesForDisplay(image: RgbImage, boxes: readonly OverlayBox[]): RgbImage {
  const { image: large, scale } = enlargeForDisplay(image);
  const side = Math.min(large.width, large.height);
  // Labels legible where a page shows the picture at half its size.
  return drawBoxes(
    large,
    boxes.map((b) => ({ ...b, box: b.box.map((v) => v * scale) as OverlayBox['box'] })),
    { thickness: Math.max(2, Math.round(side / 170)), fontScale: Math.max(2, Math.round(side / 200)) },
  );
}

/** Draws boxes (2 px outline, scaled up for large images) with their text on a label strip. */
export function drawBoxes(
  image: RgbImage,
  boxes: readonly OverlayBox[],
  style: { thickness?: number; fontScale?: number } = {},
): RgbImage {
  const out: RgbImage = { ...image, data: image.data.slice() };
  const thickness = style.thickness ?? Math.max(2, Math.round(Math.min(image.width, image.height) / 300));
  const fontScale = style.fontScale ?? Math.max(1, Math.round(Math.min(image.width, image.height) / 400));
  boxes.forEach((item, index) => {
    const color = item.color ?? CLASS_COLORS[index % CLASS_COLORS.length];
    const [x1, y1, x2, y2] = item.box.map(Math.round);
    for (let t = 0; t < thickness; t++) {
      fillRect(out, x1, y1 + t, x2, y1 + t, color);
      fillRect(out, x1, y2 - t, x2, y2 - t, color);
      fillRect(out, x1 + t, y1, x1 + t, y2, color);
      fillRect(out, x2 - t, y1, x2 - t, y2, color);
    }
    if (item.text) {
      const text = item.text.toUpperCase();
      const textHeight = (GLYPH_ROWS + 2) * fontScale;
      const textWidth = text.length * (GLYPH_COLS + 1) * fontScale + fontScale;
      const top = y1 - textHeight >= 0 ? y1 - textHeight : y1;
      // A label that would run off the right edge moves left, so the score stays readable.
      const left = Math.max(0, Math.min(x1, out.width - textWidth));
      fillRect(out, left, top, left + textWidth - 1, top + textHeight - 1, color);
      drawText(out, text, left + fontScale, top + fontScale, fontScale, [255, 255, 255]);
    }
  });
  return out;
}

/** Blends a heat map (any range; normalized to [0, 1] here) over a grey image with the jet colour map. */
export function heatmapOverlay(
  grey: Float32Array | Uint8Array,
  heat: Float32Array,
  width: number,
  height: number,
  alpha = 0.5,
): RgbImage {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const v of heat) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const span = hi > lo ? hi - lo : 1;
  const base = greyToRgb(grey, width, height);
  for (let i = 0; i < width * height; i++) {
    const [r, g, b] = jet((heat[i] - lo) / span);
    base.data[i * 3] = Math.round((1 - alpha) * base.data[i * 3] + alpha * r);
    base.data[i * 3 + 1] = Math.round((1 - alpha) * base.data[i * 3 + 1] + alpha * g);
    base.data[i * 3 + 2] = Math.round((1 - alpha) * base.data[i * 3 + 2] + alpha * b);
  }
  return base;
}

/** The jet colour map (matplotlib's, piecewise linear), t in [0, 1] → RGB 0–255. */
export function jet(t: number): [number, number, number] {
  const x = Math.max(0, Math.min(1, t));
  const channel = (offset: number) => Math.max(0, Math.min(1, 1.5 - Math.abs(4 * x - offset)));
  return [Math.round(255 * channel(3)), Math.round(255 * channel(2)), Math.round(255 * channel(1))];
}

export function encodeRgbPng(image: RgbImage): Uint8Array {
  const png = new PNG({ width: image.width, height: image.height, colorType: 2, inputColorType: 2, bitDepth: 8 });
  png.data = Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength);
  return new Uint8Array(PNG.sync.write(png, { colorType: 2, inputColorType: 2 }));
}

function fillRect(image: RgbImage, x1: number, y1: number, x2: number, y2: number, color: readonly number[]): void {
  const xa = Math.max(0, Math.min(x1, x2));
  const xb = Math.min(image.width - 1, Math.max(x1, x2));
  const ya = Math.max(0, Math.min(y1, y2));
  const yb = Math.min(image.height - 1, Math.max(y1, y2));
  for (let y = ya; y <= yb; y++) {
    for (let x = xa; x <= xb; x++) {
      const o = (y * image.width + x) * 3;
      image.data[o] = color[0];
      image.data[o + 1] = color[1];
      image.data[o + 2] = color[2];
    }
  }
}

function drawText(image: RgbImage, text: string, x: number, y: number, scale: number, color: readonly number[]): void {
  for (const [i, ch] of [...text].entries()) {
    const glyph = FONT[ch] ?? FONT['?'];
    for (let row = 0; row < GLYPH_ROWS; row++) {
      for (let col = 0; col < GLYPH_COLS; col++) {
        if ((glyph[row] >> (GLYPH_COLS - 1 - col)) & 1) {
          const px = x + (i * (GLYPH_COLS + 1) + col) * scale;
          const py = y + row * scale;
          fillRect(image, px, py, px + scale - 1, py + scale - 1, color);
        }
      }
    }
  }
}

const GLYPH_ROWS = 7;
const GLYPH_COLS = 5;
/** A 5×7 bitmap font: each glyph is 7 rows of 5 bits (MSB = leftmost column). */
const FONT: Record<string, number[]> = {
  ' ': [0, 0, 0, 0, 0, 0, 0],
  '?': [14, 17, 1, 2, 4, 0, 4],
  '.': [0, 0, 0, 0, 0, 12, 12],
  ':': [0, 12, 12, 0, 12, 12, 0],
  '-': [0, 0, 0, 31, 0, 0, 0],
  _: [0, 0, 0, 0, 0, 0, 31],
  '%': [24, 25, 2, 4, 8, 19, 3],
  '/': [1, 1, 2, 4, 8, 16, 16],
  '0': [14, 17, 19, 21, 25, 17, 14],
  '1': [4, 12, 4, 4, 4, 4, 14],
  '2': [14, 17, 1, 2, 4, 8, 31],
  '3': [31, 2, 4, 2, 1, 17, 14],
  '4': [2, 6, 10, 18, 31, 2, 2],
  '5': [31, 16, 30, 1, 1, 17, 14],
  '6': [6, 8, 16, 30, 17, 17, 14],
  '7': [31, 1, 2, 4, 8, 8, 8],
  '8': [14, 17, 17, 14, 17, 17, 14],
  '9': [14, 17, 17, 15, 1, 2, 12],
  A: [14, 17, 17, 31, 17, 17, 17],
  B: [30, 17, 17, 30, 17, 17, 30],
  C: [14, 17, 16, 16, 16, 17, 14],
  D: [28, 18, 17, 17, 17, 18, 28],
  E: [31, 16, 16, 30, 16, 16, 31],
  F: [31, 16, 16, 30, 16, 16, 16],
  G: [14, 17, 16, 23, 17, 17, 15],
  H: [17, 17, 17, 31, 17, 17, 17],
  I: [14, 4, 4, 4, 4, 4, 14],
  J: [7, 2, 2, 2, 2, 18, 12],
  K: [17, 18, 20, 24, 20, 18, 17],
  L: [16, 16, 16, 16, 16, 16, 31],
  M: [17, 27, 21, 21, 17, 17, 17],
  N: [17, 17, 25, 21, 19, 17, 17],
  O: [14, 17, 17, 17, 17, 17, 14],
  P: [30, 17, 17, 30, 16, 16, 16],
  Q: [14, 17, 17, 17, 21, 18, 13],
  R: [30, 17, 17, 30, 20, 18, 17],
  S: [15, 16, 16, 14, 1, 1, 30],
  T: [31, 4, 4, 4, 4, 4, 4],
  U: [17, 17, 17, 17, 17, 17, 14],
  V: [17, 17, 17, 17, 17, 10, 4],
  W: [17, 17, 17, 21, 21, 21, 10],
  X: [17, 17, 10, 4, 10, 17, 17],
  Y: [17, 17, 17, 10, 4, 4, 4],
  Z: [31, 1, 2, 4, 8, 16, 31],
};
