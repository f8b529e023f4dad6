import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CocoDataset, encodeGreyPng, evaluateCoco, patientOf, readGreyRaster, validateCoco } from '@fedcxr/core';
import { generateChestPhantom, type PhantomSummary } from '@fedcxr/dicom';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../testing.js';

const scratch = await mkdtemp(join(tmpdir(), 'fedcxr-dataset-cli-'));
afterAll(() => rm(scratch, { recursive: true, force: true }));

const readJson = async <T>(path: string) => JSON.parse(await readFile(path, 'utf8')) as T;

describe('cxr dataset on the synthetic seed export', () => {
  let phantom: PhantomSummary;
  let coco: CocoDataset;
  const out = join(scratch, 'imported');

  beforeAll(async () => {
    phantom = await generateChestPhantom({
      out: join(scratch, 'export'),
      seed: 4,
      size: 128,
      patients: 14,
      csvDisagreements: 1,
    });
  });

  it('import --format seed: every train image, its mask boxes, patient ids from DICOM, disagreements reported', async () => {
    const run = await runCli(['dataset', 'import', '--format', 'seed', phantom.root, '--out', out, '--json']);
    expect(run.exitCode).toBe(0);
    const summary = run.json<{
      images: number;
      annotations: number;
      skipped: unknown[];
      issues: { code: string; file: string; line?: number }[];
    }>();
    expect(summary.images).toBe(phantom.train.length);
    expect(summary.annotations).toBe(phantom.train.reduce((n, i) => n + i.boxes.length, 0));
    expect(summary.skipped).toEqual([]);
    const mismatches = summary.issues.filter((i) => i.code === 'mask_csv_mismatch');
    // The moved train.csv row, and the mask box it no longer covers.
    expect(mismatches).toHaveLength(2);
    expect(mismatches.some((i) => i.file.endsWith('train.csv') && typeof i.line === 'number')).toBe(true);

    coco = await readJson<CocoDataset>(join(out, 'annotations.json'));
    expect(validateCoco(coco, 'annotations.json').issues.filter((i) => i.severity === 'error')).toEqual([]);
    expect(coco.categories.map((c) => c.name)).toEqual([
      'aortic_curvature',
      'aortic_atherosclerosis_calcification',
      'cardiac_hypertrophy',
      'intercostal_pleural_thickening',
      'lung_field_infiltration',
      'degenerative_joint_disease_of_the_thoracic_spine',
      'scoliosis',
    ]);
    for (const truth of phantom.train) {
      const image = coco.images.find((i) => i.source_path === truth.file);
      expect(image, truth.file).toBeDefined();
      if (!image) continue;
      expect(image).toMatchObject({
        width: 128,
        height: 128,
        original_width: 128,
        original_height: 128,
        patient_id: truth.patientId,
      });
      const boxes = coco.annotations.filter((a) => a.image_id === image.id);
      expect(boxes.map((b) => coco.categories.find((c) => c.id === b.category_id)?.name)).toEqual(
        truth.boxes.map(() => truth.category),
      );
      boxes.forEach((b, k) => {
        for (let j = 0; j < 4; j++)
          expect(Math.abs(b.bbox[j] - truth.boxes[k][j])).toBeLessThanOrEqual(truth.mask?.endsWith('.jpg') ? 1 : 0);
        expect(b.area).toBeCloseTo(b.bbox[2] * b.bbox[3], 2);
      });
    }
    // Normal images are kept without boxes.
    const normals = coco.images.filter((i) => String(i.source_path).startsWith('train/normal/'));
    expect(normals.length).toBe(phantom.train.filter((i) => i.category === 'normal').length);
    expect(coco.annotations.some((a) => normals.some((n) => n.id === a.image_id))).toBe(false);
    // The written PNG is the seed preset's output: lungs dark, bone bright.
    const png = await readGreyRaster(join(out, coco.images[0].file_name));
    expect(png).toMatchObject({ width: 128, height: 128, bitDepth: 8 });
    expect(Math.min(...png.data)).toBeLessThan(40);
    expect(Math.max(...png.data)).toBeGreaterThan(170);
  });

  it('pycocotools-identical evaluation of the ground truth against itself gives AP 1', () => {
    const detections = coco.annotations.map((a) => ({
      image_id: a.image_id,
      category_id: a.category_id,
      bbox: a.bbox,
      score: 1,
    }));
    const result = evaluateCoco(coco, detections);
    expect(result.stats[0]).toBeCloseTo(1, 6);
  });

  it('--size maps boxes into the resized images', async () => {
    const small = join(scratch, 'imported-64');
    const run = await runCli([
      'dataset',
      'import',
      '--format',
      'seed',
      phantom.root,
      '--out',
      small,
      '--size',
      '64',
      '--json',
    ]);
    expect(run.exitCode).toBe(0);
    const resized = await readJson<CocoDataset>(join(small, 'annotations.json'));
    expect(resized.annotations).toHaveLength(coco.annotations.length);
    resized.annotations.forEach((a, k) => {
      for (const [j, v] of a.bbox.entries()) expect(v).toBeCloseTo(coco.annotations[k].bbox[j] / 2, 6);
    });
    expect(resized.images.every((i) => i.width === 64 && i.height === 64 && i.original_width === 128)).toBe(true);
  });

  it('split --by patient: no patient in two splits, every image somewhere, files beside the input', async () => {
    const run = await runCli([
      'dataset',
      'split',
      join(out, 'annotations.json'),
      '--val',
      '0.25',
      '--test',
      '0.15',
      '--seed',
      '3',
      '--json',
    ]);
    expect(run.exitCode).toBe(0);
    const result = run.json<{ files: string[]; splits: { name: string; images: number }[] }>();
    expect(result.splits.map((s) => s.name)).toEqual(['train', 'val', 'test']);
    const owner = new Map<string, string>();
    let images = 0;
    for (const file of result.files) {
      const part = await readJson<CocoDataset>(file);
      images += part.images.length;
      for (const image of part.images) {
        expect(owner.get(patientOf(image)) ?? file).toBe(file);
        owner.set(patientOf(image), file);
      }
    }
    expect(images).toBe(coco.images.length);
    const human = await runCli([
      'dataset',
      'split',
      join(out, 'annotations.json'),
      '--folds',
      '3',
      '--out',
      join(scratch, 'folds'),
    ]);
    expect(human.exitCode).toBe(0);
    expect(human.stdout).toMatch(/fold1-train\s+fold1-val/);
    expect(human.stdout).toMatch(/scoliosis/);
    const fold = await readJson<CocoDataset>(join(scratch, 'folds', 'fold1-val.json'));
    // Relocated file names still point at the images.
    await expect(readFile(join(scratch, 'folds', fold.images[0].file_name))).resolves.toBeInstanceOf(Buffer);
  });

  it('stats --html and check', async () => {
    const stats = await runCli(['dataset', 'stats', join(out, 'annotations.json'), '--html', '--json']);
    expect(stats.exitCode).toBe(0);
    const data = stats.json<{ images: number; patients: number; html: string }>();
    expect(data.images).toBe(phantom.train.length);
    expect(data.patients).toBe(14);
    expect(await readFile(data.html, 'utf8')).toMatch(/<svg /);
    const check = await runCli(['dataset', 'check', join(out, 'annotations.json'), '--json']);
    expect(check.exitCode).toBe(0);
    expect(check.json<{ errors: number }>().errors).toBe(0);
  });

  it('a broken DICOM is reported and skipped; the rest imports (exit 1)', async () => {
    const broken = await generateChestPhantom({
      out: join(scratch, 'broken'),
      seed: 2,
      size: 64,
      patients: 3,
      testImages: 0,
    });
    const victim = broken.train[0];
    await writeFile(join(broken.root, victim.file), Buffer.from('DICM? no, just text'));
    const run = await runCli([
      'dataset',
      'import',
      '--format',
      'seed',
      broken.root,
      '--out',
      join(scratch, 'broken-out'),
      '--json',
    ]);
    expect(run.exitCode).toBe(1);
    const summary = run.json<{ images: number; skipped: { file: string; message: string }[] }>();
    expect(summary.images).toBe(broken.train.length - 1);
    expect(summary.skipped).toHaveLength(1);
    expect(summary.skipped[0].file).toContain(victim.file);
  });

  it('a mask drawn at another size than its DICOM: boxes scaled to the DICOM, with a warning', async () => {
    const other = await generateChestPhantom({
      out: join(scratch, 'resized-mask'),
      seed: 6,
      size: 64,
      patients: 2,
      testImages: 0,
      jpegMaskFraction: 0,
    });
    const victim = other.train.find((i) => i.mask) as (typeof other.train)[number];
    const mask = await readGreyRaster(join(other.root, victim.mask as string));
    const big = new Uint8Array(128 * 128);
    for (let y = 0; y < 128; y++) for (let x = 0; x < 128; x++) big[y * 128 + x] = mask.data[(y >> 1) * 64 + (x >> 1)];
    await writeFile(
      join(other.root, victim.mask as string),
      encodeGreyPng({ width: 128, height: 128, channels: 1, bitDepth: 8, data: big }),
    );
    const run = await runCli([
      'dataset',
      'import',
      '--format',
      'seed',
      other.root,
      '--out',
      join(scratch, 'resized-mask-out'),
      '--json',
    ]);
    expect(run.exitCode).toBe(0);
    const summary = run.json<{ issues: { code: string; file: string; message: string }[] }>();
    const warning = summary.issues.find((i) => i.code === 'size_mismatch');
    expect(warning?.file).toContain(victim.mask);
    expect(warning?.message).toMatch(/labels are for 128x128 but .* is 64x64: boxes scaled/);
    const imported = await readJson<CocoDataset>(join(scratch, 'resized-mask-out', 'annotations.json'));
    const image = imported.images.find((i) => i.source_path === victim.file);
    expect(imported.annotations.filter((a) => a.image_id === image?.id).map((a) => a.bbox)).toEqual(victim.boxes);
  });

  it('usage errors exit 2 with a clear message', async () => {
    const run = await runCli(['dataset', 'import', '--format', 'dicomdir', phantom.root, '--out', join(scratch, 'x')]);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toMatch(/--format must be one of seed, rsna, coco, voc, yolo/);
    const preset = await runCli([
      'dataset',
      'import',
      '--format',
      'seed',
      phantom.root,
      '--out',
      join(scratch, 'x'),
      '--preset',
      'nope',
    ]);
    expect(preset.exitCode).toBe(2);
  });
});

describe('cxr dataset import for PNG-based formats', () => {
  const png = (w: number, h: number, value = 128) =>
    encodeGreyPng({ width: w, height: h, channels: 1, bitDepth: 8, data: new Uint8Array(w * h).fill(value) });
  const put = async (path: string, content: string | Uint8Array) => {
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, content);
  };

  it('voc: a <size> that differs from the real image scales the boxes and warns', async () => {
    const root = join(scratch, 'voc');
    await put(join(root, 'JPEGImages/p1_a.png'), png(200, 100));
    await put(
      join(root, 'Annotations/p1_a.xml'),
      '<annotation><filename>p1_a.png</filename><size><width>100</width><height>50</height></size><object><name>mass</name><bndbox><xmin>11</xmin><ymin>11</ymin><xmax>30</xmax><ymax>20</ymax></bndbox></object></annotation>',
    );
    const out = join(scratch, 'voc-out');
    const run = await runCli([
      'dataset',
      'import',
      '--format',
      'voc',
      root,
      '--out',
      out,
      '--patient-pattern',
      '^(p\\d+)_',
      '--json',
    ]);
    expect(run.exitCode).toBe(0);
    const summary = run.json<{ issues: { code: string; message: string }[] }>();
    expect(summary.issues.map((i) => i.code)).toEqual(['size_mismatch']);
    const coco = await readJson<CocoDataset>(join(out, 'annotations.json'));
    expect(coco.images[0]).toMatchObject({ width: 200, height: 100, patient_id: 'p1' });
    expect(coco.annotations[0].bbox).toEqual([20, 20, 40, 20]);
  });

  it('yolo → COCO → coco re-import gives the same boxes', async () => {
    const root = join(scratch, 'yolo');
    await put(join(root, 'obj.names'), 'opacity\n');
    await put(join(root, 'images/a.png'), png(100, 80));
    await put(join(root, 'images/b.png'), png(100, 80));
    await put(join(root, 'labels/a.txt'), '0 0.5 0.5 0.2 0.25\n');
    const first = join(scratch, 'yolo-out');
    expect((await runCli(['dataset', 'import', '--format', 'yolo', root, '--out', first, '--json'])).exitCode).toBe(0);
    const a = await readJson<CocoDataset>(join(first, 'annotations.json'));
    expect(a.annotations.map((x) => x.bbox)).toEqual([[40, 30, 20, 20]]);
    expect(a.images).toHaveLength(2);
    const second = join(scratch, 'coco-out');
    const run = await runCli([
      'dataset',
      'import',
      '--format',
      'coco',
      join(first, 'annotations.json'),
      '--out',
      second,
      '--json',
    ]);
    expect(run.exitCode).toBe(0);
    const b = await readJson<CocoDataset>(join(second, 'annotations.json'));
    expect(b.annotations.map((x) => x.bbox)).toEqual([[40, 30, 20, 20]]);
    expect(b.images.map((i) => i.patient_id)).toEqual(['a', 'b']);
    expect((await readdir(join(second, 'images'))).sort()).toEqual(['a.png', 'b.png']);
  });
});
