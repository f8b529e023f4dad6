/**
 * Site datasets for the small tabular model: synthetic classification data with patient ids, the
 * patient-disjoint shardings the simulation uses, and the on-disk file a site reads (it never leaves the
 * site; only the trainer reads it).
 */
import { readFile } from 'node:fs/promises';
import { FedcxrError, Rng } from '@fedcxr/core';
import { writePrivateJsonAtomic } from './private-file.js';
import type { TabularData } from './tabular-trainer.js';

export interface LabelledRows extends TabularData {
  features: number;
  classes: number;
  /** Who each row belongs to: shards and validation splits never divide a patient. */
  patientIds: string[];
}

export type SplitMode = 'patient' | 'iid' | 'non-iid';

/**
 * Gaussian class clusters: class c is centred on a random direction scaled by `separation`, rows get unit
 * noise; each patient contributes 1–3 rows of one class (like studies of one person).
 */
export function makeSyntheticRows(options: {
  rows: number;
  features: number;
  classes: number;
  seed: number;
  separation?: number;
}): LabelledRows {
  const { rows, features, classes, seed } = options;
  const separation = options.separation ?? 1.5;
  const rng = new Rng(seed);
  const centres = Array.from({ length: classes }, () => {
    const v = Array.from({ length: features }, () => rng.normal());
    const norm = Math.hypot(...v);
    return v.map((value) => (value / norm) * separation);
  });
  const x = new Float32Array(rows * features);
  const y = new Int32Array(rows);
  const patientIds: string[] = [];
  let patient = 0;
  for (let row = 0; row < rows; ) {
    const label = rng.int(classes);
    const studies = 1 + rng.int(3);
    for (let s = 0; s < studies && row < rows; s++, row++) {
      y[row] = label;
      for (let f = 0; f < features; f++) x[row * features + f] = centres[label][f] + rng.normal();
      patientIds.push(`P${String(patient).padStart(6, '0')}`);
    }
    patient++;
  }
  return { features, classes, x, y, patientIds };
}

export function selectRows(data: LabelledRows, rows: readonly number[]): LabelledRows {
  const d = data.features;
  const x = new Float32Array(rows.length * d);
  rows.forEach((row, i) => {
    x.set(data.x.subarray(row * d, row * d + d), i * d);
  });
  return {
    features: d,
    classes: data.classes,
    x,
    y: Int32Array.from(rows.map((row) => data.y[row])),
    patientIds: rows.map((row) => data.patientIds[row]),
  };
}

/** Groups row indices by patient, in first-seen order. */
function rowsByPatient(data: LabelledRows): Map<string, number[]> {
  const groups = new Map<string, number[]>();
  data.patientIds.forEach((id, row) => {
    const list = groups.get(id);
    if (list) list.push(row);
    else groups.set(id, [row]);
  });
  return groups;
}

/**
 * Patient-disjoint shards. `patient`: patients dealt at random; `iid`: patients dealt round-robin within
 * each majority label (label mix equal across sites); `non-iid`: patients sorted by label and cut into
 * contiguous blocks (each site sees mostly a few classes).
 */
export function shardByPatient(data: LabelledRows, sites: number, mode: SplitMode, seed: number): number[][] {
  if (sites < 1) throw new FedcxrError('usage', 'need at least one site');
  const patients = new Rng(seed).shuffle([...rowsByPatient(data).entries()]);
  if (patients.length < sites) throw new FedcxrError('usage', `${patients.length} patients cannot fill ${sites} sites`);
  const shards: number[][] = Array.from({ length: sites }, () => []);
  if (mode === 'patient') {
    patients.forEach(([, rows], i) => {
      shards[i % sites].push(...rows);
    });
  } else {
    const labelOf = (rows: number[]) => data.y[rows[0]];
    patients.sort((a, b) => labelOf(a[1]) - labelOf(b[1]));
    if (mode === 'iid') {
      patients.forEach(([, rows], i) => {
        shards[i % sites].push(...rows);
      });
    } else {
      const perSite = Math.ceil(patients.length / sites);
      patients.forEach(([, rows], i) => {
        shards[Math.min(sites - 1, Math.floor(i / perSite))].push(...rows);
      });
    }
  }
  return shards;
}

/** Splits rows into training and validation by patient (≈ `fraction` of patients to validation). */
export function splitValidation(
  data: LabelledRows,
  fraction: number,
  seed: number,
): { train: LabelledRows; validation: LabelledRows } {
  const rng = new Rng(seed);
  const train: number[] = [];
  const validation: number[] = [];
  for (const rows of rowsByPatient(data).values()) (rng.next() < fraction ? validation : train).push(...rows);
  return { train: selectRows(data, train), validation: selectRows(data, validation) };
}

export interface SiteDataFile {
  features: number;
  classes: number;
  train: { x: number[]; y: number[] };
  validation: { x: number[]; y: number[] };
}

export async function writeSiteData(
  path: string,
  train: TabularData,
  validation: TabularData,
  shape: { features: number; classes: number },
): Promise<void> {
  const file: SiteDataFile = {
    ...shape,
    train: { x: [...train.x], y: [...train.y] },
    validation: { x: [...validation.x], y: [...validation.y] },
  };
  // A site's own rows: readable by the site's user only.
  await writePrivateJsonAtomic(path, file);
}

export async function readSiteData(
  path: string,
): Promise<{ features: number; classes: number; train: TabularData; validation: TabularData }> {
  let file: SiteDataFile;
  try {
    file = JSON.parse(await readFile(path, 'utf8')) as SiteDataFile;
  } catch (error) {
    throw new FedcxrError('site_data_unreadable', `cannot read site data: ${(error as Error).message}`, { file: path });
  }
  const check = (ok: boolean, problem: string) => {
    if (!ok) throw new FedcxrError('site_data_invalid', problem, { file: path });
  };
  check(Number.isInteger(file.features) && file.features > 0, 'features must be a positive integer');
  check(Number.isInteger(file.classes) && file.classes > 1, 'classes must be an integer > 1');
  const part = (name: 'train' | 'validation'): TabularData => {
    const p = file[name];
    check(Array.isArray(p?.x) && Array.isArray(p?.y), `${name}.x and ${name}.y must be arrays`);
    check(p.x.length === p.y.length * file.features, `${name}.x has ${p.x.length} values for ${p.y.length} rows`);
    check(
      p.y.every((label) => Number.isInteger(label) && label >= 0 && label < file.classes),
      `${name}.y has a label outside 0..${file.classes - 1}`,
    );
    return { x: Float32Array.from(p.x), y: Int32Array.from(p.y) };
  };
  return { features: file.features, classes: file.classes, train: part('train'), validation: part('validation') };
}
