import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Backbone, readSafetensors, tf } from '@fedcxr/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { fasterRcnnSettings } from '../detector/faster-rcnn.js';
import { exportFasterRcnnToOnnx } from '../onnx/export.js';
import { referenceCheckpoint, repoRoot, SKIP_REASON } from '../onnx/reference-checkpoint.js';
import { OnnxFasterRcnn } from '../onnx/runtime.js';
import { explainDetections } from './pipeline.js';

const root = repoRoot;
interface CamFixture {
  image_shape: [number, number, 3];
  image_grey_u8_base64: string;
  settings: { min_size: number; max_size: number; pre_nms_top_n: number; post_nms_top_n: number };
  detection: { box: number[]; label: number; score: number };
  original_score: number;
  ratio_channels_to_ablate: number;
  ablated_channels: number[];
  weights: number[];
  eigencam_raw: number[];
  ablationcam_raw: number[];
  cam_stride: number;
  eigencam: number[];
  ablationcam: number[];
}
const fixture: CamFixture = JSON.parse(readFileSync(join(root, 'tools/reference/fixtures/explain/cams.json'), 'utf8'));

const fpnOutputs = {
  outputs: ['0', '1', '2', '3', 'pool'].map((name, i) => ({ name, stride: 4 * 2 ** i, channels: 256 })),
};

describe('EigenCAM and AblationCAM on a real Faster R-CNN match the torchvision reference', () => {
  let model: OnnxFasterRcnn | null = null;
  const [height, width] = fixture.image_shape;
  const grey = new Uint8Array(Buffer.from(fixture.image_grey_u8_base64, 'base64'));
  const image = { pixels: Float32Array.from(grey, (v) => v / 255), height, width, channels: 1 as const };

  beforeAll(async () => {
    await tf.setBackend('cpu');
    const checkpoint = referenceCheckpoint();
    if (!checkpoint) return;
    const { min_size, max_size, pre_nms_top_n, post_nms_top_n } = fixture.settings;
    const settings = fasterRcnnSettings(
      {
        backbone: 'resnet18_fpn',
        numClasses: 2,
        minSize: min_size,
        maxSize: max_size,
        rpn: {
          preNmsTopN: { training: 2000, testing: pre_nms_top_n },
          postNmsTopN: { training: 2000, testing: post_nms_top_n },
        },
      },
      fpnOutputs as unknown as Backbone,
    );
    const { tensors } = await readSafetensors(checkpoint);
    model = await OnnxFasterRcnn.fromGraphs(exportFasterRcnnToOnnx(tensors, { depth: 18 }), settings);
  }, 120_000);

  const compareStrided = (cam: Float32Array, reference: number[]) => {
    const s = fixture.cam_stride;
    let k = 0;
    for (let y = 0; y < height; y += s) {
      for (let x = 0; x < width; x += s) {
        expect(Math.abs(cam[y * width + x] - reference[k]), `(${x}, ${y})`).toBeLessThan(1e-3);
        k++;
      }
    }
    expect(k).toBe(reference.length);
  };

  it('EigenCAM', async (ctx) => {
    if (!model) ctx.skip(SKIP_REASON);
    // pytorch-grad-cam's grid: its reshape transform resizes every level to the coarsest ('pool').
    const result = await explainDetections(model!, image, { method: 'eigencam', detection: 0, grid: 'pool' });
    expect(result.detections[0].label).toBe(fixture.detection.label);
    expect(Math.abs(result.detections[0].score - fixture.detection.score)).toBeLessThan(1e-4);
    expect([result.height, result.width]).toEqual([height, width]);
    compareStrided(result.cam, fixture.eigencam);
  });

  it("chooses a grid that can point at something: 'auto' is 'pool' unless it has fewer than 8 cells a side", async (ctx) => {
    if (!model) ctx.skip(SKIP_REASON);
    // The fixture's 160×192 input: 'pool' is 3×3 (stride 64), level '2' is 10×12 (stride 16), '3' is 5×6.
    const pool = await explainDetections(model!, image, { method: 'eigencam', detection: 0, grid: 'pool' });
    const auto = await explainDetections(model!, image, { method: 'eigencam', detection: 0 });
    const fine = await explainDetections(model!, image, { method: 'eigencam', detection: 0, grid: '2' });
    expect(pool.grid).toEqual([3, 3]);
    expect(auto.grid).toEqual([10, 12]);
    expect(Array.from(auto.cam)).toEqual(Array.from(fine.cam));
    expect(Array.from(auto.cam)).not.toEqual(Array.from(pool.cam));
  });

  it('AblationCAM (pytorch-grad-cam ratio_channels_to_ablate, FasterRCNNBoxScoreTarget)', async (ctx) => {
    if (!model) ctx.skip(SKIP_REASON);
    const result = await explainDetections(model!, image, {
      method: 'ablationcam',
      detection: 0,
      grid: 'pool',
      ratioChannelsToAblate: fixture.ratio_channels_to_ablate,
    });
    expect(Math.abs(result.originalScore! - fixture.original_score)).toBeLessThan(1e-4);
    result.weights!.forEach((w, c) => {
      expect(Math.abs(w - fixture.weights[c]), `weight ${c}`).toBeLessThan(1e-3);
    });
    expect(fixture.weights.filter((w) => w !== 0).length).toBeGreaterThan(0);
    compareStrided(result.cam, fixture.ablationcam);
  }, 180_000);
});
