/**
 * NIH ChestX-ray14 (Wang et al., 2017) as the NIH and Kaggle ship it: `BBox_List_2017.csv` (`Image Index,
 * Finding Label,Bbox [x,y,w,h]`: the box's header spills over four columns, and rows end in empty cells),
 * `Data_Entry_2017.csv` (`Image Index,Finding Labels,…,Patient ID,…`, labels joined by `|`), and PNGs under
 * `images/` or `images_*\/images/`. Detection labels are the boxed images plus the "No Finding" images as
 * negatives; an image with findings but no box is not a detection label (its findings may be anywhere), so it
 * is left out and counted. `Patient ID` groups the split. Boxes are pixels of the 1024×1024 PNGs.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { csvNumber, labelError, parseCsv } from '../csv.js';
import { isDirectory, isFile, listFiles, readText } from '../files.js';
import { cappedIssues, type DatasetIssue, issueAt, type SourceDataset, type SourceItem } from '../source.js';

export const NIH_BOX_FILE = 'BBox_List_2017.csv';
export const NIH_ENTRY_FILE = 'Data_Entry_2017.csv';
export const NIH_NO_FINDING = 'No Finding';

export interface NihParseOptions {
  /** Regex whose first group, on the file stem, is the patient id when Data_Entry is absent (default `^(\d+)_`). */
  patientPattern?: RegExp;
}

const BOX_COLUMNS = ['bbox_x', 'bbox_y', 'bbox_w', 'bbox_h'];

/** `Bbox [x` `y` `w` `h]` (or one quoted `Bbox [x,y,w,h]`) become four named columns. */
function boxHeader(names: string[]): string[] {
  const at = names.findIndex((name) => /^bbox/i.test(name.trim()));
  if (at < 0) return names;
  const spans = names[at].includes(',') ? 1 : 4;
  return [...names.slice(0, at), ...BOX_COLUMNS, ...names.slice(at + spans)];
}

export async function parseNih(root: string, options: NihParseOptions = {}): Promise<SourceDataset> {
  const boxFile = join(root, NIH_BOX_FILE);
  if (!(await isFile(boxFile))) {
    throw labelError(root, undefined, `not an NIH ChestX-ray14 export: no ${NIH_BOX_FILE}`);
  }
  const issues: DatasetIssue[] = [];
  const boxTable = parseCsv(await readText(boxFile), boxFile, ['Image Index', 'Finding Label', ...BOX_COLUMNS], {
    trailingEmpty: true,
    header: boxHeader,
  });
  const boxed = new Map<string, { line: number; boxes: SourceItem['boxes'] }>();
  const names = new Set<string>();
  for (const row of boxTable.rows) {
    const image = row.values['Image Index'];
    const category = row.values['Finding Label'];
    if (image === '') throw labelError(boxFile, row.line, 'empty Image Index');
    if (category === '') throw labelError(boxFile, row.line, 'empty Finding Label');
    const numbers = BOX_COLUMNS.map((column) => csvNumber(row, column, boxFile));
    if (numbers.some((n) => n === null)) throw labelError(boxFile, row.line, 'box needs x, y, w and h');
    const [x, y, w, h] = numbers as number[];
    if (!(w > 0 && h > 0)) throw labelError(boxFile, row.line, `box has zero or negative size (${w}x${h})`);
    if (x < 0 || y < 0) throw labelError(boxFile, row.line, `box starts at a negative coordinate (${x}, ${y})`);
    const entry = boxed.get(image) ?? { line: row.line, boxes: [] };
    entry.boxes.push({ category, bbox: [x, y, w, h] });
    boxed.set(image, entry);
    names.add(category);
  }

  const entryFile = join(root, NIH_ENTRY_FILE);
  const entries = new Map<string, { labels: string[]; patient: string; line: number }>();
  if (await isFile(entryFile)) {
    const table = parseCsv(await readText(entryFile), entryFile, ['Image Index', 'Finding Labels', 'Patient ID'], {
      trailingEmpty: true,
    });
    for (const row of table.rows) {
      const image = row.values['Image Index'];
      if (image === '') throw labelError(entryFile, row.line, 'empty Image Index');
      const patient = row.values['Patient ID'];
      if (patient === '') throw labelError(entryFile, row.line, 'empty Patient ID');
      const labels = row.values['Finding Labels']
        .split('|')
        .map((s) => s.trim())
        .filter(Boolean);
      if (labels.length === 0) throw labelError(entryFile, row.line, 'empty Finding Labels (write "No Finding")');
      entries.set(image, { labels, patient, line: row.line });
    }
  } else {
    issues.push(
      issueAt(
        'warning',
        'missing_file',
        entryFile,
        undefined,
        'no Data_Entry_2017.csv: no negatives, and patient ids come from the file names',
      ),
    );
  }

  const images = await indexNihImages(root);
  const patientPattern = options.patientPattern ?? /^(\d+)_/;
  const patientOf = (image: string) => {
    const entry = entries.get(image);
    if (entry) return entry.patient;
    const match = patientPattern.exec(image.replace(/\.[^.]+$/, ''));
    return match ? (match[1] ?? match[0]) : image.replace(/\.[^.]+$/, '');
  };
  const items: SourceItem[] = [];
  const missingBoxed: { image: string; line: number }[] = [];
  for (const [image, entry] of boxed) {
    const path = images.get(image);
    if (path === undefined) {
      missingBoxed.push({ image, line: entry.line });
      continue;
    }
    const listed = entries.get(image);
    if (listed?.labels.includes(NIH_NO_FINDING)) {
      issues.push(
        issueAt(
          'warning',
          'label_conflict',
          boxFile,
          entry.line,
          `${image} has boxes but is "${NIH_NO_FINDING}" in ${NIH_ENTRY_FILE}:${listed.line}; boxes kept`,
        ),
      );
    }
    items.push({ path, patientId: patientOf(image), boxes: entry.boxes, labelSource: `${NIH_BOX_FILE}:${entry.line}` });
  }
  issues.push(
    ...cappedIssues(
      missingBoxed,
      ({ image, line }) => issueAt('error', 'missing_file', boxFile, line, `no image ${image} under images/; skipped`),
      (rest) => issueAt('error', 'missing_file', boxFile, undefined, `... and ${rest} more boxed images not found`),
    ),
  );
  const boxedItems = items.length;
  const boxCount = items.reduce((sum, item) => sum + item.boxes.length, 0);
  let negativesAbsent = 0;
  let unboxedFindings = 0;
  let negatives = 0;
  for (const [image, entry] of entries) {
    if (boxed.has(image)) continue;
    if (entry.labels.length === 1 && entry.labels[0] === NIH_NO_FINDING) {
      const path = images.get(image);
      if (path === undefined) negativesAbsent++;
      else {
        negatives++;
        items.push({ path, patientId: entry.patient, boxes: [], labelSource: `${NIH_ENTRY_FILE}:${entry.line}` });
      }
    } else unboxedFindings++;
  }
  const notes = [
    `${boxedItems} images with boxes (${boxCount} boxes), ${negatives} "${NIH_NO_FINDING}" images as negatives`,
  ];
  if (unboxedFindings > 0) {
    notes.push(`${unboxedFindings} images with findings but no box: not detection labels, left out`);
  }
  if (negativesAbsent > 0) notes.push(`${negativesAbsent} "${NIH_NO_FINDING}" images listed but not present: left out`);
  return {
    format: 'nih',
    root,
    // Every class the label file names, whether or not its images are here: sites that downloaded different
    // parts of the set still agree on the class list.
    categories: [...names].sort(),
    items,
    issues,
    notes,
    info: { excluded_findings_without_box: unboxedFindings, negatives, negatives_absent: negativesAbsent },
  };
}

/** PNGs by base name, from `images/` and every `images_*\/images/` (Kaggle splits the set into twelve folders). */
async function indexNihImages(root: string): Promise<Map<string, string>> {
  const dirs: string[] = [];
  if (await isDirectory(join(root, 'images'))) dirs.push(join(root, 'images'));
  for (const entry of (await readdir(root, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.isDirectory() && /^images_/i.test(entry.name) && (await isDirectory(join(root, entry.name, 'images')))) {
      dirs.push(join(root, entry.name, 'images'));
    }
  }
  const index = new Map<string, string>();
  for (const dir of dirs) {
    for (const file of await listFiles(dir, (name) => name.toLowerCase().endsWith('.png'))) {
      const name = file.split('/').pop() as string;
      if (!index.has(name)) index.set(name, join(dir, file));
    }
  }
  return index;
}
