/**
 * The seed study's hospital export (PRODUCT.md):
 *   train/<class>/image/*.dcm, train/<class>/mark/* (one binary mask per DICOM, same fileStem, PNG or JPEG),
 *   train.csv (file, category, box), test/image/*.dcm (unlabelled; imported only on request).
 * Boxes come from the masks (see mask.ts for the rules); `train.csv` is checked against them and every
 * disagreement is reported with its line. When a mask is missing, the CSV's boxes are used (with a warning).
 * `normal` has no masks: its images are kept with no boxes.
 *
 * train.csv: a file and a category column, and either a box column (`[x, y, w, h]`, `x y w h` or `x;y;w;h`),
 * x/y/width/height columns or corner columns, each under its common names (columns.ts; `--columns` for the
 * rest); the file is the DICOM's name or its path relative to the export root; one row per box, a row with
 * an empty box for an image without boxes.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  boxIou,
  type MaskBoxOptions,
  maskToBoxes,
  readGreyRaster,
  SEED_FINDING_CLASSES,
  SEED_NORMAL_CLASS,
} from '@fedcxr/base';
import { type ColumnRole, resolveLabelColumns, rowBox } from '../columns.js';
import { labelError, parseCsv } from '../csv.js';
import { fileStem, isDirectory, isFile, listFiles, readText } from '../files.js';
import { type DatasetIssue, issueAt, type SourceBox, type SourceDataset, type SourceItem } from '../source.js';

export interface SeedParseOptions extends MaskBoxOptions {
  /** Also import test/image/*.dcm (no labels). Default false. */
  includeTest?: boolean;
  /** Boxes whose IoU with every box of the other source is below this disagree; default 0.5. */
  agreementIou?: number;
  /** train.csv columns not under a common name (`--columns file=…,category=…`). */
  columns?: Partial<Record<ColumnRole, string>>;
}

interface CsvBox {
  box: [number, number, number, number];
  line: number;
  category: string;
}

const MASK_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.bmp', '.tif'];

export async function parseSeed(root: string, options: SeedParseOptions = {}): Promise<SourceDataset> {
  const trainDir = join(root, 'train');
  if (!(await isDirectory(trainDir))) {
    throw labelError(root, undefined, 'not a seed export: no train/ folder (expected train/<class>/image/*.dcm)');
  }
  const issues: DatasetIssue[] = [];
  const csvFile = join(root, 'train.csv');
  const hasCsv = await isFile(csvFile);
  const csvBoxes = new Map<string, CsvBox[]>();
  const csvSeen = new Set<string>();
  if (hasCsv) {
    for (const [key, boxes] of readSeedCsv(await readText(csvFile), csvFile, options.columns)) csvBoxes.set(key, boxes);
  } else {
    issues.push(issueAt('warning', 'missing_file', csvFile, undefined, 'no train.csv: boxes come from the masks only'));
  }

  const folders = (await listDirectories(trainDir)).sort(byClassOrder);
  const categories = folders.filter((name) => name !== SEED_NORMAL_CLASS);
  for (const name of categories) {
    if (!(SEED_FINDING_CLASSES as readonly string[]).includes(name)) {
      issues.push(
        issueAt(
          'warning',
          'unknown_class',
          join(trainDir, name),
          undefined,
          `"${name}" is not one of the seed's classes; imported as its own category`,
        ),
      );
    }
  }
  const agreement = options.agreementIou ?? 0.5;
  const items: SourceItem[] = [];
  for (const category of folders) {
    const imageDir = join(trainDir, category, 'image');
    if (!(await isDirectory(imageDir))) {
      issues.push(issueAt('error', 'missing_file', imageDir, undefined, 'class folder without image/'));
      continue;
    }
    const images = await listFiles(imageDir, (name) => /\.(dcm|dicom)$/i.test(name));
    const markDir = join(trainDir, category, 'mark');
    const masks = new Map<string, string>();
    if (await isDirectory(markDir)) {
      for (const file of await listFiles(markDir, (name) =>
        MASK_EXTENSIONS.some((e) => name.toLowerCase().endsWith(e)),
      )) {
        masks.set(fileStem(file), join(markDir, file));
      }
    }
    for (const file of images) {
      const path = join(imageDir, file);
      const key = csvKey(category, file);
      const fromCsv = csvBoxes.get(key) ?? csvBoxes.get(csvKey('', file)) ?? [];
      csvSeen.add(key);
      csvSeen.add(csvKey('', file));
      for (const row of fromCsv) {
        if (row.category !== category) {
          issues.push(
            issueAt(
              'warning',
              'category_mismatch',
              csvFile,
              row.line,
              `category "${row.category}" but the image is in train/${category}/`,
            ),
          );
        }
      }
      const csvReal = fromCsv.filter((row) => row.box[2] > 0 && row.box[3] > 0);
      if (category === SEED_NORMAL_CLASS) {
        for (const row of csvReal) {
          issues.push(issueAt('warning', 'box_on_normal', csvFile, row.line, 'a box on a normal image; ignored'));
        }
        items.push({ path, boxes: [], labelSource: `train/${category}/image/${file}` });
        continue;
      }
      const maskPath = masks.get(fileStem(file));
      masks.delete(fileStem(file));
      let boxes: SourceBox[];
      let declaredSize: SourceItem['declaredSize'];
      if (maskPath === undefined) {
        if (csvReal.length === 0) {
          issues.push(
            issueAt('error', 'missing_labels', path, undefined, 'no mask in mark/ and no box in train.csv; skipped'),
          );
          continue;
        }
        issues.push(issueAt('warning', 'missing_mask', path, undefined, 'no mask in mark/: using the train.csv boxes'));
        boxes = csvReal.map((row) => ({ category, bbox: row.box }));
      } else {
        let components: [number, number, number, number][];
        try {
          const mask = await readGreyRaster(maskPath);
          declaredSize = { width: mask.width, height: mask.height };
          components = maskToBoxes(mask, options).map((c) => c.bbox);
        } catch (error) {
          issues.push(
            issueAt('error', 'unreadable_mask', maskPath, undefined, `${(error as Error).message}; image skipped`),
          );
          continue;
        }
        if (components.length === 0) {
          issues.push(
            issueAt(
              'error',
              'empty_mask',
              maskPath,
              undefined,
              'mask has no lesion above the threshold and minimum area; image skipped',
            ),
          );
          continue;
        }
        boxes = components.map((bbox) => ({ category, bbox }));
        // Without a train.csv there is nothing to compare with: the missing file was reported once, above.
        if (hasCsv) reportDisagreements(issues, csvFile, maskPath, components, csvReal, agreement);
      }
      const item: SourceItem = { path, boxes, labelSource: maskPath ?? csvFile };
      if (declaredSize) item.declaredSize = declaredSize;
      items.push(item);
    }
    for (const orphan of masks.values()) {
      issues.push(issueAt('warning', 'orphan_mask', orphan, undefined, 'no DICOM with this name in image/'));
    }
  }
  for (const [key, rows] of csvBoxes) {
    if (!csvSeen.has(key)) {
      issues.push(
        issueAt(
          'warning',
          'missing_file',
          csvFile,
          rows[0].line,
          `no image "${key.split('|')[1]}" in train/${rows[0].category}/image/`,
        ),
      );
    }
  }

  if (options.includeTest) {
    const testDir = join(root, 'test', 'image');
    if (await isDirectory(testDir)) {
      for (const file of await listFiles(testDir, (name) => /\.(dcm|dicom)$/i.test(name))) {
        items.push({ path: join(testDir, file), boxes: [], extra: { split: 'test' } });
      }
    }
  }
  return { format: 'seed', root, categories, items, issues };
}

/** Parses train.csv into boxes keyed by `category|file name`; columns under their common names or `columns`. */
export function readSeedCsv(
  text: string,
  file: string,
  overrides: Partial<Record<ColumnRole, string>> = {},
): Map<string, CsvBox[]> {
  const table = parseCsv(text, file);
  const columns = resolveLabelColumns(table.header, file, overrides);
  const out = new Map<string, CsvBox[]>();
  for (const row of table.rows) {
    const name = row.values[columns.file];
    const category = row.values[columns.category];
    if (name === '') throw labelError(file, row.line, `empty file name (column "${columns.file}")`);
    if (category === '') throw labelError(file, row.line, `empty category (column "${columns.category}")`);
    const box = rowBox(row, columns.box, file);
    // Rows may name the file alone or with its path; the category folder disambiguates.
    const base = name.split(/[\\/]/).pop() as string;
    const key = csvKey(base === name ? category : '', base);
    const list = out.get(key) ?? [];
    list.push({ box: box ?? [0, 0, 0, 0], line: row.line, category });
    out.set(key, list);
  }
  return out;
}

function csvKey(category: string, file: string): string {
  return `${category}|${file}`;
}

function reportDisagreements(
  issues: DatasetIssue[],
  csvFile: string,
  maskPath: string,
  fromMask: [number, number, number, number][],
  fromCsv: CsvBox[],
  agreement: number,
): void {
  if (fromCsv.length === 0) {
    issues.push(
      issueAt(
        'warning',
        'mask_csv_mismatch',
        maskPath,
        undefined,
        `mask has ${fromMask.length} box(es), train.csv none`,
      ),
    );
    return;
  }
  const unmatchedMask = new Set(fromMask.map((_, i) => i));
  for (const row of fromCsv) {
    let best = -1;
    let bestIou = 0;
    for (const i of unmatchedMask) {
      const iou = boxIou(row.box, fromMask[i]);
      if (iou > bestIou) {
        bestIou = iou;
        best = i;
      }
    }
    if (best >= 0 && bestIou >= agreement) unmatchedMask.delete(best);
    else {
      issues.push(
        issueAt(
          'warning',
          'mask_csv_mismatch',
          csvFile,
          row.line,
          `box [${row.box.join(', ')}] matches no mask box (best IoU ${bestIou.toFixed(2)}) in ${maskPath}`,
        ),
      );
    }
  }
  for (const i of unmatchedMask) {
    issues.push(
      issueAt(
        'warning',
        'mask_csv_mismatch',
        maskPath,
        undefined,
        `mask box [${fromMask[i].join(', ')}] is not in train.csv`,
      ),
    );
  }
}

async function listDirectories(dir: string): Promise<string[]> {
  return (await readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name);
}

function byClassOrder(a: string, b: string): number {
  const order = [...SEED_FINDING_CLASSES, SEED_NORMAL_CLASS] as string[];
  const ia = order.indexOf(a);
  const ib = order.indexOf(b);
  if (ia >= 0 && ib >= 0) return ia - ib;
  if (ia >= 0) return -1;
  if (ib >= 0) return 1;
  return a.localeCompare(b);
}
