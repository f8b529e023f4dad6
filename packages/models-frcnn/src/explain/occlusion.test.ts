import { describe, expect, it } from 'vitest';
import { occlusionSensitivity, windowOrigins } from './occlusion.js';

/** A 32×24 grey image: background 0.2, a bright 6×5 "lesion" at x 20–25, y 4–8. */
const width = 32;
const height = 24;
const lesion = { x: 20, y: 4, w: 6, h: 5 };
const inLesion = (i: number) => {
  const x = i % width;
  const y = Math.floor(i / width);
  return x >= lesion.x && x < lesion.x + lesion.w && y >= lesion.y && y < lesion.y + lesion.h;
};
const image = Float32Array.from({ length: width * height }, (_, i) => (inLesion(i) ? 0.9 : 0.2));

/** A "detector" whose score is the lesion's mean brightness: it depends on those pixels only. */
const lesionScore = async (images: readonly Float32Array[]) =>
  images.map((px) => {
    let s = 0;
    for (let i = 0; i < px.length; i++) if (inLesion(i)) s += px[i];
    return s / (lesion.w * lesion.h);
  });

describe('occlusion sensitivity', () => {
  it('covers every pixel: strided windows plus one flush with the far edge', () => {
    expect(windowOrigins(24, 3, 2)).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 21]);
    expect(windowOrigins(8, 4, 2)).toEqual([0, 2, 4]);
    expect(windowOrigins(4, 4, 2)).toEqual([0]);
  });

  it('is hot exactly where the score depends on the image, and cold elsewhere', async () => {
    const calls: number[] = [];
    const result = await occlusionSensitivity({
      pixels: image,
      height,
      width,
      channels: 1,
      score: async (batch) => {
        calls.push(batch.length);
        return lesionScore(batch);
      },
      batchSize: 7,
    });
    // Default patch: an eighth of the shorter side (24 / 8 = 3), stride half of it rounded up.
    expect([result.patch, result.stride]).toEqual([3, 2]);
    const expectedWindows = windowOrigins(height, 3, 2).length * windowOrigins(width, 3, 2).length;
    expect(result.windows).toBe(expectedWindows);
    // One call for the unoccluded image, then batches of at most 7.
    expect(calls[0]).toBe(1);
    expect(calls.slice(1).reduce((a, b) => a + b, 0)).toBe(expectedWindows);
    expect(Math.max(...calls.slice(1))).toBe(7);
    expect(result.originalScore).toBeCloseTo(0.9, 6);
    for (let i = 0; i < result.cam.length; i++) {
      const x = i % width;
      const y = Math.floor(i / width);
      // A pixel is hot iff some window covering it overlaps the lesion: within patch − 1 of it.
      const near = x > lesion.x - 3 && x < lesion.x + lesion.w + 2 && y > lesion.y - 3 && y < lesion.y + lesion.h + 2;
      if (!near) expect(result.cam[i], `(${x}, ${y})`).toBe(0);
      if (inLesion(i)) expect(result.cam[i], `(${x}, ${y})`).toBeGreaterThan(0.3);
    }
    // The map is min-max scaled: its peak is 1 and lies in the lesion.
    const peak = result.cam.indexOf(Math.max(...result.cam));
    expect(result.cam[peak]).toBeCloseTo(1, 6);
    expect(inLesion(peak)).toBe(true);
  });

  it("fills the patch with the image's mean, so occluding a uniform image changes nothing", async () => {
    const flat = new Float32Array(width * height).fill(0.4);
    const seen: number[] = [];
    const result = await occlusionSensitivity({
      pixels: flat,
      height,
      width,
      channels: 1,
      score: async (batch) =>
        batch.map((px) => {
          seen.push(...px.slice(0, 3));
          return 1;
        }),
    });
    expect(new Set(seen.map((v) => v.toFixed(6)))).toEqual(new Set(['0.400000']));
    expect(Math.max(...result.raw)).toBe(0);
  });

  it('occludes every channel of a colour image with its own mean', async () => {
    const rgb = Float32Array.from({ length: width * height * 3 }, (_, i) => [0.1, 0.5, 0.9][i % 3]);
    const result = await occlusionSensitivity({
      pixels: rgb,
      height,
      width,
      channels: 3,
      patch: 4,
      stride: 4,
      score: async (batch) => batch.map((px) => px[0] * 10 + px[1] + px[2]),
    });
    expect(Math.max(...result.raw)).toBeCloseTo(0, 5);
    expect(result.windows).toBe(6 * 8);
  });

  it('refuses a target the model does not reproduce and a patch larger than the image', async () => {
    const base = { pixels: image, height, width, channels: 1 };
    await expect(occlusionSensitivity({ ...base, score: async (b) => b.map(() => 0) })).rejects.toThrow(
      /not reproduced by the model/,
    );
    await expect(occlusionSensitivity({ ...base, patch: 25, score: lesionScore })).rejects.toThrow(
      /patch must be a whole number of pixels from 1 to 24, got 25/,
    );
    await expect(occlusionSensitivity({ ...base, stride: 0, score: lesionScore })).rejects.toThrow(/stride/);
  });
});
