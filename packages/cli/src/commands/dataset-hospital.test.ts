/**
 * `cxr dataset import` on exports laid out as the public sets and hospitals lay them out (VinDr-CXR, NIH
 * ChestX-ray14, TBX11K's VOC, a seed export whose train.csv names its columns its own way), each written here
 * in miniature, then the COCO file each import wrote read back by pycocotools (reference venv; that part skips
 * with a message without it).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CocoDataset, encodeGreyPng, readGreyRaster } from '@fedcxr/core';
import { encodeDicom, generateChestPhantom } from '@fedcxr/dicom';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../testing.js';

const scratch = await mkdtemp(join(tmpdir(), 'fedcxr-dataset-hospital-'));
afterAll(() => rm(scratch, { recursive: true, force: true }));

const script = fileURLToPath(new URL('../../../../tools/reference/dataset_formats_pycocotools.py', import.meta.url));
const venv = process.env.REFERENCE_VENV ?? join(tmpdir(), 'fedcxr-reference-venv');
const python = join(venv, 'bin', 'python');
const hasPycocotools =
  existsSync(python) &&
  (() => {
    try {
      execFileSync(python, ['-c', 'import pycocotools'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();
if (!hasPycocotools) console.warn(`skipping the pycocotools round trip: no pycocotools in ${venv} (REFERENCE_VENV)`);

async function put(path: string, content: string | Uint8Array): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, content);
}

const png = (width: number, height: number, value = 90) =>
  encodeGreyPng({ width, height, channels: 1, bitDepth: 8, data: new Uint8Array(width * height).fill(value) });

function dicom(patientId: string, width: number, height: number): Uint8Array {
  const pixels = new Uint16Array(width * height);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37) % 4096;
  return encodeDicom({ width, height, pixels, bitsStored: 12, patientId });
}

interface ImportRun {
  images: number;
  annotations: number;
  negatives: number;
  patients: number;
  notes: string[];
  skipped: unknown[];
  issues: { code: string; file: string; line?: number; message: string }[];
  annotationsFile: string;
}

async function importAs(format: string, src: string, extra: string[] = []) {
  const out = join(scratch, `out-${format}-${extra.join('').replace(/\W/g, '')}`);
  const run = await runCli([
    'dataset',
    'import',
    '--format',
    format,
    src,
    '--out',
    out,
    '--workers',
    '0',
    ...extra,
    '--json',
  ]);
  const summary = run.json<ImportRun>();
  const coco = JSON.parse(await readFile(summary.annotationsFile, 'utf8')) as CocoDataset;
  return { run, summary, coco };
}

const written: { file: string; coco: CocoDataset }[] = [];

/** Python's order for lists of numbers (what `sorted` gave the boxes in the script). */
function lexicographic(a: number[], b: number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

describe('cxr dataset import on exports nobody here wrote', () => {
  it('--format vindr: readers fused per class (boxes in/out reported), No-finding images negative', async () => {
    const root = join(scratch, 'vindr');
    await put(
      join(root, 'train.csv'),
      [
        'image_id,class_name,class_id,rad_id,x_min,y_min,x_max,y_max',
        'a1,Cardiomegaly,3,R8,10,20,40,40',
        'a1,Cardiomegaly,3,R9,12,20,42,42',
        'a1,Cardiomegaly,3,R10,10,22,38,40',
        'a1,Pleural effusion,10,R8,2,2,8,8',
        'b2,No finding,14,R1,,,,',
        'b2,No finding,14,R2,,,,',
      ].join('\n'),
    );
    await put(join(root, 'train/a1.dicom'), dicom('P-A', 64, 48));
    await put(join(root, 'train/b2.dicom'), dicom('P-B', 64, 48));
    const { run, summary, coco } = await importAs('vindr', root);
    expect(run.exitCode).toBe(0);
    expect(summary.images).toBe(2);
    expect(summary.negatives).toBe(1);
    expect(summary.notes).toEqual(["weighted boxes fusion at IoU 0.4: 4 readers' boxes in, 2 boxes out"]);
    expect(coco.categories.map((c) => c.name)).toEqual(['Cardiomegaly', 'Pleural effusion']);
    expect(coco.info).toMatchObject({ format: 'vindr', fusion: 'weighted_boxes_fusion', boxes_in: 4, boxes_out: 2 });
    const cardio = coco.annotations.find((a) => a.category_id === 1);
    // Mean corners (10+12+10)/3, (20+20+22)/3, (40+42+38)/3 = 40, (40+42+40)/3.
    expect(cardio?.bbox).toEqual([10.667, 20.667, 29.333, 20]);
    expect(cardio).toMatchObject({ fused_boxes: 3, readers: 3 });
    expect(new Set(coco.images.map((i) => i.patient_id))).toEqual(new Set(['P-A', 'P-B']));
    written.push({ file: summary.annotationsFile, coco });

    const kept = await importAs('vindr', root, ['--fusion', 'none']);
    expect(kept.coco.annotations.map((a) => a.rad_id)).toEqual(['R8', 'R9', 'R10', 'R8']);
    written.push({ file: kept.summary.annotationsFile, coco: kept.coco });

    const bad = await runCli([
      'dataset',
      'import',
      '--format',
      'vindr',
      root,
      '--out',
      join(scratch, 'x'),
      '--fusion',
      'max',
    ]);
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr).toMatch(/--fusion must be wbf or none, got "max"/);
  });

  it('--format nih: boxes, No-Finding negatives grouped by Patient ID, unboxed findings counted', async () => {
    const root = join(scratch, 'nih');
    await put(
      join(root, 'BBox_List_2017.csv'),
      'Image Index,Finding Label,Bbox [x,y,w,h],,,\n00000001_000.png,Nodule,5.5,6.25,10,12,,,\n00000001_000.png,Mass,30,20,15,15,,,\n',
    );
    await put(
      join(root, 'Data_Entry_2017.csv'),
      [
        'Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],',
        '00000001_000.png,Mass|Nodule,0,1,58,M,PA,64,48,0.143,0.143',
        '00000001_001.png,No Finding,1,1,58,M,PA,64,48,0.143,0.143',
        '00000002_000.png,No Finding,0,2,60,F,PA,64,48,0.143,0.143',
        '00000003_000.png,Hernia,0,3,60,F,PA,64,48,0.143,0.143',
      ].join('\n'),
    );
    await put(join(root, 'images_001/images/00000001_000.png'), png(64, 48));
    await put(join(root, 'images_001/images/00000001_001.png'), png(64, 48));
    await put(join(root, 'images_002/images/00000002_000.png'), png(64, 48));
    await put(join(root, 'images_002/images/00000003_000.png'), png(64, 48));
    const { run, summary, coco } = await importAs('nih', root);
    expect(run.exitCode).toBe(0);
    expect([summary.images, summary.annotations, summary.negatives, summary.patients]).toEqual([3, 2, 2, 2]);
    expect(summary.notes).toContain('1 images with findings but no box: not detection labels, left out');
    expect(coco.annotations.map((a) => a.bbox)).toEqual([
      [5.5, 6.25, 10, 12],
      [30, 20, 15, 15],
    ]);
    expect(coco.info).toMatchObject({ excluded_findings_without_box: 1 });
    written.push({ file: summary.annotationsFile, coco });

    // A compact copy to carry (a GPU machine): JPEG images, the same boxes.
    const jpeg = await importAs('nih', root, ['--image-format', 'jpeg']);
    expect(jpeg.coco.images.map((i) => i.file_name)).toEqual(
      coco.images.map((i) => i.file_name.replace(/\.png$/, '.jpg')),
    );
    expect(jpeg.coco.annotations).toEqual(coco.annotations);
    const decoded = await readGreyRaster(join(jpeg.summary.annotationsFile, '..', jpeg.coco.images[0].file_name));
    expect([decoded.width, decoded.height]).toEqual([64, 48]);
    // Flags that cannot go together, or out of range: usage errors naming the flag.
    const usage = (flags: string[]) =>
      runCli([
        'dataset',
        'import',
        '--format',
        'nih',
        root,
        '--out',
        join(scratch, 'refused'),
        '--image-format',
        'jpeg',
        ...flags,
      ]);
    const refused = await usage(['--bits', '16']);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toMatch(/JPEG images are 8-bit/);
    const smaller = await importAs('nih', root, ['--image-format', 'jpeg', '--jpeg-quality', '40']);
    const bytes = async (c: CocoDataset, file: string) =>
      (await readFile(join(file, '..', c.images[0].file_name))).length;
    expect(await bytes(smaller.coco, smaller.summary.annotationsFile)).toBeLessThan(
      await bytes(jpeg.coco, jpeg.summary.annotationsFile),
    );
    const badQuality = await usage(['--jpeg-quality', '0']);
    expect(badQuality.stderr).toMatch(/--jpeg-quality must be an integer in 1\.\.100, got "0"/);
  });

  it('--format voc on TBX11K: <filename> without extension, imgs/<class>/, annotations/xml/', async () => {
    const root = join(scratch, 'tbx11k');
    const xml = (name: string, box: string) =>
      `<annotation><folder>tb</folder><filename>${name}</filename><size><width>64</width><height>48</height><depth>3</depth></size>${box}</annotation>`;
    await put(
      join(root, 'annotations/xml/tb0003.xml'),
      xml(
        'tb0003',
        '<object><name>ActiveTuberculosis</name><bndbox><xmin>11</xmin><ymin>6</ymin><xmax>30</xmax><ymax>20</ymax></bndbox></object>',
      ),
    );
    await put(join(root, 'annotations/xml/h0001.xml'), xml('h0001', ''));
    await put(join(root, 'imgs/tb/tb0003.png'), png(64, 48));
    await put(join(root, 'imgs/health/h0001.png'), png(64, 48));
    const { run, summary, coco } = await importAs('voc', root);
    expect(run.exitCode).toBe(0);
    expect(summary.images).toBe(2);
    expect(summary.issues).toEqual([]);
    expect(coco.annotations.map((a) => a.bbox)).toEqual([[10, 5, 20, 15]]);
    written.push({ file: summary.annotationsFile, coco });
  });

  it('--format seed whose train.csv says filename,category,xmin,ymin,xmax,ymax; --columns for an odd header', async () => {
    const phantom = await generateChestPhantom({
      out: join(scratch, 'seed'),
      seed: 3,
      size: 64,
      patients: 4,
      testImages: 0,
    });
    const rows = phantom.train.flatMap((image) =>
      image.boxes.map(
        (b) => `${image.file.split('/').pop()},${image.category},${b[0]},${b[1]},${b[0] + b[2]},${b[1] + b[3]}`,
      ),
    );
    const csv = join(phantom.root, 'train.csv');
    await writeFile(csv, `filename,category,xmin,ymin,xmax,ymax\n${rows.join('\n')}\n`);
    const { run, summary, coco } = await importAs('seed', phantom.root);
    expect(run.exitCode).toBe(0);
    expect(summary.images).toBe(phantom.train.length);
    expect(summary.issues.filter((i) => i.code === 'mask_csv_mismatch')).toEqual([]);
    written.push({ file: summary.annotationsFile, coco });

    await writeFile(csv, `Bild,Befund,L,O,R,U\n${rows.join('\n')}\n`);
    const refused = await runCli(['dataset', 'import', '--format', 'seed', phantom.root, '--out', join(scratch, 'y')]);
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stderr).toMatch(
      /train\.csv: line 1: unrecognised header "Bild,Befund,L,O,R,U": needs a file column/,
    );
    const named = await importAs('seed', phantom.root, [
      '--columns',
      'file=Bild,category=Befund,xmin=L,ymin=O,xmax=R,ymax=U',
    ]);
    expect(named.run.exitCode).toBe(0);
    expect(named.coco.annotations).toEqual(coco.annotations);
  });

  it.skipIf(!hasPycocotools)(
    'pycocotools reads every import back: same images, boxes, categories; GT scores AP 1',
    () => {
      expect(written).toHaveLength(5);
      const seen = JSON.parse(
        execFileSync(python, [script, ...written.map((w) => w.file)], { encoding: 'utf8' }),
      ) as Record<
        string,
        {
          images: number;
          annotations: number;
          categories: string[];
          boxes: number[][];
          patients: number;
          ap_gt_as_detections: number | null;
        }
      >;
      for (const { file, coco } of written) {
        const view = seen[file];
        expect(view.images, file).toBe(coco.images.length);
        expect(view.annotations, file).toBe(coco.annotations.length);
        expect(view.categories, file).toEqual(coco.categories.map((c) => c.name));
        expect(view.boxes, file).toEqual(
          coco.annotations.map((a) => [a.image_id, a.category_id, ...a.bbox]).sort(lexicographic),
        );
        expect(view.patients, file).toBe(new Set(coco.images.map((i) => i.patient_id)).size);
        expect(view.ap_gt_as_detections, file).toBeCloseTo(1, 9);
      }
    },
  );
});
