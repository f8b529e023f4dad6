import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { maskToBoxes, readGreyRaster, SEED_FINDING_CLASSES } from '@fedcxr/base';
import { afterAll, describe, expect, it } from 'vitest';
import { generateChestPhantom, type PhantomSummary } from './phantom.js';

const scratch = await mkdtemp(join(tmpdir(), 'fedcxr-phantom-'));
afterAll(() => rm(scratch, { recursive: true, force: true }));

async function digestTree(root: string): Promise<string> {
  const hash = createHash('sha256');
  const walk = async (dir: string): Promise<void> => {
    for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else hash.update(path.slice(root.length)).update(await readFile(path));
    }
  };
  await walk(root);
  return hash.digest('hex');
}

describe('generateChestPhantom', () => {
  let summary: PhantomSummary;
  it('writes the seed export layout', async () => {
    summary = await generateChestPhantom({
      out: join(scratch, 'a'),
      seed: 5,
      size: 128,
      patients: 12,
      csvDisagreements: 2,
    });
    const classes = (await readdir(join(summary.root, 'train'))).sort();
    expect(classes).toEqual([...SEED_FINDING_CLASSES, 'normal'].sort());
    expect((await readdir(summary.root)).sort()).toEqual(['test', 'train', 'train.csv']);
    for (const name of classes) {
      const images = (await readdir(join(summary.root, 'train', name, 'image'))).sort();
      expect(images.length).toBeGreaterThan(0);
      expect(images.every((f) => f.endsWith('.dcm'))).toBe(true);
      if (name === 'normal') {
        expect((await readdir(join(summary.root, 'train', name))).sort()).toEqual(['image']);
        continue;
      }
      // One mask per DICOM, same stem.
      const marks = (await readdir(join(summary.root, 'train', name, 'mark'))).sort();
      expect(marks.map((f) => f.replace(/\.(png|jpg)$/, '.dcm')).sort()).toEqual(images);
    }
    expect((await readdir(join(summary.root, 'test', 'image'))).length).toBe(6);
    const masks = summary.train.filter((i) => i.mask);
    expect(masks.some((i) => i.mask?.endsWith('.jpg'))).toBe(true);
    expect(masks.some((i) => i.mask?.endsWith('.png'))).toBe(true);
    // Several images per patient, for patient-level splits to matter.
    const perPatient = new Map<string, number>();
    for (const image of summary.train) perPatient.set(image.patientId, (perPatient.get(image.patientId) ?? 0) + 1);
    expect(perPatient.size).toBe(12);
    expect(Math.max(...perPatient.values())).toBeGreaterThan(1);
  });

  it('writes 12-bit MONOCHROME1 LOG DICOM with a window', async () => {
    const bytes = await readFile(join(summary.root, summary.train[0].file));
    expect(new TextDecoder().decode(bytes.subarray(128, 132))).toBe('DICM');
    const text = new TextDecoder('latin1').decode(bytes.subarray(0, 1200));
    for (const value of ['MONOCHROME1', 'LOG', 'CR', 'CHEST', summary.train[0].patientId])
      expect(text).toContain(value);
    const pixels = new Uint16Array(bytes.buffer.slice(bytes.length - 128 * 128 * 2));
    expect(Math.max(...pixels)).toBeLessThan(4096);
    // Lungs are dark on display: high stored values exist as well as low (bone) ones.
    expect(Math.max(...pixels)).toBeGreaterThan(2500);
    expect(Math.min(...pixels)).toBeLessThan(800);
  });

  it('train.csv lists every box of every mask, plus the moved rows it reports', async () => {
    const lines = (await readFile(join(summary.root, 'train.csv'), 'utf8')).trim().split('\n');
    expect(lines[0]).toBe('file,category,box');
    const expectedRows = summary.train.reduce((n, i) => n + Math.max(1, i.boxes.length), 0);
    expect(lines.length - 1).toBe(expectedRows);
    expect(summary.disagreements).toHaveLength(2);
    for (const image of summary.train) {
      const name = image.file.split('/').pop();
      const rows = lines.filter((l) => l.startsWith(`${name},`));
      if (image.boxes.length === 0) {
        expect(image.category).toBe('normal');
        expect(rows).toEqual([`${name},normal,`]);
        continue;
      }
      const moved = summary.disagreements.find((d) => d.file === image.file);
      const boxes = moved ? [moved.box, ...image.boxes.slice(1)] : image.boxes;
      expect(rows).toEqual(boxes.map((b) => `${name},${image.category},"[${b.join(', ')}]"`));
      // The mask on disk gives the same boxes (JPEG masks within a pixel).
      const fromDisk = maskToBoxes(await readGreyRaster(join(summary.root, image.mask as string))).map((c) => c.bbox);
      expect(fromDisk).toHaveLength(image.boxes.length);
      fromDisk.forEach((box, k) => {
        for (let j = 0; j < 4; j++) expect(Math.abs(box[j] - image.boxes[k][j])).toBeLessThanOrEqual(1);
      });
    }
  });

  it('is deterministic for a seed and differs across seeds', async () => {
    const options = { size: 64, patients: 4, testImages: 1 };
    await generateChestPhantom({ ...options, out: join(scratch, 'b1'), seed: 9 });
    await generateChestPhantom({ ...options, out: join(scratch, 'b2'), seed: 9 });
    await generateChestPhantom({ ...options, out: join(scratch, 'b3'), seed: 10 });
    const [one, two, three] = await Promise.all(['b1', 'b2', 'b3'].map((d) => digestTree(join(scratch, d))));
    expect(one).toBe(two);
    expect(one).not.toBe(three);
  });

  it('draws a subset of the classes, conspicuously, with one box per finding', async () => {
    const classes = ['cardiac_hypertrophy', 'lung_field_infiltration', 'scoliosis', 'normal'];
    const picked = await generateChestPhantom({
      out: join(scratch, 'd'),
      seed: 3,
      size: 128,
      patients: 12,
      testImages: 2,
      classes,
      findings: 'conspicuous',
    });
    expect((await readdir(join(picked.root, 'train'))).sort()).toEqual([...classes].sort());
    expect(new Set(picked.train.map((i) => i.category))).toEqual(new Set(classes));
    for (const image of picked.train) {
      if (image.category === 'normal') {
        expect(image.boxes).toEqual([]);
        continue;
      }
      // One finding, large at the demo's resolution, in its class's own place.
      expect(image.boxes).toHaveLength(1);
      const [x, y, w, h] = image.boxes[0];
      const cx = (x + w / 2) / 128;
      const cy = (y + h / 2) / 128;
      if (image.category === 'cardiac_hypertrophy') {
        expect(w).toBeGreaterThan(0.4 * 128);
        expect(cy).toBeGreaterThan(0.55);
      }
      if (image.category === 'lung_field_infiltration') {
        expect(Math.min(w, h)).toBeGreaterThanOrEqual(12);
        expect(Math.abs(cx - 0.5)).toBeGreaterThan(0.08);
      }
      if (image.category === 'scoliosis') {
        expect(h).toBeGreaterThan(0.5 * 128);
        expect(Math.abs(cx - 0.5)).toBeLessThan(0.1);
      }
    }
  });

  it('refuses unknown classes and finding styles', async () => {
    await expect(generateChestPhantom({ out: join(scratch, 'e'), classes: ['pneumothorax'] })).rejects.toThrow(
      /unknown: pneumothorax/,
    );
    await expect(generateChestPhantom({ out: join(scratch, 'e'), classes: [] })).rejects.toThrow(/at least one/);
    await expect(
      generateChestPhantom({ out: join(scratch, 'e'), findings: 'loud' as unknown as 'subtle' }),
    ).rejects.toThrow(/subtle/);
  });

  it('refuses a silly size', async () => {
    await expect(generateChestPhantom({ out: join(scratch, 'c'), size: 10 })).rejects.toThrow(/size must be/);
  });
});
