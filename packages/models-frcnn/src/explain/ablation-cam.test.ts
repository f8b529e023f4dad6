import { type Detection, tf } from '@fedcxr/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ABLATION_VALUE, ablationCam, boxScore, channelsToAblate, type FeatureBatch } from './ablation-cam.js';

describe('FasterRCNNBoxScoreTarget', () => {
  const target = { boxes: [[0, 0, 10, 10] as const, [20, 20, 30, 30] as const], labels: [1, 2] };

  it('adds IoU + score of the best-IoU box when the label agrees and IoU > 0.5', () => {
    const detections: Detection[] = [
      { box: [0, 0, 10, 8], label: 1, score: 0.9 },
      { box: [20, 20, 30, 30], label: 2, score: 0.5 },
    ];
    // IoU is torchvision's box_iou, in float32 as torch computes it: 80 / 100 → fround(0.8).
    expect(boxScore(target, detections)).toBeCloseTo(Math.fround(0.8) + 0.9 + 1 + 0.5, 10);
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
  const runHeads = async (features: Map<string, FeatureBatch>): Promise<Detection[][]> => {
    const { data, shape } = features.get('a')!;
    const [n, c, h, w] = shape;
    return Array.from({ length: n }, (_, image) => {
      let s = 0;
      for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) s += data[((image * c + 2) * h + y) * w + x];
      const score = 1 / (1 + Math.exp(-s / 16));
      return score > 0.05 ? [{ box: [0, 0, 16, 16] as [number, number, number, number], label: 1, score }] : [];
    });
  };

  it('weights the channel the detection depends on and maps where it lives', async () => {
    // NCHW: level 'a' is 4 channels of 8×8, channel 2 bright in the top-left quadrant.
    const data = new Float32Array(4 * 8 * 8).map((_, i) => ((i * 37) % 11) / 11);
    for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) data[2 * 64 + y * 8 + x] = 3;
    const features = new Map([
      ['a', { data, channels: 4, height: 8, width: 8 }],
      ['b', { data: new Float32Array(4 * 4 * 4).fill(0.5), channels: 4, height: 4, width: 4 }],
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
