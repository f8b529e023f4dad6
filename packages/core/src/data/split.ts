/**
 * Patient-level splits: every image of a patient lands in the same split (no patient in two splits, ever),
 * and splits are stratified by class presence with iterative stratification (Sechidis, Tsoumakas & Vlahavas,
 * ECML 2011), applied to patients: a patient's label vector counts its images containing each category, plus
 * a `negative` label for images without boxes. The rarest label is placed first, each patient going to the
 * split that most lacks that label (ties: the split that most lacks images, then a seeded coin). Patients
 * are visited in an order shuffled by the seed: same seed and input, same split.
 */

import { FedcxrError, Rng } from '@fedcxr/base';
import type { CocoDataset, CocoImage } from '../coco.js';

export interface SplitOptions {
  /** Fraction of images for validation (0..1); default 0.2. Ignored when `folds` is set. */
  val?: number;
  /** Fraction of images held out for testing; default 0. */
  test?: number;
  /** K-fold cross-validation over the non-test images (K ≥ 2): K pairs fold<k>-train / fold<k>-val. */
  folds?: number;
  /** Default 0. */
  seed?: number;
}

export interface SplitCounts {
  name: string;
  images: number;
  patients: number;
  annotations: number;
  negatives: number;
  /** Per category: images containing it, and its boxes. */
  classes: Record<string, { images: number; boxes: number }>;
}

export interface DatasetSplit {
  /** train, val, test, or fold<k>-train / fold<k>-val. */
  name: string;
  dataset: CocoDataset;
  counts: SplitCounts;
}

/** Images without a patient_id are their own patient (reported by `check`). */
export function patientOf(image: CocoImage): string {
  return typeof image.patient_id === 'string' && image.patient_id !== '' ? image.patient_id : `image:${image.id}`;
}

export function splitByPatient(dataset: CocoDataset, options: SplitOptions = {}): DatasetSplit[] {
  const val = options.val ?? 0.2;
  const test = options.test ?? 0;
  const folds = options.folds;
  const seed = options.seed ?? 0;
  if (!(test >= 0 && test < 1)) throw new FedcxrError('usage', `--test must be in [0, 1), got ${test}`);
  if (folds === undefined && !(val > 0 && val + test < 1)) {
    throw new FedcxrError('usage', `--val must be in (0, 1) with val + test < 1, got val ${val}, test ${test}`);
  }
  if (folds !== undefined && !(Number.isInteger(folds) && folds >= 2)) {
    throw new FedcxrError('usage', `--folds must be an integer ≥ 2, got ${folds}`);
  }
  const groups = patientGroups(dataset);
  const rng = splitRng(seed);
  const random = () => rng.next();
  const order = rng.shuffle([...groups.keys()].sort());

  const subset = (name: string, patients: Set<string>): DatasetSplit => {
    const images = dataset.images.filter((image) => patients.has(patientOf(image)));
    const ids = new Set(images.map((image) => image.id));
    const part: CocoDataset = {
      info: { ...(dataset.info ?? {}), split: name, split_seed: seed },
      images,
      annotations: dataset.annotations.filter((a) => ids.has(a.image_id)),
      categories: dataset.categories,
    };
    return { name, dataset: part, counts: countSplit(name, part) };
  };

  let pool = order;
  const out: DatasetSplit[] = [];
  let testPatients = new Set<string>();
  if (test > 0) {
    const [rest, held] = stratify(pool, groups, [1 - test, test], random);
    testPatients = new Set(held);
    pool = rest;
  }
  if (folds === undefined) {
    const [train, valPart] = stratify(pool, groups, [1 - val - test, val], random);
    out.push(subset('train', new Set(train)), subset('val', new Set(valPart)));
  } else {
    const parts = stratify(
      pool,
      groups,
      Array.from({ length: folds }, () => 1 / folds),
      random,
    );
    parts.forEach((part, k) => {
      const valSet = new Set(part);
      out.push(subset(`fold${k + 1}-train`, new Set(pool.filter((p) => !valSet.has(p)))));
      out.push(subset(`fold${k + 1}-val`, valSet));
    });
  }
  if (test > 0) out.push(subset('test', testPatients));
  return out;
}

interface Group {
  images: number;
  /** label index → images of this patient with that label (last label: negative). */
  labels: Map<number, number>;
}

function patientGroups(dataset: CocoDataset): Map<string, Group> {
  const categoryIndex = new Map(dataset.categories.map((c, i) => [c.id, i]));
  const negative = dataset.categories.length;
  const present = new Map<number, Set<number>>();
  for (const a of dataset.annotations) {
    const set = present.get(a.image_id) ?? new Set<number>();
    set.add(categoryIndex.get(a.category_id) ?? negative);
    present.set(a.image_id, set);
  }
  const groups = new Map<string, Group>();
  for (const image of dataset.images) {
    const patient = patientOf(image);
    const group = groups.get(patient) ?? { images: 0, labels: new Map<number, number>() };
    group.images++;
    for (const label of present.get(image.id) ?? [negative])
      group.labels.set(label, (group.labels.get(label) ?? 0) + 1);
    groups.set(patient, group);
  }
  return groups;
}

/** Iterative stratification of patients into parts with the given ratios; returns the patients of each part. */
function stratify(patients: string[], groups: Map<string, Group>, ratios: number[], random: () => number): string[][] {
  const sum = ratios.reduce((a, b) => a + b, 0);
  const weights = ratios.map((r) => r / sum);
  const labelTotals = new Map<number, number>();
  let imageTotal = 0;
  for (const p of patients) {
    const g = groups.get(p) as Group;
    imageTotal += g.images;
    for (const [l, n] of g.labels) labelTotals.set(l, (labelTotals.get(l) ?? 0) + n);
  }
  const wantLabel = weights.map((w) => new Map([...labelTotals].map(([l, n]) => [l, w * n])));
  const wantImages = weights.map((w) => w * imageTotal);
  const parts: string[][] = weights.map(() => []);
  const remaining = new Set(patients);
  const remainingLabel = new Map(labelTotals);

  while (remaining.size > 0) {
    // The rarest label still to place.
    let label = -1;
    let fewest = Number.POSITIVE_INFINITY;
    for (const [l, n] of [...remainingLabel].sort((a, b) => a[0] - b[0])) {
      if (n > 0 && n < fewest) {
        fewest = n;
        label = l;
      }
    }
    const candidates = patients.filter(
      (p) => remaining.has(p) && (label < 0 || (groups.get(p) as Group).labels.has(label)),
    );
    for (const patient of candidates) {
      const g = groups.get(patient) as Group;
      let best: number[] = [];
      let bestKey: [number, number] = [Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY];
      for (let j = 0; j < parts.length; j++) {
        const key: [number, number] = [label < 0 ? 0 : (wantLabel[j].get(label) ?? 0), wantImages[j]];
        const cmp = key[0] - bestKey[0] || key[1] - bestKey[1];
        if (cmp > 1e-9) {
          best = [j];
          bestKey = key;
        } else if (Math.abs(cmp) <= 1e-9) best.push(j);
      }
      const j = best.length === 1 ? best[0] : best[Math.floor(random() * best.length)];
      parts[j].push(patient);
      wantImages[j] -= g.images;
      for (const [l, n] of g.labels) {
        wantLabel[j].set(l, (wantLabel[j].get(l) ?? 0) - n);
        remainingLabel.set(l, (remainingLabel.get(l) ?? 0) - n);
      }
      remaining.delete(patient);
    }
  }
  return parts;
}

export function countSplit(name: string, dataset: CocoDataset): SplitCounts {
  const classes: SplitCounts['classes'] = {};
  const nameById = new Map(dataset.categories.map((c) => [c.id, c.name]));
  for (const c of dataset.categories) classes[c.name] = { images: 0, boxes: 0 };
  const imageClasses = new Map<number, Set<string>>();
  for (const a of dataset.annotations) {
    const category = nameById.get(a.category_id) ?? `#${a.category_id}`;
    classes[category] ??= { images: 0, boxes: 0 };
    classes[category].boxes++;
    const set = imageClasses.get(a.image_id) ?? new Set<string>();
    set.add(category);
    imageClasses.set(a.image_id, set);
  }
  for (const set of imageClasses.values()) for (const category of set) classes[category].images++;
  return {
    name,
    images: dataset.images.length,
    patients: new Set(dataset.images.map(patientOf)).size,
    annotations: dataset.annotations.length,
    negatives: dataset.images.filter((image) => !imageClasses.has(image.id)).length,
    classes,
  };
}

/** The split's stream: core's Rng, its state scrambled from the seed as it always was (splits unchanged). */
function splitRng(seed: number): Rng {
  return new Rng((seed * 0x9e3779b9 + 0x7f4a7c15) >>> 0);
}

/** The split's stream as a plain function (core's Rng underneath). */
export function seededRandom(seed: number): () => number {
  const rng = splitRng(seed);
  return () => rng.next();
}
