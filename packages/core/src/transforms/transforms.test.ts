import { Rng } from '@fedcxr/base';
import { describe, expect, it } from 'vitest';
import { NO_AUGMENTATION, parseTrainConfig } from '../train/config.js';
import {
  adjustIntensity,
  buildAugmentation,
  flipHorizontal,
  rotationAbout,
  type Sample,
  scalingAbout,
  warpAffine,
} from './transforms.js';

const size = 64;

/** A dark 64×64 image with a bright axis-aligned rectangle [x1, x2) × [y1, y2) and its box. */
function rectangle(x1: number, y1: number, x2: number, y2: number): Sample {
  const pixels = new Float32Array(size * size);
  for (let y = y1; y < y2; y++) for (let x = x1; x < x2; x++) pixels[y * size + x] = 1;
  return {
    image: { pixels, width: size, height: size, channels: 1 },
    target: { boxes: Float32Array.from([x1, y1, x2, y2]), labels: Int32Array.from([3]) },
  };
}

const at = (s: Sample, x: number, y: number) => s.image.pixels[y * size + x];

/** The bounding box of pixels brighter than 0.5. */
function brightExtent(s: Sample): [number, number, number, number] {
  let [x1, y1, x2, y2] = [size, size, 0, 0];
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      if (at(s, x, y) > 0.5) {
        x1 = Math.min(x1, x);
        y1 = Math.min(y1, y);
        x2 = Math.max(x2, x + 1);
        y2 = Math.max(y2, y + 1);
      }
    }
  }
  return [x1, y1, x2, y2];
}

describe('rotation', () => {
  it("turns a bright square into a diamond whose box is the rotated corners' enclosing box", () => {
    const out = warpAffine(rectangle(24, 24, 40, 40), rotationAbout(45, 32, 32));
    const half = 8 * Math.SQRT2;
    const box = Array.from(out.target.boxes);
    for (const [i, want] of [32 - half, 32 - half, 32 + half, 32 + half].entries()) expect(box[i]).toBeCloseTo(want, 4);
    expect(Array.from(out.target.labels)).toEqual([3]);
    // Pixels: the diamond's tips are bright where the square was dark, the square's corners are now dark.
    expect(at(out, 32, 32)).toBeCloseTo(1, 5);
    expect(at(out, 32, 23)).toBeGreaterThan(0.99); // top tip, above the original square (y < 24)
    expect(at(out, 40, 32)).toBeGreaterThan(0.99); // right tip
    expect(at(out, 25, 25)).toBeLessThan(0.01); // original corner
    expect(at(out, 38, 38)).toBeLessThan(0.01);
    // The bright pixels fill the new box to within a pixel.
    const extent = brightExtent(out);
    for (const [i, value] of extent.entries()) expect(Math.abs(value - box[i])).toBeLessThanOrEqual(1.01);
    // Intensity is preserved overall (area of a rotated square is unchanged).
    const total = out.image.pixels.reduce((s, v) => s + v, 0);
    expect(total).toBeGreaterThan(256 * 0.97);
    expect(total).toBeLessThan(256 * 1.03);
  });

  it('turns counter-clockwise on screen for positive angles', () => {
    // A small block right of center goes to the top after +90°.
    const out = warpAffine(rectangle(48, 30, 52, 34), rotationAbout(90, 32, 32));
    expect(Array.from(out.target.boxes).map((v) => Math.round(v * 1000) / 1000)).toEqual([30, 12, 34, 16]);
    expect(at(out, 31, 13)).toBeGreaterThan(0.99);
    expect(at(out, 50, 31)).toBeLessThan(0.01);
  });

  it('is the identity at 0° and clips boxes pushed past the border', () => {
    const input = rectangle(10, 10, 20, 20);
    const same = warpAffine(input, rotationAbout(0, 32, 32));
    expect(Array.from(same.image.pixels)).toEqual(Array.from(input.image.pixels));
    expect(Array.from(same.target.boxes)).toEqual([10, 10, 20, 20]);
    const corner = warpAffine(rectangle(0, 0, 12, 12), rotationAbout(5, 32, 32));
    // +5° about (32, 32) moves the corner (0, 12) to x ≈ -1.1: clipped to 0; the top edge tilts down.
    const [x1, y1, x2, y2] = corner.target.boxes;
    expect(x1).toBe(0);
    expect(y1).toBeCloseTo(1.865, 2);
    expect(x2).toBeCloseTo(10.333, 3);
    expect(y2).toBeCloseTo(14.8651, 3);
  });

  it('drops boxes moved off the image', () => {
    const out = warpAffine(rectangle(0, 0, 4, 4), scalingAbout(3, 32, 32));
    expect(out.target.labels.length).toBe(0);
    expect(out.target.boxes.length).toBe(0);
  });
});

describe('scale, flip, intensity', () => {
  it('zooms pixels and boxes about the center', () => {
    const out = warpAffine(rectangle(24, 24, 40, 40), scalingAbout(2, 32, 32));
    expect(Array.from(out.target.boxes)).toEqual([16, 16, 48, 48]);
    expect(at(out, 17, 17)).toBeGreaterThan(0.99);
    expect(at(out, 14, 14)).toBeLessThan(0.01);
  });

  it('mirrors pixels and boxes left–right', () => {
    const out = flipHorizontal(rectangle(4, 10, 14, 20));
    expect(Array.from(out.target.boxes)).toEqual([50, 10, 60, 20]);
    expect(at(out, 50, 10)).toBe(1);
    expect(at(out, 59, 19)).toBe(1);
    expect(at(out, 4, 10)).toBe(0);
  });

  it('scales brightness and blends contrast with the mean, clipped to [0, 1]', () => {
    const s: Sample = {
      image: { pixels: Float32Array.from([0, 0.5, 1, 0.5]), width: 2, height: 2, channels: 1 },
      target: { boxes: Float32Array.from([0, 0, 1, 1]), labels: Int32Array.from([1]) },
    };
    expect(Array.from(adjustIntensity(s, 1.2, 1).image.pixels)).toEqual([0, 0.6, 1, 0.6].map(Math.fround));
    expect(Array.from(adjustIntensity(s, 1, 0).image.pixels)).toEqual([0.5, 0.5, 0.5, 0.5]);
    expect(Array.from(adjustIntensity(s, 1, 0.5).image.pixels)).toEqual([0.25, 0.5, 0.75, 0.5]);
    expect(adjustIntensity(s, 1.2, 1).target).toBe(s.target);
  });
});

describe('buildAugmentation', () => {
  const config = parseTrainConfig({ data: { train: 'x' } }).augmentation;

  it('is reproducible for a seed and keeps the default rotation within ±5°', () => {
    const augment = buildAugmentation(config);
    const a = augment(rectangle(24, 24, 40, 40), new Rng(11));
    const b = augment(rectangle(24, 24, 40, 40), new Rng(11));
    expect(Array.from(a.image.pixels)).toEqual(Array.from(b.image.pixels));
    expect(Array.from(a.target.boxes)).toEqual(Array.from(b.target.boxes));
    for (let seed = 0; seed < 50; seed++) {
      const [x1, , x2] = augment(rectangle(24, 24, 40, 40), new Rng(seed)).target.boxes;
      // A 16-px square rotated by θ has width 16(|cos θ| + |sin θ|) ≤ 16(cos 5° + sin 5°) ≈ 17.33 at ±5°.
      expect(x2 - x1).toBeLessThanOrEqual(16 * (Math.cos(Math.PI / 36) + Math.sin(Math.PI / 36)) + 1e-3);
    }
  });

  it('never flips by default (laterality), and handles images without boxes', () => {
    const augment = buildAugmentation({ ...config, rotationDegrees: 0 });
    for (let seed = 0; seed < 20; seed++) {
      const out = augment(rectangle(4, 10, 14, 20), new Rng(seed));
      expect(Array.from(out.target.boxes)).toEqual([4, 10, 14, 20]);
    }
    const flipping = buildAugmentation({ ...config, rotationDegrees: 0, horizontalFlip: true });
    const flips = Array.from(
      { length: 40 },
      (_, seed) => flipping(rectangle(4, 10, 14, 20), new Rng(seed)).target.boxes[0],
    );
    expect(flips.filter((x1) => x1 === 50).length).toBeGreaterThan(5);
    const empty: Sample = {
      image: { pixels: new Float32Array(size * size).fill(0.3), width: size, height: size, channels: 1 },
      target: { boxes: new Float32Array(0), labels: new Int32Array(0) },
    };
    const out = buildAugmentation(config)(empty, new Rng(1));
    expect(out.target.labels.length).toBe(0);
  });

  it('zooms by the drawn scale (one resample with the rotation), draws in a fixed order, and nothing when off', () => {
    const zoom = buildAugmentation({ ...NO_AUGMENTATION, scale: [1.5, 1.5] });
    const s = rectangle(24, 24, 40, 40);
    const expected = warpAffine(s, scalingAbout(1.5, size / 2, size / 2));
    const out = zoom(s, new Rng(1));
    expect(Array.from(out.target.boxes)).toEqual(Array.from(expected.target.boxes));
    expect(Array.from(out.image.pixels)).toEqual(Array.from(expected.image.pixels));
    // Rotation + scale + jitter draw the same numbers whatever the image (resumed streams stay aligned).
    const all = buildAugmentation({ ...config, scale: [0.9, 1.1], horizontalFlip: true });
    const a = new Rng(4);
    const b = new Rng(4);
    all(s, a);
    all({ ...rectangle(0, 0, 8, 8), target: { boxes: new Float32Array(0), labels: new Int32Array(0) } }, b);
    expect(a.getState()).toBe(b.getState());
    // Every amount at 0 (augmentation: null): the sample itself, no draw.
    const rng = new Rng(5);
    const state = rng.getState();
    expect(buildAugmentation(NO_AUGMENTATION)(s, rng)).toBe(s);
    expect(rng.getState()).toBe(state);
  });
});
