import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Backbone, readSafetensors, tf } from '@fedcxr/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { fasterRcnnSettings } from '../detector/faster-rcnn.js';
import { exportFasterRcnnToOnnx } from './export.js';
import { readOnnxFixture, referenceCheckpoint, SKIP_REASON } from './reference-checkpoint.js';
import { boxHeadPath, ONNX_CARD_KEY, ONNX_SETTINGS_KEY, OnnxFasterRcnn, readOnnxMetadata } from './runtime.js';

const fixture = readOnnxFixture();

/** The FPN outputs a resnet*_fpn backbone declares; only its shape matters for the settings. */
const fpnOutputs = {
  outputs: ['0', '1', '2', '3', 'pool'].map((name, i) => ({ name, stride: 4 * 2 ** i, channels: 256 })),
};

describe('Faster R-CNN on ONNX Runtime', () => {
  let model: OnnxFasterRcnn | null = null;
  let file = '';

  beforeAll(async () => {
    await tf.setBackend('cpu');
    const checkpoint = referenceCheckpoint();
    if (!checkpoint) return;
    const settings = fasterRcnnSettings(
      { backbone: 'resnet18_fpn', numClasses: 2, minSize: 64, maxSize: 96 },
      fpnOutputs as unknown as Backbone,
    );
    const { tensors } = await readSafetensors(checkpoint);
    const graphs = exportFasterRcnnToOnnx(
      tensors,
      { depth: 18 },
      { [ONNX_SETTINGS_KEY]: JSON.stringify(settings), [ONNX_CARD_KEY]: JSON.stringify({ preset: 'seed' }) },
    );
    file = join(mkdtempSync(join(tmpdir(), 'onnx-')), 'model.onnx');
    writeFileSync(file, graphs.features);
    writeFileSync(boxHeadPath(file), graphs.boxHead);
    model = await OnnxFasterRcnn.load(file);
  }, 120_000);

  it('carries the detector settings and card in the ONNX metadata', (ctx) => {
    if (!model) ctx.skip(SKIP_REASON);
    const metadata = readOnnxMetadata(readFileSync(file));
    expect(JSON.parse(metadata[ONNX_CARD_KEY])).toEqual({ preset: 'seed' });
    expect(model!.settings.transform.minSize).toBe(64);
    expect(model!.classes).toHaveLength(3);
  });

  it('gives torchvision’s detections: same order, boxes within 0.01 px, scores within 1e-4', async (ctx) => {
    if (!model) ctx.skip(SKIP_REASON);
    const images = fixture.images_f32_base64.map((b64, i) => {
      const [height, width] = fixture.image_shapes[i];
      const pixels = new Float32Array(new Uint8Array(Buffer.from(b64, 'base64')).buffer);
      return { pixels, height, width, channels: 3 as const };
    });
    const results = await model!.predict(images);
    results.forEach((detections, i) => {
      const reference = fixture.detections[i];
      expect(detections.length).toBe(reference.scores.length);
      detections.forEach((d, j) => {
        expect(Math.abs(d.score - reference.scores[j]), `image ${i} det ${j} score`).toBeLessThan(1e-4);
        expect(d.label, `image ${i} det ${j} label`).toBe(reference.labels[j]);
        d.box.forEach((v, c) => {
          expect(Math.abs(v - reference.boxes[j][c]), `image ${i} det ${j} box`).toBeLessThan(0.01);
        });
      });
    });
  });
});
