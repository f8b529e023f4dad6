import { type Detection, tf } from '@fedcxr/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ABLATION_VALUE, ablationCam, boxScore, channelsToAblate } from './ablation-cam.js';

describe('FasterRCNNBoxScoreTarget', () => {
  const target = { boxes: [[0, 0, 10, 10] as const, [20, 20, 30, 30] as const], labels: [1, 2] };

  it('adds IoU + score of the best-IoU box when the label agrees and IoU > 0.5', () => {
    const detections: Detection[] = [
      { box: [0, 0, 10, 8], label: 1, score: 0.9 },
      { box: [20, 20, 30, 30], label: 2, score: 0.5 },
    ];
    expect(boxScore(target, detections)).toBeCloseTo(0.8 + 0.9 + 1 + 0.5, 10);
  });

  it('gives nothing for a wrong label, a poor overlap or no detections', () => {
    expect(boxScore(target, [{ box: [0, 0, 10, 10], label: 2, score: 0.9 }])).toBe(0);
    expect(boxScore(target, [{ box: [0, 0, 10, 4], label: 1, score: 0.9 }])).toBe(0);
    expect(boxScore(target, [])).toBe(0);
  });
});

describe('AblationCAM', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  /**
   * A toy detector head: it finds one box whose score is the mean of channel 2 of level 'a' inside
   * the top-left quadrant (squashed to (0, 1)). Only that channel matters, only that region lights up.
   */
  const runHeads = async (features: Map<string, tf.Tensor4D>): Promise<Detection[][]> => {
    const level = features.get('a')!;
    const values = (await level.array()) as number[][][][];
    return values.map((image) => {
      let s = 0;
      for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) s += image[y][x][2];
      const score = 1 / (1 + Math.exp(-s / 16));
      return score > 0.05 ? [{ box: [0, 0, 16, 16], label: 1, score }] : [];
    });
  };

  it('weights the channel the detection depends on and maps where it lives', async () => {
    const data = new Float32Array(8 * 8 * 4).map((_, i) => ((i * 37) % 11) / 11);
    for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) data[(y * 8 + x) * 4 + 2] = 3;
    const features = new Map([
      ['a', tf.tensor4d(data, [1, 8, 8, 4])],
      ['b', tf.tensor4d(new Float32Array(4 * 4 * 4).fill(0.5), [1, 4, 4, 4])],
    ]);
    const result = await ablationCam({
      features,
      runHeads,
      target: { boxes: [[0, 0, 16, 16]], labels: [1] },
      imageHeight: 32,
      imageWidth: 32,
      batchSize: 3,
    });
    expect(result.originalScore).toBeCloseTo(1 + 1 / (1 + Math.exp(-3)), 6);
    const best = result.weights.indexOf(Math.max(...result.weights));
    expect(best).toBe(2);
    result.weights.forEach((w, c) => {
      if (c !== 2) expect(w).toBe(0);
    });
    // Ablated: channel sum becomes 16·(−1000) → score ≈ 0 → the box disappears (score < 0.05).
    expect(result.weights[2]).toBeCloseTo(1, 6);
    // The CAM is the weighted |activation| at the common (smallest) size, resized: hot in the top-left.
    expect(result.cam[2 * 32 + 2]).toBeGreaterThan(0.9);
    expect(result.cam[30 * 32 + 30]).toBeLessThan(0.25);
    expect(ABLATION_VALUE).toBe(-1000);
  });

  it('selects the top and bottom fractions of channels at a ratio below 1', () => {
    const pixels = 16;
    const channels = 10;
    const activations = new Float32Array(pixels * channels).map((_, i) => ((i % channels) + 1) * (i % 3 === 0 ? 2 : 1));
    const chosen = channelsToAblate(activations, pixels, channels, 0.2);
    expect(chosen).toHaveLength(4);
    expect(channelsToAblate(activations, pixels, channels, 1)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});
