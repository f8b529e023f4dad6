/**
 * The real RSNA subset (../shared/data/rsna-pneumonia): 602 DICOM (JPEG baseline, 1024²), 186 positive
 * images with 312 boxes. Imported at 256 px to keep the test short (≈30 s of CPU on this machine).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CocoDataset, patientOf, readGreyRaster, validateCoco } from '@fedcxr/core';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../testing.js';

const rsna = fileURLToPath(new URL('../../../../../shared/data/rsna-pneumonia', import.meta.url));
const present = existsSync(join(rsna, 'stage_2_train_labels.csv'));
if (!present) console.warn(`skipping the RSNA import test: ${rsna} is absent`);

describe.skipIf(!present)('cxr dataset import --format rsna (real data)', () => {
  let scratch = '';
  afterAll(() => (scratch ? rm(scratch, { recursive: true, force: true }) : undefined));

  it('gives 602 images and 312 boxes, negatives kept, boxes scaled to 256 px; a patient split leaks nobody', async () => {
    scratch = await mkdtemp(join(tmpdir(), 'fedcxr-rsna-'));
    const out = join(scratch, 'rsna');
    const run = await runCli(['dataset', 'import', '--format', 'rsna', rsna, '--out', out, '--size', '256', '--json']);
    expect(run.exitCode).toBe(0);
    const summary = run.json<{
      images: number;
      annotations: number;
      negatives: number;
      patients: number;
      seconds: number;
    }>();
    expect(summary).toMatchObject({ images: 602, annotations: 312, negatives: 416, patients: 602 });
    console.log(
      `RSNA import: ${summary.images} images, ${summary.annotations} boxes in ${summary.seconds.toFixed(1)} s`,
    );

    const coco = JSON.parse(await readFile(join(out, 'annotations.json'), 'utf8')) as CocoDataset;
    expect(validateCoco(coco, 'annotations.json').issues).toEqual([]);
    expect(coco.categories).toEqual([{ id: 1, name: 'lung_opacity', supercategory: 'finding' }]);
    // stage_2_train_labels.csv line 2: 000fe35a-…,570,282,269,409,1 — in 1024² pixels; written images are 256².
    const first = coco.images.find((i) => i.patient_id === '000fe35a-2649-43d4-b027-e67796d412e0');
    expect(first).toMatchObject({
      width: 256,
      height: 256,
      original_width: 1024,
      original_height: 1024,
      rsna_class: 'Lung Opacity',
    });
    const boxes = coco.annotations.filter((a) => a.image_id === first?.id).map((a) => a.bbox);
    expect(boxes).toEqual([
      [142.5, 70.5, 67.25, 102.25],
      [20.75, 56.75, 74, 109.5],
    ]);
    const png = await readGreyRaster(join(out, coco.images[0].file_name));
    expect(png).toMatchObject({ width: 256, height: 256 });

    const split = await runCli([
      'dataset',
      'split',
      join(out, 'annotations.json'),
      '--val',
      '0.2',
      '--seed',
      '1',
      '--json',
    ]);
    expect(split.exitCode).toBe(0);
    const [train, val] = await Promise.all(
      ['train', 'val'].map(
        async (name) => JSON.parse(await readFile(join(out, `${name}.json`), 'utf8')) as CocoDataset,
      ),
    );
    const trainPatients = new Set(train.images.map(patientOf));
    expect(val.images.some((i) => trainPatients.has(patientOf(i)))).toBe(false);
    expect(train.images.length + val.images.length).toBe(602);
    // Stratified: the positive share is the same in both splits (±3 points).
    const positive = (d: CocoDataset) => new Set(d.annotations.map((a) => a.image_id)).size / d.images.length;
    expect(Math.abs(positive(train) - positive(val))).toBeLessThan(0.03);
  }, 400_000);
});
