import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeGreyPng } from '@fedcxr/core';
import { afterAll, describe, expect, it } from 'vitest';
import {
  readOnnxFixture,
  referenceCheckpoint,
  SKIP_REASON,
  saveReferenceModelDir,
} from '../../../models-frcnn/src/onnx/reference-checkpoint.js';
import { runCli } from '../testing.js';

interface FixtureCase {
  name: string;
  images: number[];
  categories: [number, string][];
  gt: number[][];
  dt: number[][];
  expected: { stats: number[]; per_category: number[][]; rsna: { map: number }; froc: { iou50: { score: number } } };
}

const fixture = JSON.parse(
  readFileSync(
    fileURLToPath(new URL('../../../../tools/reference/fixtures/eval/coco_cases.json', import.meta.url)),
    'utf8',
  ),
) as { cases: FixtureCase[] };

const dir = mkdtempSync(join(tmpdir(), 'cxr-eval-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Writes one parity case as the COCO files a user would pass to `cxr eval`. */
function writeCase(c: FixtureCase): { gt: string; dt: string } {
  const gt = join(dir, `${c.name}.gt.json`);
  const dt = join(dir, `${c.name}.dt.json`);
  writeFileSync(
    gt,
    JSON.stringify({
      images: c.images.map((id) => ({ id, file_name: `${id}.png`, width: 1024, height: 1024 })),
      categories: c.categories.map(([id, name]) => ({ id, name })),
      annotations: c.gt.map(([id, image_id, category_id, x, y, w, h, area, iscrowd]) => ({
        id,
        image_id,
        category_id,
        bbox: [x, y, w, h],
        area,
        iscrowd,
      })),
    }),
  );
  writeFileSync(
    dt,
    JSON.stringify(
      c.dt.map(([image_id, category_id, x, y, w, h, score]) => ({ image_id, category_id, bbox: [x, y, w, h], score })),
    ),
  );
  return { gt, dt };
}

describe('cxr eval', () => {
  const basic = fixture.cases.find((c) => c.name === 'crowd') as FixtureCase;
  const files = writeCase(basic);

  it('prints pycocotools stats, per-class AP, PR curves, RSNA mAP, AP@0.4 and FROC as JSON', async () => {
    const run = await runCli(['eval', '--gt', files.gt, '--dt', files.dt, '--json', '--iou', '0.4', '--froc']);
    expect(run.exitCode).toBe(0);
    const out = run.json<{
      stats: number[];
      per_category: { id: number; name: string; AP: number; AP50: number }[];
      pr_curves: { recall: number[]; per_category: { id: number; precision: number[] }[] };
      ap_at_iou: { iou: number; AP: number };
      rsna_map: { map: number };
      froc: { fp_rates: number[]; sensitivities: number[]; score: number };
    }>();
    expect(out.stats).toEqual(basic.expected.stats);
    expect(out.per_category.map((c) => [c.AP, c.AP50])).toEqual(basic.expected.per_category.map((v) => v.slice(0, 2)));
    expect(out.per_category[0].name).toMatch(/^class_/);
    expect(out.pr_curves.recall).toHaveLength(101);
    expect(out.pr_curves.per_category[0].precision).toHaveLength(101);
    expect(out.ap_at_iou.iou).toBe(0.4);
    expect(out.rsna_map.map).toBe(basic.expected.rsna.map);
    expect(out.froc.fp_rates).toEqual([0.125, 0.25, 0.5, 1, 2, 4, 8]);
    expect(out.froc.score).toBe(basic.expected.froc.iou50.score);
  });

  it('reports AP at one IoU exactly as pycocotools with iouThrs = [0.4]', async () => {
    const vin = fixture.cases.find((c) => c.name === 'iou_0.4_vinbigdata') as FixtureCase;
    const vinFiles = writeCase(vin);
    const run = await runCli(['eval', '--gt', vinFiles.gt, '--dt', vinFiles.dt, '--json', '--iou', '0.4']);
    expect(run.json<{ ap_at_iou: { AP: number } }>().ap_at_iou.AP).toBe(vin.expected.stats[0]);
  });

  it('pools categories with --class-agnostic exactly as pycocotools with useCats = 0', async () => {
    const agnostic = fixture.cases.find((c) => c.name === 'class_agnostic_usecats_0') as FixtureCase;
    const agnosticFiles = writeCase(agnostic);
    const run = await runCli([
      'eval',
      '--gt',
      agnosticFiles.gt,
      '--dt',
      agnosticFiles.dt,
      '--json',
      '--class-agnostic',
    ]);
    const out = run.json<{ stats: number[]; per_category: { id: number; name: string }[] }>();
    expect(out.stats).toEqual(agnostic.expected.stats);
    expect(out.per_category.map((c) => [c.id, c.name])).toEqual([[-1, 'all']]);
  });

  it('prints a human table', async () => {
    const run = await runCli(['eval', '--gt', files.gt, '--dt', files.dt, '--quiet']);
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toContain(
      `AP @[IoU=0.50:0.95 | area=   all | maxDets=100] = ${basic.expected.stats[0].toFixed(3)}`,
    );
    expect(run.stdout).toMatch(/category\s+#gt\s+AP\s+AP50/);
    expect(run.stdout).toContain('RSNA challenge mAP');
    expect(run.stdout).not.toContain('FROC');
  });

  it('names the file and the problem on bad input', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{ not json');
    const run = await runCli(['eval', '--gt', bad, '--dt', files.dt]);
    expect(run.exitCode).toBe(3);
    expect(run.stderr).toContain(`cxr: ${bad}: ground truth is not valid JSON`);
    const missing = await runCli(['eval', '--gt', files.gt, '--dt', join(dir, 'missing.json'), '--json']);
    expect(missing.exitCode).toBe(3);
    expect(missing.json<{ error: { code: string } }>().error.code).toBe('file_unreadable');
    const foreign = join(dir, 'foreign.json');
    writeFileSync(foreign, JSON.stringify([{ image_id: 123456, category_id: 1, bbox: [0, 0, 1, 1], score: 1 }]));
    const wrongImage = await runCli(['eval', '--gt', files.gt, '--dt', foreign]);
    expect(wrongImage.stderr).toContain(`${foreign}: detection 0 is on image 123456`);
  });

  it('rejects a bad --iou as a usage error', async () => {
    const run = await runCli(['eval', '--gt', files.gt, '--dt', files.dt, '--iou', '1.5']);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain('--iou must be a number in (0, 1]');
  });

  it('--iou 0.4 --metric voc: PASCAL VOC mAP as the devkit reference computes it, beside COCO', async () => {
    const voc = (
      JSON.parse(
        readFileSync(
          fileURLToPath(new URL('../../../../tools/reference/fixtures/eval/voc_cases.json', import.meta.url)),
          'utf8',
        ),
      ) as { name: string; gt: unknown; dt: unknown; expected: Record<string, { mAP: number }> }[]
    )[0];
    const gt = join(dir, 'voc.gt.json');
    const dt = join(dir, 'voc.dt.json');
    writeFileSync(gt, JSON.stringify(voc.gt));
    writeFileSync(dt, JSON.stringify(voc.dt));
    const run = await runCli(['eval', '--gt', gt, '--dt', dt, '--iou', '0.4', '--metric', 'coco,voc', '--json']);
    expect(run.exitCode).toBe(0);
    const out = run.json<{ stats: number[]; voc: { iou: number; method: string; mAP: number } }>();
    expect(out.stats).toHaveLength(12);
    expect(out.voc).toMatchObject({ iou: 0.4, method: 'voc2010' });
    expect(out.voc.mAP).toBeCloseTo(voc.expected['voc2010@0.4'].mAP, 12);
    const eleven = await runCli([
      'eval',
      '--gt',
      gt,
      '--dt',
      dt,
      '--metric',
      'voc',
      '--voc-method',
      'voc2007',
      '--json',
    ]);
    expect(eleven.json<{ voc: { mAP: number } }>().voc.mAP).toBeCloseTo(voc.expected['voc2007@0.5'].mAP, 12);
    const human = await runCli(['eval', '--gt', gt, '--dt', dt, '--iou', '0.4', '--metric', 'voc', '--quiet']);
    expect(human.stdout).toContain(
      `PASCAL VOC mAP @[IoU=0.4] (VOC 2010, all points): ${voc.expected['voc2010@0.4'].mAP.toFixed(4)}`,
    );
    const bad = await runCli(['eval', '--gt', gt, '--dt', dt, '--metric', 'f1']);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('--metric: unknown metric "f1" (choose from coco, voc)');
  });

  it("--model --engine tfjs scores torchvision's detections, as --engine onnx does", async (ctx) => {
    const checkpoint = referenceCheckpoint();
    if (!checkpoint) ctx.skip(SKIP_REASON);
    const modelDir = join(dir, 'ref-model');
    await saveReferenceModelDir(modelDir, checkpoint as NonNullable<typeof checkpoint>);
    const onnxFixture = readOnnxFixture();
    const [height, width] = onnxFixture.image_shapes[0];
    const grey = new Uint8Array(Buffer.from(onnxFixture.grey_u8_base64, 'base64'));
    writeFileSync(join(dir, 'a.png'), encodeGreyPng({ width, height, channels: 1, bitDepth: 8, data: grey }));
    const reference = onnxFixture.grey_detections;
    // The reference detections of the one image, as its ground truth: both engines must find them all.
    const data = join(dir, 'ref-data.json');
    writeFileSync(
      data,
      JSON.stringify({
        images: [{ id: 7, file_name: 'a.png', width, height }],
        categories: [
          { id: 1, name: 'a' },
          { id: 2, name: 'b' },
        ],
        annotations: reference.boxes.map(([x1, y1, x2, y2], i) => ({
          id: i + 1,
          image_id: 7,
          category_id: reference.labels[i],
          bbox: [x1, y1, x2 - x1, y2 - y1],
          area: (x2 - x1) * (y2 - y1),
          iscrowd: 0,
        })),
      }),
    );
    const results: Record<string, { image_id: number; bbox: number[]; score: number }[]> = {};
    for (const engine of ['onnx', 'tfjs']) {
      const saved = join(dir, `ref-${engine}.json`);
      const run = await runCli([
        'eval',
        '--model',
        modelDir,
        '--data',
        data,
        '--engine',
        engine,
        '--save-results',
        saved,
        '--json',
      ]);
      expect(run.exitCode, run.stderr).toBe(0);
      expect(run.json<{ stats: number[] }>().stats[0], engine).toBeGreaterThan(0.99);
      results[engine] = JSON.parse(readFileSync(saved, 'utf8'));
    }
    expect(results.tfjs).toHaveLength(reference.scores.length);
    results.tfjs.forEach((d, i) => {
      expect(d.image_id).toBe(7);
      expect(Math.abs(d.score - results.onnx[i].score)).toBeLessThan(1e-4);
      d.bbox.forEach((v, c) => {
        expect(Math.abs(v - results.onnx[i].bbox[c])).toBeLessThan(0.01);
      });
    });
    const bad = await runCli(['eval', '--model', modelDir, '--data', data, '--engine', 'gpu']);
    expect(bad.stderr).toContain('--engine must be onnx or tfjs, got "gpu"');
  }, 240_000);
});
