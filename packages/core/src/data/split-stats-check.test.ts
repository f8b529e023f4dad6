import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeGreyPng } from '@fedcxr/base';
import { afterAll, describe, expect, it } from 'vitest';
import type { CocoDataset } from '../coco.js';
import { checkDataset } from './check.js';
import { formatIssue } from './source.js';
import { patientOf, seededRandom, splitByPatient } from './split.js';
import { datasetStats, statsHtml } from './stats.js';

/** 80 patients, 1–4 images each, 5 classes of very different frequency, ~30 % negatives. */
function syntheticDataset(seed = 1): CocoDataset {
  const random = seededRandom(seed);
  const dataset: CocoDataset = {
    images: [],
    annotations: [],
    categories: ['common', 'medium', 'rare', 'very_rare', 'twice'].map((name, i) => ({ id: i + 1, name })),
  };
  const weights = [0.5, 0.25, 0.08, 0.03];
  for (let p = 0; p < 80; p++) {
    const images = 1 + Math.floor(random() * 4);
    for (let k = 0; k < images; k++) {
      const id = dataset.images.length + 1;
      dataset.images.push({ id, file_name: `p${p}_${k}.png`, width: 100, height: 100, patient_id: `P${p}` });
      weights.forEach((w, c) => {
        if (random() < w) {
          dataset.annotations.push({
            id: dataset.annotations.length + 1,
            image_id: id,
            category_id: c + 1,
            bbox: [10, 10, 20 + c, 30],
            area: (20 + c) * 30,
            iscrowd: 0,
          });
        }
      });
      // "twice": exactly two patients have it, so both splits of a 50/50 split should get one.
      if ((p === 3 || p === 40) && k === 0) {
        dataset.annotations.push({
          id: dataset.annotations.length + 1,
          image_id: id,
          category_id: 5,
          bbox: [1, 1, 5, 5],
          area: 25,
          iscrowd: 0,
        });
      }
    }
  }
  return dataset;
}

describe('splitByPatient', () => {
  const dataset = syntheticDataset();

  it('never puts a patient in two splits, loses no image, and hits the fractions', () => {
    const splits = splitByPatient(dataset, { val: 0.2, test: 0.1, seed: 3 });
    expect(splits.map((s) => s.name)).toEqual(['train', 'val', 'test']);
    const owner = new Map<string, string>();
    for (const split of splits) {
      for (const image of split.dataset.images) {
        const previous = owner.get(patientOf(image));
        expect(previous === undefined || previous === split.name).toBe(true);
        owner.set(patientOf(image), split.name);
      }
    }
    expect(splits.reduce((n, s) => n + s.dataset.images.length, 0)).toBe(dataset.images.length);
    expect(splits.reduce((n, s) => n + s.dataset.annotations.length, 0)).toBe(dataset.annotations.length);
    const fraction = (name: string) =>
      (splits.find((s) => s.name === name)?.counts.images ?? 0) / dataset.images.length;
    expect(fraction('val')).toBeGreaterThan(0.15);
    expect(fraction('val')).toBeLessThan(0.25);
    expect(fraction('test')).toBeGreaterThan(0.06);
    expect(fraction('test')).toBeLessThan(0.14);
  });

  it('stratifies: every class lands in every split in about its share, rare ones included', () => {
    const splits = splitByPatient(dataset, { val: 0.5, seed: 11 });
    const [train, val] = splits;
    for (const name of ['common', 'medium', 'rare', 'very_rare', 'twice']) {
      expect(train.counts.classes[name].images).toBeGreaterThan(0);
      expect(val.counts.classes[name].images).toBeGreaterThan(0);
    }
    const total = train.counts.classes.common.images + val.counts.classes.common.images;
    expect(Math.abs(val.counts.classes.common.images - total / 2)).toBeLessThanOrEqual(total * 0.1);
    expect(Math.abs(val.counts.negatives - train.counts.negatives)).toBeLessThanOrEqual(
      (val.counts.negatives + train.counts.negatives) * 0.2,
    );
  });

  it('is deterministic for a seed and changes with it', () => {
    const ids = (seed: number) =>
      splitByPatient(dataset, { seed })[1]
        .dataset.images.map((i) => i.id)
        .join(',');
    expect(ids(5)).toBe(ids(5));
    expect(ids(5)).not.toBe(ids(6));
  });

  it('K folds: each patient validates in exactly one fold and trains in the others', () => {
    const splits = splitByPatient(dataset, { folds: 4, test: 0.1, seed: 2 });
    expect(splits.map((s) => s.name)).toEqual([
      'fold1-train',
      'fold1-val',
      'fold2-train',
      'fold2-val',
      'fold3-train',
      'fold3-val',
      'fold4-train',
      'fold4-val',
      'test',
    ]);
    const testPatients = new Set(splits[8].dataset.images.map(patientOf));
    const valCount = new Map<string, number>();
    for (let k = 0; k < 4; k++) {
      const train = new Set(splits[2 * k].dataset.images.map(patientOf));
      for (const p of new Set(splits[2 * k + 1].dataset.images.map(patientOf))) {
        expect(train.has(p)).toBe(false);
        expect(testPatients.has(p)).toBe(false);
        valCount.set(p, (valCount.get(p) ?? 0) + 1);
      }
      expect(splits[2 * k].counts.images + splits[2 * k + 1].counts.images + splits[8].counts.images).toBe(
        dataset.images.length,
      );
    }
    expect([...valCount.values()].every((n) => n === 1)).toBe(true);
    expect(valCount.size + testPatients.size).toBe(80);
  });

  it('refuses impossible fractions', () => {
    expect(() => splitByPatient(dataset, { val: 0.7, test: 0.4 })).toThrow(/val \+ test < 1/);
    expect(() => splitByPatient(dataset, { folds: 1 })).toThrow(/folds/);
  });
});

describe('datasetStats and statsHtml', () => {
  const dataset: CocoDataset = {
    images: [
      { id: 1, file_name: 'a.png', width: 200, height: 100, patient_id: 'A' },
      { id: 2, file_name: 'b.png', width: 200, height: 100, patient_id: 'A' },
      { id: 3, file_name: 'c.png', width: 100, height: 100, patient_id: 'B' },
    ],
    categories: [
      { id: 1, name: 'x' },
      { id: 2, name: 'y<z' },
    ],
    annotations: [
      { id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 10, 10], area: 100, iscrowd: 0 },
      { id: 2, image_id: 1, category_id: 1, bbox: [0, 0, 40, 40], area: 1600, iscrowd: 0 },
      { id: 3, image_id: 3, category_id: 2, bbox: [0, 0, 100, 100], area: 10000, iscrowd: 0 },
    ],
  };

  it('counts what is there', () => {
    const stats = datasetStats(dataset);
    expect(stats).toMatchObject({ images: 3, patients: 2, annotations: 3, negatives: 1 });
    expect(stats.categories).toEqual([
      { id: 1, name: 'x', images: 1, boxes: 2 },
      { id: 2, name: 'y<z', images: 1, boxes: 1 },
    ]);
    expect(stats.boxesPerImage).toMatchObject({ edges: [0, 1, 2], counts: [1, 1, 1] });
    expect(stats.imagesPerPatient).toMatchObject({ edges: [1, 2], counts: [1, 1] });
    expect(stats.boxSide).toMatchObject({ min: 10, median: 40, max: 100 });
    expect(stats.areaRanges).toEqual({ small: 1, medium: 1, large: 1 });
    expect(stats.boxRelativeArea.max).toBe(1);
    expect(stats.imageSizes).toEqual({ '200x100': 2, '100x100': 1 });
  });

  it('renders a self-contained page with SVG histograms and escaped names', () => {
    const html = statsHtml(datasetStats(dataset), 'Demo & stats');
    expect(html).toMatch(/^<!doctype html>/);
    expect(html.match(/<svg /g)?.length).toBe(4);
    expect(html).toContain('y&lt;z');
    expect(html).toContain('Demo &amp; stats');
    expect(html).not.toMatch(/<script|src=|href=/);
  });
});

describe('checkDataset', () => {
  let dir: string;
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('lists every problem with its location', async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedcxr-check-'));
    const image = encodeGreyPng({ width: 20, height: 10, channels: 1, bitDepth: 8, data: new Uint8Array(200) });
    await writeFile(join(dir, 'a.png'), image);
    await writeFile(join(dir, 'b.png'), image);
    const file = join(dir, 'annotations.json');
    await writeFile(
      file,
      JSON.stringify({
        images: [
          { id: 1, file_name: 'a.png', width: 20, height: 10, patient_id: 'A' },
          { id: 2, file_name: 'b.png', width: 30, height: 10, patient_id: 'B' },
          { id: 3, file_name: 'gone.png', width: 20, height: 10 },
          { id: 3, file_name: 'a.png', width: 20, height: 10, patient_id: 'C' },
        ],
        categories: [{ id: 1, name: 'x' }],
        annotations: [
          { id: 1, image_id: 1, category_id: 1, bbox: [1, 1, 5, 5], area: 25, iscrowd: 0 },
          { id: 2, image_id: 1, category_id: 1, bbox: [1, 1, 5, 5], area: 25, iscrowd: 0 },
          { id: 3, image_id: 1, category_id: 4, bbox: [15, 1, 10, 5], area: 50, iscrowd: 0 },
          { id: 0, image_id: 1, category_id: 1, bbox: [1, 1, 2, 2] },
        ],
      }),
    );
    const result = await checkDataset(file);
    const lines = result.issues.map(formatIssue).map((l) => l.slice(dir.length + 1));
    expect(lines).toEqual(
      expect.arrayContaining([
        'annotations.json: images[3] (id 3): image id 3 is used twice',
        'annotations.json: images[3] (id 3): file_name "a.png" is also used by images[0]',
        'annotations.json: annotations[1] (id 2): same image, category and bbox as annotations[0]',
        'annotations.json: annotations[2] (id 3): category_id 4 matches no category',
        expect.stringMatching(
          /^annotations\.json: annotations\[2\] \(id 3\): bbox \[15, 1, 10, 5\] reaches outside image 1/,
        ),
        expect.stringMatching(/^annotations\.json: annotations\[3\] \(id 0\): id must be an integer ≥ 1/),
        'annotations.json: annotations[3] (id 0): area must be a non-negative number (COCOeval needs it)',
        'annotations.json: annotations[3] (id 0): iscrowd must be 0 or 1 (COCOeval needs it)',
        expect.stringMatching(/^annotations\.json: images\[1\] \(id 2\): says 30x10 but .*b\.png is 20x10/),
        expect.stringMatching(/^annotations\.json: images\[2\] \(id 3\): image file .*gone\.png does not exist/),
        'annotations.json: images[2] (id 3): no patient_id: a patient split treats it as its own patient',
        expect.stringMatching(/^annotations\.json: images\[1\] \(id 2\): same pixels file as images\[0\] "a\.png"/),
      ]),
    );
    expect(result.errors).toBeGreaterThanOrEqual(9);
    await writeFile(file, '{"images": 1}');
    expect((await checkDataset(file)).issues.map((i) => i.message)).toEqual([
      '"images" must be a list',
      '"annotations" must be a list',
      '"categories" must be a list',
    ]);
  });
});
