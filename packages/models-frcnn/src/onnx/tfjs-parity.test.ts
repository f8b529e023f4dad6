/**
 * The exported ONNX model against the tfjs detector it came from: a model directory (torchvision weights,
 * ResNet-18-FPN) loaded by `loadDetector`, exported by `writeOnnxExport`, both predicting the same images.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initEngine } from '@fedcxr/core';
import { beforeAll, describe, expect, it } from 'vitest';
import '../backbones/index.js';
import { loadDetector } from '../load.js';
import { readOnnxFixture, referenceCheckpoint, SKIP_REASON, saveReferenceModelDir } from './reference-checkpoint.js';
import { OnnxFasterRcnn } from './runtime.js';
import { writeOnnxExport } from './write.js';

const fixture = readOnnxFixture();

describe('cxr export onnx: the ONNX model predicts what the tfjs model predicts', () => {
  let dir = '';

  beforeAll(async () => {
    // wasm (XNNPACK) makes the tfjs side's box head affordable: ~1,000 RoIs × 12,544 × 1,024 per image.
    await initEngine({ backend: 'wasm' });
    const checkpoint = referenceCheckpoint();
    if (!checkpoint) return;
    dir = mkdtempSync(join(tmpdir(), 'model-'));
    await saveReferenceModelDir(dir, checkpoint);
  }, 120_000);

  it('same detections: boxes within 0.01 px, scores within 1e-4, same order and labels', async (ctx) => {
    if (!dir) ctx.skip(SKIP_REASON);
    const { detector, card } = await loadDetector(dir);
    const out = join(dir, 'export', 'model.onnx');
    const files = await writeOnnxExport(detector, out, { classes: card.classes });
    expect(files.map((f) => f.slice(dir.length))).toEqual([
      '/export/model.onnx',
      '/export/model.box_head.onnx',
      '/export/model.rpn_head.onnx',
    ]);
    const images = fixture.images_f32_base64.map((b64, i) => {
      const [height, width] = fixture.image_shapes[i];
      return {
        pixels: new Float32Array(new Uint8Array(Buffer.from(b64, 'base64')).buffer),
        height,
        width,
        channels: 3 as const,
      };
    });
    const fromTfjs = await detector.predict(images);
    const onnx = await OnnxFasterRcnn.load(out);
    const fromOnnx = await onnx.predict(images);
    expect(fromTfjs.map((d) => d.length)).toEqual(fromOnnx.map((d) => d.length));
    expect(fromTfjs[0].length).toBeGreaterThan(10);
    fromTfjs.forEach((detections, i) => {
      detections.forEach((d, j) => {
        const o = fromOnnx[i][j];
        expect(o.label, `image ${i} det ${j}`).toBe(d.label);
        expect(Math.abs(o.score - d.score), `image ${i} det ${j} score`).toBeLessThan(1e-4);
        d.box.forEach((v, c) => {
          expect(Math.abs(o.box[c] - v), `image ${i} det ${j} box`).toBeLessThan(0.01);
        });
      });
    });
    await onnx.dispose();
    detector.dispose();
  }, 180_000);
});
