/**
 * Round trip import → COCO → pycocotools. The import of a fixed phantom is compared byte for byte with
 * tools/reference/fixtures/dataset/roundtrip/annotations.json, which pycocotools loaded and evaluated
 * (tools/reference/dataset_pycocotools_roundtrip.py wrote pycocotools.json). Regenerate with
 * FEDCXR_REGENERATE_FIXTURES=1, then rerun the Python script.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CocoDataset } from '@fedcxr/core';
import { generateChestPhantom } from '@fedcxr/dicom';
import { afterAll, describe, expect, it } from 'vitest';
import { convertAll, importDataset } from './import.js';

const fixtures = fileURLToPath(new URL('../../../../tools/reference/fixtures/dataset/roundtrip/', import.meta.url));
const scratch = await mkdtemp(join(tmpdir(), 'fedcxr-roundtrip-'));
afterAll(() => rm(scratch, { recursive: true, force: true }));

describe('import → COCO → pycocotools', () => {
  it('the import is the file pycocotools loaded, and pycocotools found it complete and consistent', async () => {
    const phantom = await generateChestPhantom({
      out: join(scratch, 'export'),
      seed: 7,
      size: 96,
      patients: 6,
      testImages: 0,
    });
    const summary = await importDataset({ format: 'seed', src: phantom.root, out: join(scratch, 'out'), size: 64 });
    const text = await readFile(summary.annotationsFile, 'utf8');
    if (process.env.FEDCXR_REGENERATE_FIXTURES) await writeFile(join(fixtures, 'annotations.json'), text);
    expect(text).toBe(await readFile(join(fixtures, 'annotations.json'), 'utf8'));

    const coco = JSON.parse(text) as CocoDataset;
    const seen = JSON.parse(await readFile(join(fixtures, 'pycocotools.json'), 'utf8')) as {
      images: number;
      annotations: number;
      categories: string[];
      annotations_per_category: Record<string, number>;
      stats_gt_as_detections: number[];
      patients: number;
    };
    expect(seen.images).toBe(coco.images.length);
    expect(seen.annotations).toBe(coco.annotations.length);
    expect(seen.categories).toEqual(coco.categories.map((c) => c.name));
    expect(seen.patients).toBe(6);
    for (const category of coco.categories) {
      expect(seen.annotations_per_category[category.name]).toBe(
        coco.annotations.filter((a) => a.category_id === category.id).length,
      );
    }
    // Ground truth scored against itself: AP and AR are 1 wherever the area range has objects.
    expect(seen.stats_gt_as_detections[0]).toBeCloseTo(1, 9);
    expect(seen.stats_gt_as_detections[8]).toBeCloseTo(1, 9);
  });

  it('worker threads give exactly the same dataset as the main thread', async () => {
    const phantom = await generateChestPhantom({
      out: join(scratch, 'export-w'),
      seed: 8,
      size: 64,
      patients: 5,
      testImages: 0,
    });
    const inThread = await importDataset({ format: 'seed', src: phantom.root, out: join(scratch, 'w0'), workers: 0 });
    const pooled = await importDataset({ format: 'seed', src: phantom.root, out: join(scratch, 'w2'), workers: 2 });
    expect(pooled.workers).toBe(2);
    expect(inThread.workers).toBe(0);
    expect(pooled.images).toBe(phantom.train.length);
    expect(await readFile(pooled.annotationsFile, 'utf8')).toBe(await readFile(inThread.annotationsFile, 'utf8'));
    const first = JSON.parse(await readFile(pooled.annotationsFile, 'utf8')) as CocoDataset;
    const name = first.images[3].file_name;
    expect(Buffer.compare(await readFile(join(scratch, 'w2', name)), await readFile(join(scratch, 'w0', name)))).toBe(
      0,
    );
  });

  it('a worker that cannot start hands its share to the main thread', async () => {
    const phantom = await generateChestPhantom({
      out: join(scratch, 'export-x'),
      seed: 9,
      size: 64,
      patients: 3,
      testImages: 0,
    });
    const jobs = phantom.train.map((image, index) => ({
      index,
      item: { path: join(phantom.root, image.file), boxes: [] },
      settings: {
        preset: 'seed' as const,
        size: undefined,
        letterbox: false,
        imageFormat: 'png' as const,
        outFile: join(scratch, 'x', `${index}.png`),
      },
    }));
    const broken = { url: new URL('file:///nonexistent/import-worker.mjs'), execArgv: [] };
    const { results } = await convertAll(jobs, 2, () => {}, broken);
    expect(results).toHaveLength(jobs.length);
    expect(results.every((r) => r.ok)).toBe(true);
  });
});
