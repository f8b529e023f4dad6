import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeGreyPng } from '@fedcxr/core';
import { PNG } from 'pngjs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  readOnnxFixture,
  referenceCheckpoint,
  SKIP_REASON,
  saveReferenceModelDir,
} from '../../../models-frcnn/src/onnx/reference-checkpoint.js';
import { reportHeatmaps } from '../inference/report-heatmaps.js';
import { runCli } from '../testing.js';

describe('cxr export onnx / cxr explain', () => {
  let dir = '';
  let image = '';

  beforeAll(async () => {
    const checkpoint = referenceCheckpoint();
    if (!checkpoint) return;
    dir = mkdtempSync(join(tmpdir(), 'cli-explain-'));
    await saveReferenceModelDir(join(dir, 'model'), checkpoint);
    // The fixture's first image (RGB floats) as an 8-bit grey PNG.
    const fixture = readOnnxFixture();
    const [height, width] = fixture.image_shapes[0];
    const rgb = new Float32Array(new Uint8Array(Buffer.from(fixture.images_f32_base64[0], 'base64')).buffer);
    const grey = Uint8Array.from({ length: height * width }, (_, i) => Math.round(rgb[i * 3] * 255));
    image = join(dir, 'image.png');
    writeFileSync(image, encodeGreyPng({ width, height, channels: 1, bitDepth: 8, data: grey }));
  }, 120_000);

  it('exports the three ONNX files and reports them as JSON', async (ctx) => {
    if (!dir) ctx.skip(SKIP_REASON);
    const out = join(dir, 'onnx', 'detector.onnx');
    const run = await runCli(['export', 'onnx', '--model', join(dir, 'model'), '--out', out, '--json']);
    expect(run.exitCode).toBe(0);
    const files = run.json<{ files: string[] }>().files;
    expect(files).toHaveLength(3);
    for (const file of files) expect(existsSync(file)).toBe(true);
  }, 120_000);

  it('writes an EigenCAM overlay PNG the size of the image, from a model dir and from the .onnx file', async (ctx) => {
    if (!dir) ctx.skip(SKIP_REASON);
    for (const model of [join(dir, 'model'), join(dir, 'onnx', 'detector.onnx')]) {
      const out = join(dir, `cam-${model.endsWith('.onnx') ? 'onnx' : 'dir'}.png`);
      const run = await runCli([
        'explain',
        image,
        '--model',
        model,
        '--method',
        'eigencam',
        '--detection',
        '0',
        '--out',
        out,
        '--json',
      ]);
      expect(run.exitCode, run.stdout).toBe(0);
      const result = run.json<{ explained: { bbox: number[]; label: string; score: number }[] }>();
      expect(result.explained).toHaveLength(1);
      expect(['a', 'b']).toContain(result.explained[0].label);
      const png = PNG.sync.read(readFileSync(out));
      // A 96×64 image is shown 8× larger (nearest neighbour) so that the box's label can be read.
      expect([png.width, png.height]).toEqual([768, 512]);
      // Coloured (heat) pixels exist: a grey image would have r = g = b everywhere.
      let coloured = 0;
      for (let i = 0; i < png.data.length; i += 4) if (png.data[i] !== png.data[i + 2]) coloured++;
      expect(coloured).toBeGreaterThan(1000);
    }
  }, 180_000);

  it('explains by occlusion: the patch, its windows and where the map is hottest, as JSON', async (ctx) => {
    if (!dir) ctx.skip(SKIP_REASON);
    const out = join(dir, 'occlusion.png');
    const run = await runCli([
      'explain',
      image,
      '--model',
      join(dir, 'model'),
      '--method',
      'occlusion',
      '--detection',
      '0',
      // Few windows: each pass runs the reference model at its 800 px input size.
      '--patch',
      '32',
      '--out',
      out,
      '--json',
    ]);
    expect(run.exitCode, run.stderr).toBe(0);
    const result = run.json<{
      method: string;
      grid: number[];
      occlusion: { patch: number; stride: number };
      original_score: number;
      explained: { bbox: number[]; score: number }[];
      peak: { x: number; y: number };
      peak_in_box: boolean;
    }>();
    expect(result.method).toBe('occlusion');
    // The 96×64 image: a 32 px patch every 16 px (half the patch), 5 × 3 windows.
    expect(result.occlusion).toEqual({ patch: 32, stride: 16 });
    expect(result.grid).toEqual([3, 5]);
    // FasterRCNNBoxScoreTarget of the detection itself: IoU 1 plus its score.
    expect(result.original_score).toBeCloseTo(1 + result.explained[0].score, 4);
    expect(result.peak.x).toBeGreaterThanOrEqual(0);
    expect(result.peak.x).toBeLessThan(96);
    expect(result.peak.y).toBeGreaterThanOrEqual(0);
    expect(result.peak.y).toBeLessThan(64);
    const [x, y, w, h] = result.explained[0].bbox;
    const inside =
      result.peak.x + 0.5 >= x &&
      result.peak.x + 0.5 <= x + w &&
      result.peak.y + 0.5 >= y &&
      result.peak.y + 0.5 <= y + h;
    expect(result.peak_in_box).toBe(inside);
    expect(existsSync(out)).toBe(true);

    const bad = await runCli([
      'explain',
      image,
      '--model',
      join(dir, 'model'),
      '--method',
      'occlusion',
      '--patch',
      '0',
      '--out',
      out,
    ]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/--patch must be a whole number ≥ 1, got "0"/);
    const tooBig = await runCli([
      'explain',
      image,
      '--model',
      join(dir, 'model'),
      '--method',
      'occlusion',
      '--patch',
      '65',
      '--out',
      out,
    ]);
    expect(tooBig.exitCode).toBe(2);
    expect(tooBig.stderr).toMatch(/patch must be a whole number of pixels from 1 to 64, got 65/);
    const typo = await runCli(['explain', image, '--model', join(dir, 'model'), '--method', 'gradcam', '--out', out]);
    expect(typo.exitCode).toBe(2);
    expect(typo.stderr).toMatch(/--method must be one of eigencam, ablationcam, occlusion; got "gradcam"/);
  }, 240_000);

  it('names a missing detection and exits 2', async (ctx) => {
    if (!dir) ctx.skip(SKIP_REASON);
    const run = await runCli([
      'explain',
      image,
      '--model',
      join(dir, 'model'),
      '--detection',
      '5000',
      '--out',
      join(dir, 'x.png'),
    ]);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toMatch(/detection 5000 does not exist/);
  }, 120_000);

  it('says which file is not a model', async () => {
    const run = await runCli([
      'explain',
      '/nonexistent.png',
      '--model',
      '/nonexistent-model',
      '--out',
      '/tmp/x.png',
      '--json',
    ]);
    expect(run.exitCode).toBe(3);
    expect(run.json<{ error: { code: string; message: string } }>().error.message).toContain('/nonexistent-model');
  });

  it('gives the training report EigenCAM heat maps of validation images (images with findings first)', async (ctx) => {
    if (!dir) ctx.skip(SKIP_REASON);
    const data = {
      images: [
        { id: 1, file_name: 'image.png', width: 96, height: 64 },
        { id: 2, file_name: 'image.png', width: 96, height: 64 },
      ],
      categories: [{ id: 1, name: 'a' }],
      annotations: [
        {
          id: 1,
          image_id: 2,
          category_id: 1,
          bbox: [10, 10, 20, 20] as [number, number, number, number],
          area: 400,
          iscrowd: 0 as const,
        },
      ],
    };
    const images = await reportHeatmaps(join(dir, 'model'), data, dir, 1);
    expect(images).toHaveLength(1);
    expect(images[0].src.startsWith('data:image/png;base64,')).toBe(true);
    const png = PNG.sync.read(Buffer.from(images[0].src.split(',')[1], 'base64'));
    expect([png.width, png.height]).toEqual([96, 64]);
    expect(images[0].caption).toMatch(/EigenCAM/);
  }, 120_000);
});
