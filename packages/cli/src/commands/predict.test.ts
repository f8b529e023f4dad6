import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeGreyPng } from '@fedcxr/core';
import { encodeDicom } from '@fedcxr/dicom';
import dicomParser from 'dicom-parser';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  readOnnxFixture,
  referenceCheckpoint,
  SKIP_REASON,
  saveReferenceModelDir,
} from '../../../models-frcnn/src/onnx/reference-checkpoint.js';
import { runCli } from '../testing.js';
import type { ImagePrediction } from './predict.js';

const fixture = readOnnxFixture();

describe('cxr predict', () => {
  let dir = '';
  const sopInstanceUid = '1.2.826.0.1.3680043.8.498.1';

  beforeAll(async () => {
    const checkpoint = referenceCheckpoint();
    if (!checkpoint) return;
    dir = mkdtempSync(join(tmpdir(), 'cli-predict-'));
    await saveReferenceModelDir(join(dir, 'model'), checkpoint);
    const inputs = join(dir, 'inputs', 'nested');
    mkdirSync(inputs, { recursive: true });
    const [height, width] = fixture.image_shapes[0];
    const grey = new Uint8Array(Buffer.from(fixture.grey_u8_base64, 'base64'));
    writeFileSync(join(dir, 'inputs', 'a.png'), encodeGreyPng({ width, height, channels: 1, bitDepth: 8, data: grey }));
    // A 12-bit MONOCHROME1 DICOM with a window, in a sub-folder (folders are walked recursively).
    writeFileSync(
      join(inputs, 'b.dcm'),
      encodeDicom({
        width: 120,
        height: 80,
        pixels: Uint16Array.from({ length: 120 * 80 }, (_, i) => (i * 37) % 4096),
        bitsStored: 12,
        photometric: 'MONOCHROME1',
        windowCenter: 2048,
        windowWidth: 4096,
        patientId: 'P-PREDICT',
        studyInstanceUid: '1.2.826.0.1.3680043.8.498.2',
        seriesInstanceUid: '1.2.826.0.1.3680043.8.498.3',
        sopInstanceUid,
      }),
    );
    writeFileSync(join(inputs, 'broken.dcm'), 'this is not a DICOM file');
  }, 120_000);

  it('writes COCO results, CSV, overlays and a DICOM SR; reports the bad file and exits 1', async (ctx) => {
    if (!dir) ctx.skip(SKIP_REASON);
    const out = join(dir, 'out');
    const run = await runCli([
      'predict',
      join(dir, 'inputs'),
      '--model',
      join(dir, 'model'),
      '--out',
      out,
      '--score-thr',
      '0.3',
      '--json',
    ]);
    expect(run.exitCode).toBe(1);
    const result = run.json<{ predictions: ImagePrediction[]; failed: { file: string; error: { code: string } }[] }>();
    expect(result.predictions.map((p) => p.image.slice(dir.length))).toEqual(['/inputs/a.png', '/inputs/nested/b.dcm']);
    expect(result.failed).toHaveLength(1);
    expect(result.failed[0].file).toMatch(/broken\.dcm$/);
    expect(result.predictions[1]).toMatchObject({ width: 120, height: 80 });
    for (const p of result.predictions) {
      for (const d of p.detections) {
        expect(d.score).toBeGreaterThanOrEqual(0.3);
        expect(d.bbox[0]).toBeGreaterThanOrEqual(0);
        expect(d.bbox[0] + d.bbox[2]).toBeLessThanOrEqual(p.width + 1e-3);
        expect(['a', 'b']).toContain(d.category);
      }
    }
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    expect(results.length).toBe(result.predictions.reduce((n, p) => n + p.detections.length, 0));
    expect(results.length).toBeGreaterThan(0);
    const csv = readFileSync(join(out, 'detections.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('image,class,score,x,y,w,h');
    expect(csv.length - 1).toBe(results.length);
    expect(readdirSync(join(out, 'overlays'))).toHaveLength(2);
    const srFiles = readdirSync(join(out, 'sr'));
    expect(srFiles).toHaveLength(1);
    const sr = dicomParser.parseDicom(new Uint8Array(readFileSync(join(out, 'sr', srFiles[0]))));
    expect(sr.string('x00100020')).toBe('P-PREDICT');
    const evidence = sr.elements.x0040a375.items?.[0].dataSet?.elements.x00081115.items?.[0].dataSet;
    expect(evidence?.elements.x00081199.items?.[0].dataSet?.string('x00081155')).toBe(sopInstanceUid);
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect(manifest.failed).toHaveLength(1);
  }, 240_000);

  it('--gsps writes a presentation state per DICOM image, with its window and MONOCHROME1 inversion', async (ctx) => {
    if (!dir) ctx.skip(SKIP_REASON);
    const out = join(dir, 'out-gsps');
    const run = await runCli([
      'predict',
      join(dir, 'inputs', 'nested', 'b.dcm'),
      '--model',
      join(dir, 'model'),
      '--out',
      out,
      '--format',
      'coco',
      '--gsps',
      '--json',
    ]);
    expect(run.exitCode, run.stderr).toBe(0);
    const [prediction] = run.json<{ predictions: ImagePrediction[] }>().predictions;
    const files = readdirSync(join(out, 'gsps'));
    expect(files).toHaveLength(1);
    const pr = dicomParser.parseDicom(new Uint8Array(readFileSync(join(out, 'gsps', files[0]))));
    expect(pr.string('x00080016')).toBe('1.2.840.10008.5.1.4.1.1.11.1');
    expect(pr.string('x20500020')).toBe('INVERSE');
    expect(pr.elements.x00283110.items?.[0].dataSet?.string('x00281050')).toBe('2048');
    const graphics = pr.elements.x00700001?.items?.[0].dataSet?.elements.x00700009.items ?? [];
    expect(graphics).toHaveLength(prediction.detections.length);
    const usage = await runCli(['predict', join(dir, 'inputs', 'a.png'), '--model', join(dir, 'model'), '--gsps']);
    expect(usage.exitCode).toBe(2);
    expect(usage.stderr).toMatch(/--gsps writes presentation states under --out/);
  }, 240_000);

  it('prints [{image, detections}] with --json and no --out', async (ctx) => {
    if (!dir) ctx.skip(SKIP_REASON);
    const run = await runCli(['predict', join(dir, 'inputs', 'a.png'), '--model', join(dir, 'model'), '--json']);
    expect(run.exitCode).toBe(0);
    const printed = run.json<ImagePrediction[]>();
    expect(printed).toHaveLength(1);
    expect(printed[0].detections.length).toBeGreaterThan(0);
    expect(Object.keys(printed[0].detections[0]).sort()).toEqual(['bbox', 'category', 'category_id', 'score']);
  }, 240_000);

  it('cxr eval --model --data scores the model on a COCO data set (its own confident detections as truth: AP 1)', async (ctx) => {
    if (!dir) ctx.skip(SKIP_REASON);
    const predicted = await runCli(['predict', join(dir, 'inputs', 'a.png'), '--model', join(dir, 'model'), '--json']);
    const confident = predicted.json<ImagePrediction[]>()[0].detections.filter((d) => d.score >= 0.55);
    expect(confident.length).toBeGreaterThan(0);
    const data = {
      images: [{ id: 7, file_name: 'a.png', width: 96, height: 64 }],
      categories: [
        { id: 11, name: 'a' },
        { id: 12, name: 'b' },
      ],
      annotations: confident.map((d, i) => ({
        id: i + 1,
        image_id: 7,
        category_id: d.category === 'a' ? 11 : 12,
        bbox: d.bbox,
        area: d.bbox[2] * d.bbox[3],
        iscrowd: 0,
      })),
    };
    writeFileSync(join(dir, 'inputs', 'data.json'), JSON.stringify(data));
    const run = await runCli([
      'eval',
      '--model',
      join(dir, 'model'),
      '--data',
      join(dir, 'inputs', 'data.json'),
      '--json',
    ]);
    expect(run.exitCode, run.stderr).toBe(0);
    const { stats } = run.json<{ stats: number[] }>();
    // Rounding of the printed boxes (0.01 px) keeps IoU above 0.95, so every threshold matches.
    expect(stats[1]).toBe(1);
    expect(stats[0]).toBeGreaterThan(0.99);
  }, 240_000);

  for (const engine of ['tfjs', 'onnx']) {
    it(`--engine ${engine} --json gives torchvision's detections for the same checkpoint and image`, async (ctx) => {
      if (!dir) ctx.skip(SKIP_REASON);
      const run = await runCli([
        'predict',
        join(dir, 'inputs', 'a.png'),
        '--model',
        join(dir, 'model'),
        '--engine',
        engine,
        '--json',
      ]);
      expect(run.exitCode, run.stderr).toBe(0);
      const [printed] = run.json<ImagePrediction[]>();
      const reference = fixture.grey_detections;
      expect(printed.detections).toHaveLength(reference.scores.length);
      printed.detections.forEach((d, i) => {
        const [x1, y1, x2, y2] = reference.boxes[i];
        expect(d.category).toBe(['__background__', 'a', 'b'][reference.labels[i]]);
        expect(Math.abs(d.score - reference.scores[i]), `score ${i}`).toBeLessThan(1e-4);
        const box = [d.bbox[0], d.bbox[1], d.bbox[0] + d.bbox[2], d.bbox[1] + d.bbox[3]];
        [x1, y1, x2, y2].forEach((v, c) => {
          expect(Math.abs(box[c] - v), `box ${i}`).toBeLessThan(0.01);
        });
      });
    }, 240_000);
  }
});
