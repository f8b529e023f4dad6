import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors } from '@fedcxr/core';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { mapBoxLevels } from '../ops/roi-align.js';
import { exportFasterRcnnToOnnx, FPN_LEVELS } from './export.js';
import { referenceCheckpoint, repoRoot, SKIP_REASON } from './reference-checkpoint.js';

const root = repoRoot;
const fixturePath = join(root, 'tools/reference/fixtures/onnx/resnet18_fpn.json');

interface Sample {
  shape: number[];
  sum: number;
  abs_sum: number;
  index: number[];
  values: number[];
}
interface Fixture {
  checkpoint: string;
  input_shape: number[];
  input_f32_base64: string;
  features: Record<string, Sample>;
  objectness: Sample[];
  deltas: Sample[];
  rois: number[][];
  pooled: Sample;
  class_logits: number[][];
  box_regression: number[][];
}
const fixture: Fixture = JSON.parse(readFileSync(fixturePath, 'utf8'));

function expectSample(actual: Float32Array, dims: readonly number[], reference: Sample, label: string): void {
  expect([...dims], label).toEqual(reference.shape);
  const scale = reference.abs_sum / actual.length;
  reference.index.forEach((index, k) => {
    const error = Math.abs(actual[index] - reference.values[k]) / Math.max(scale, Math.abs(reference.values[k]));
    expect(error, `${label}[${index}]`).toBeLessThan(1e-4);
  });
  const sum = actual.reduce((s, v) => s + v, 0);
  expect(Math.abs(sum - reference.sum) / reference.abs_sum, `${label} sum`).toBeLessThan(1e-5);
}

describe('Faster R-CNN exported to ONNX runs in ONNX Runtime like torchvision', () => {
  let graphs: ReturnType<typeof exportFasterRcnnToOnnx> | null = null;
  let features: ort.InferenceSession.OnnxValueMapType | null = null;

  beforeAll(async () => {
    const checkpoint = referenceCheckpoint();
    if (!checkpoint) return;
    const { tensors } = await readSafetensors(checkpoint);
    graphs = exportFasterRcnnToOnnx(tensors, { depth: 18 });
    const session = await ort.InferenceSession.create(graphs.features);
    const input = new Float32Array(new Uint8Array(Buffer.from(fixture.input_f32_base64, 'base64')).buffer);
    features = await session.run({ images: new ort.Tensor('float32', input, fixture.input_shape) });
  }, 120_000);

  it('FPN levels and RPN head outputs match torchvision within 1e-4', (ctx) => {
    if (!features) ctx.skip(SKIP_REASON);
    const out = features!;
    FPN_LEVELS.forEach((level, i) => {
      expectSample(
        out[`feature_${level}`].data as Float32Array,
        out[`feature_${level}`].dims,
        fixture.features[level],
        `feature ${level}`,
      );
      expectSample(
        out[`objectness_${level}`].data as Float32Array,
        out[`objectness_${level}`].dims,
        fixture.objectness[i],
        `objectness ${level}`,
      );
      expectSample(
        out[`deltas_${level}`].data as Float32Array,
        out[`deltas_${level}`].dims,
        fixture.deltas[i],
        `deltas ${level}`,
      );
    });
  });

  it('RoiAlign per level and the box head match torchvision', async (ctx) => {
    if (!features || !graphs) ctx.skip(SKIP_REASON);
    const out = features!;
    const roiSession = await ort.InferenceSession.create(graphs!.roiAlign);
    const boxes = Float32Array.from(fixture.rois.flat());
    const levels = mapBoxLevels(boxes, 2, 5);
    const count = fixture.rois.length;
    const pooled = new Float32Array(count * 256 * 49);
    for (let level = 0; level < 4; level++) {
      const members = [...levels.keys()].filter((i) => levels[i] === level);
      if (members.length === 0) continue;
      const scale = 2 ** -(level + 2);
      const rois = Float32Array.from(members.flatMap((i) => fixture.rois[i].map((v) => Math.fround(v * scale))));
      const result = await roiSession.run({
        feature: out[`feature_${level}`],
        rois: new ort.Tensor('float32', rois, [members.length, 4]),
        batch_indices: new ort.Tensor('int64', new BigInt64Array(members.length), [members.length]),
      });
      const data = result.pooled.data as Float32Array;
      members.forEach((roi, k) => {
        pooled.set(data.subarray(k * 256 * 49, (k + 1) * 256 * 49), roi * 256 * 49);
      });
    }
    expectSample(pooled, [count, 256, 7, 7], fixture.pooled, 'pooled');

    const headSession = await ort.InferenceSession.create(graphs!.boxHead);
    const head = await headSession.run({ pooled: new ort.Tensor('float32', pooled, [count, 256, 7, 7]) });
    const logits = head.class_logits.data as Float32Array;
    const regression = head.box_regression.data as Float32Array;
    fixture.class_logits.flat().forEach((v, i) => {
      expect(Math.abs(logits[i] - v)).toBeLessThan(1e-4 * Math.max(1, Math.abs(v)));
    });
    fixture.box_regression.flat().forEach((v, i) => {
      expect(Math.abs(regression[i] - v)).toBeLessThan(1e-4 * Math.max(1, Math.abs(v)));
    });
  });
});
