/**
 * VinDr-CXR (Nguyen et al., 2022), the largest public chest X-ray detection set, as Kaggle and PhysioNet ship
 * it: `train.csv` (or `annotations/annotations_train.csv`) with `image_id,class_name,class_id,rad_id,x_min,
 * y_min,x_max,y_max`, one row per reader's box, and images `train/<image_id>.dicom`. "No finding" rows have
 * empty coordinates: an image only such rows name is a negative. Each training image was read by several
 * radiologists, so the boxes of one class on one image are fused across readers (weighted boxes fusion at
 * `fusionIou`, default 0.4, fusion.ts); `fusion: 'none'` keeps every reader's box with its `rad_id`.
 * Coordinates are pixels of the DICOM, corners exclusive (x_max − x_min is the width).
 */
import { join } from 'node:path';
import { csvNumber, labelError, parseCsv } from '../csv.js';
import { fileStem, isDirectory, isFile, listFiles, readText } from '../files.js';
import { weightedBoxesFusion } from '../fusion.js';
import {
  cappedIssues,
  type DatasetIssue,
  issueAt,
  type SourceBox,
  type SourceDataset,
  type SourceItem,
} from '../source.js';

export const VINDR_NO_FINDING = 'No finding';
export const VINDR_DEFAULT_FUSION_IOU = 0.4;

export interface VindrParseOptions {
  /** How the readers' boxes become labels: weighted boxes fusion (default) or every reader's box. */
  fusion?: 'wbf' | 'none';
  /** IoU above which two readers' boxes of one class are the same finding; default 0.4. */
  fusionIou?: number;
  /** Also import the test split (`annotations/annotations_test.csv` with `test/`), marked `split: test`. */
  includeTest?: boolean;
}

interface ReaderBox {
  category: string;
  classId: number | null;
  rad: string;
  bbox: [number, number, number, number];
  line: number;
}

const LABEL_FILES = ['train.csv', 'annotations/annotations_train.csv'];
const TEST_LABEL_FILE = 'annotations/annotations_test.csv';
const REQUIRED = ['image_id', 'class_name', 'x_min', 'y_min', 'x_max', 'y_max'];

export async function parseVindr(root: string, options: VindrParseOptions = {}): Promise<SourceDataset> {
  const fusion = options.fusion ?? 'wbf';
  const iou = options.fusionIou ?? VINDR_DEFAULT_FUSION_IOU;
  if (fusion !== 'wbf' && fusion !== 'none') {
    throw labelError(root, undefined, `fusion must be "wbf" or "none", got "${String(fusion)}"`);
  }
  if (!(iou > 0 && iou <= 1)) throw labelError(root, undefined, `fusion IoU must be in (0, 1], got ${iou}`);
  let labelsFile: string | undefined;
  for (const candidate of LABEL_FILES) {
    if (await isFile(join(root, candidate))) {
      labelsFile = join(root, candidate);
      break;
    }
  }
  if (labelsFile === undefined) {
    throw labelError(root, undefined, `not a VinDr-CXR export: no ${LABEL_FILES.join(' or ')}`);
  }
  const issues: DatasetIssue[] = [];
  const classIds = new Map<string, number | null>();
  const splits: { labels: string; images: string; split?: string }[] = [{ labels: labelsFile, images: 'train' }];
  if (options.includeTest && (await isFile(join(root, TEST_LABEL_FILE)))) {
    splits.push({ labels: join(root, TEST_LABEL_FILE), images: 'test', split: 'test' });
  }
  const items: SourceItem[] = [];
  let boxesIn = 0;
  let boxesOut = 0;
  for (const split of splits) {
    const byImage = readVindrCsv(await readText(split.labels), split.labels, classIds);
    const imageDir = join(root, split.images);
    const files = (await isDirectory(imageDir))
      ? await listFiles(imageDir, (name) => /\.(dicom|dcm)$/i.test(name))
      : [];
    const fileById = new Map(files.map((file) => [fileStem(file), file]));
    const missing: { id: string; line: number }[] = [];
    for (const [imageId, entry] of byImage) {
      const file = fileById.get(imageId);
      if (file === undefined) {
        missing.push({ id: imageId, line: entry.line });
        continue;
      }
      boxesIn += entry.boxes.length;
      const boxes = fusion === 'none' ? readerBoxes(entry.boxes) : fusedBoxes(entry.boxes, iou);
      boxesOut += boxes.length;
      const item: SourceItem = { path: join(imageDir, file), boxes, labelSource: `${split.labels}:${entry.line}` };
      if (split.split) item.extra = { split: split.split };
      items.push(item);
    }
    issues.push(
      ...cappedIssues(
        missing,
        ({ id, line }) =>
          issueAt('error', 'missing_file', split.labels, line, `no image ${id}.dicom in ${imageDir}; skipped`),
        (rest) =>
          issueAt('error', 'missing_file', split.labels, undefined, `... and ${rest} more images not in ${imageDir}`),
      ),
    );
  }
  // Categories in class_id order (the set's own numbering), then any without an id by name.
  const categories = [...classIds]
    .sort(([a, ia], [b, ib]) => (ia ?? Number.MAX_SAFE_INTEGER) - (ib ?? Number.MAX_SAFE_INTEGER) || a.localeCompare(b))
    .map(([name]) => name);
  const notes = [
    fusion === 'none'
      ? `readers' boxes kept as they are: ${boxesIn} boxes (each with its rad_id)`
      : `weighted boxes fusion at IoU ${iou}: ${boxesIn} readers' boxes in, ${boxesOut} boxes out`,
  ];
  return {
    format: 'vindr',
    root,
    categories,
    items,
    issues,
    notes,
    info: {
      fusion: fusion === 'none' ? 'none' : 'weighted_boxes_fusion',
      fusion_iou: iou,
      boxes_in: boxesIn,
      boxes_out: boxesOut,
    },
  };
}

/** Rows grouped by image: every reader's box, and the line that first named the image. */
export function readVindrCsv(
  text: string,
  file: string,
  classIds: Map<string, number | null> = new Map(),
): Map<string, { line: number; boxes: ReaderBox[] }> {
  const table = parseCsv(text, file, REQUIRED);
  const hasClassId = table.header.includes('class_id');
  const hasRad = table.header.includes('rad_id');
  const out = new Map<string, { line: number; boxes: ReaderBox[] }>();
  for (const row of table.rows) {
    const imageId = row.values.image_id;
    const category = row.values.class_name;
    if (imageId === '') throw labelError(file, row.line, 'empty image_id');
    if (category === '') throw labelError(file, row.line, 'empty class_name');
    const entry = out.get(imageId) ?? { line: row.line, boxes: [] };
    out.set(imageId, entry);
    const corners = ['x_min', 'y_min', 'x_max', 'y_max'].map((column) => csvNumber(row, column, file));
    if (category === VINDR_NO_FINDING) {
      if (corners.some((v) => v !== null))
        throw labelError(file, row.line, `"${VINDR_NO_FINDING}" row must have no box`);
      continue;
    }
    if (corners.some((v) => v === null)) {
      throw labelError(file, row.line, `"${category}" needs x_min, y_min, x_max and y_max`);
    }
    const [x0, y0, x1, y1] = corners as number[];
    if (!(x1 > x0 && y1 > y0)) {
      throw labelError(file, row.line, `empty box (x_min ${x0}, x_max ${x1}, y_min ${y0}, y_max ${y1})`);
    }
    if (x0 < 0 || y0 < 0) throw labelError(file, row.line, `box starts at a negative coordinate (${x0}, ${y0})`);
    const classId = hasClassId ? csvNumber(row, 'class_id', file) : null;
    const known = classIds.get(category);
    if (known !== undefined && classId !== null && known !== null && known !== classId) {
      throw labelError(file, row.line, `class "${category}" has class_id ${classId} here and ${known} before`);
    }
    if (known === undefined || known === null) classIds.set(category, classId);
    entry.boxes.push({
      category,
      classId,
      rad: hasRad ? row.values.rad_id : '',
      bbox: [x0, y0, x1 - x0, y1 - y0],
      line: row.line,
    });
  }
  return out;
}

function readerBoxes(boxes: ReaderBox[]): SourceBox[] {
  return boxes.map((box) => ({
    category: box.category,
    bbox: box.bbox,
    ...(box.rad ? { attributes: { rad_id: box.rad } } : {}),
  }));
}

/** One box per finding: each class's readers' boxes fused; `readers` says how many boxes went into it. */
function fusedBoxes(boxes: ReaderBox[], iou: number): SourceBox[] {
  const byClass = new Map<string, ReaderBox[]>();
  for (const box of boxes) byClass.set(box.category, [...(byClass.get(box.category) ?? []), box]);
  const out: SourceBox[] = [];
  for (const [category, list] of byClass) {
    for (const fused of weightedBoxesFusion(list, iou)) {
      const readers = new Set(fused.members.map((m) => list[m].rad).filter(Boolean));
      out.push({
        category,
        bbox: fused.bbox,
        attributes: { fused_boxes: fused.members.length, ...(readers.size > 0 ? { readers: readers.size } : {}) },
      });
    }
  }
  return out;
}
