/**
 * RSNA Pneumonia Detection Challenge labels: `stage_2_train_labels.csv` (patientId,x,y,width,height,Target;
 * one row per box for Target 1, one row with an empty box for Target 0) and, optionally,
 * `stage_2_detailed_class_info.csv` (patientId,class). One category, `lung_opacity`; Target-0 images are
 * negatives (kept, no boxes). Images are `<patientId>.dcm` in `dicom/`, `stage_2_train_images/` or the root.
 */
import { join } from 'node:path';
import { csvNumber, labelError, parseCsv } from '../csv.js';
import { fileStem, isDirectory, isFile, listFiles, readText } from '../files.js';
import { cappedIssues, type DatasetIssue, issueAt as issue, type SourceDataset, type SourceItem } from '../source.js';

export const RSNA_LABELS_FILE = 'stage_2_train_labels.csv';
export const RSNA_CLASS_INFO_FILE = 'stage_2_detailed_class_info.csv';
export const RSNA_CATEGORY = 'lung_opacity';

/** Missing or unlabelled images listed one by one before the rest are summed up in one line. */
const LISTED_MISSING = 20;

export async function parseRsna(root: string): Promise<SourceDataset> {
  const labelsFile = join(root, RSNA_LABELS_FILE);
  const text = await readText(labelsFile);
  const table = parseCsv(text, labelsFile, ['patientId', 'x', 'y', 'width', 'height', 'Target']);
  const issues: DatasetIssue[] = [];
  const byPatient = new Map<string, SourceItem & { target: number; line: number }>();
  for (const row of table.rows) {
    const patientId = row.values.patientId;
    if (patientId === '') throw labelError(labelsFile, row.line, 'empty patientId');
    const target = csvNumber(row, 'Target', labelsFile);
    if (target !== 0 && target !== 1)
      throw labelError(labelsFile, row.line, `Target must be 0 or 1, got "${row.values.Target}"`);
    const numbers = ['x', 'y', 'width', 'height'].map((column) => csvNumber(row, column, labelsFile));
    let item = byPatient.get(patientId);
    if (!item) {
      item = { path: '', patientId, boxes: [], target, line: row.line, labelSource: `${RSNA_LABELS_FILE}:${row.line}` };
      byPatient.set(patientId, item);
    }
    if (target === 0) {
      if (numbers.some((n) => n !== null))
        throw labelError(labelsFile, row.line, 'Target 0 row must have an empty box');
      if (item.target === 1) {
        throw labelError(
          labelsFile,
          row.line,
          `patient ${patientId} is Target 1 on line ${item.line} and Target 0 here`,
        );
      }
      continue;
    }
    if (numbers.some((n) => n === null))
      throw labelError(labelsFile, row.line, 'Target 1 row needs x, y, width and height');
    const [x, y, w, h] = numbers as number[];
    if (!(w > 0 && h > 0)) throw labelError(labelsFile, row.line, `box has zero or negative size (${w}x${h})`);
    if (item.target === 0) {
      throw labelError(labelsFile, row.line, `patient ${patientId} is Target 0 on line ${item.line} and Target 1 here`);
    }
    item.boxes.push({ category: RSNA_CATEGORY, bbox: [x, y, w, h] });
  }

  const infoFile = join(root, RSNA_CLASS_INFO_FILE);
  if (await isFile(infoFile)) {
    const info = parseCsv(await readText(infoFile), infoFile, ['patientId', 'class']);
    for (const row of info.rows) {
      const item = byPatient.get(row.values.patientId);
      if (!item) {
        issues.push(
          issue(
            'warning',
            'unknown_patient',
            infoFile,
            row.line,
            `patient ${row.values.patientId} has no row in ${RSNA_LABELS_FILE}`,
          ),
        );
        continue;
      }
      item.extra = { rsna_class: row.values.class };
      if ((row.values.class === 'Lung Opacity') !== (item.target === 1)) {
        issues.push(
          issue(
            'warning',
            'class_target_mismatch',
            infoFile,
            row.line,
            `class "${row.values.class}" disagrees with Target ${item.target} (${RSNA_LABELS_FILE}:${item.line})`,
          ),
        );
      }
    }
  }

  let imageDir = root;
  for (const candidate of ['dicom', 'stage_2_train_images']) {
    if (await isDirectory(join(root, candidate))) {
      imageDir = join(root, candidate);
      break;
    }
  }
  const files = await listFiles(imageDir, (name) => name.toLowerCase().endsWith('.dcm'));
  const fileByPatient = new Map(files.map((file) => [fileStem(file), file]));
  const items: SourceItem[] = [];
  // The full challenge label file lists ~27k patients; a subset of images is normal, so missing images are
  // listed individually only up to a point, then counted.
  const missing: { patientId: string; line: number }[] = [];
  for (const item of byPatient.values()) {
    const file = fileByPatient.get(item.patientId as string);
    if (file === undefined) {
      missing.push({ patientId: item.patientId as string, line: item.line });
      continue;
    }
    const { target: _target, line: _line, ...rest } = item;
    items.push({ ...rest, path: join(imageDir, file) });
  }
  issues.push(
    ...cappedIssues(
      missing,
      ({ patientId, line }) =>
        issue('warning', 'missing_file', labelsFile, line, `no image ${patientId}.dcm in ${imageDir}`),
      (rest) =>
        issue(
          'warning',
          'missing_file',
          labelsFile,
          undefined,
          `... and ${rest} more labelled patients without an image in ${imageDir}`,
        ),
      LISTED_MISSING,
    ),
    ...cappedIssues(
      [...fileByPatient].filter(([patientId]) => !byPatient.has(patientId)),
      ([, file]) =>
        issue('warning', 'unlabelled_image', join(imageDir, file), undefined, `no row in ${RSNA_LABELS_FILE}; skipped`),
      (rest) =>
        issue(
          'warning',
          'unlabelled_image',
          imageDir,
          undefined,
          `... and ${rest} more images without a row in ${RSNA_LABELS_FILE}; skipped`,
        ),
      LISTED_MISSING,
    ),
  );
  return { format: 'rsna', root, categories: [RSNA_CATEGORY], items, issues };
}
