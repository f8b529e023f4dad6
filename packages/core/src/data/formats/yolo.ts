/**
 * YOLO (Darknet/Ultralytics): `images/**` with `labels/**` mirroring them (`.txt`, same stem), or labels beside
 * the images; one line per box: `class cx cy w h`, all four normalized to [0, 1] by the image size; a class
 * names file (`classes.txt`, `obj.names`, `names.txt`: one name per line; or `data.yaml` `names:`). An image
 * without a label file (or with an empty one) is a negative. A malformed label file is reported with its line
 * and the image skipped.
 */
import { join } from 'node:path';
import { FedcxrError } from '@fedcxr/base';
import { isDirectory, isFile, isImageFile, listFiles, patientFromName, readText } from '../files.js';
import { type DatasetIssue, issueAt, type SourceBox, type SourceDataset, type SourceItem } from '../source.js';

export interface YoloParseOptions {
  /** The class names file; default: the first of classes.txt, obj.names, names.txt, data.yaml in the root. */
  namesFile?: string;
  patientPattern?: RegExp;
}

/** A box may poke out of [0, 1] by this much (rounding in exporters) before it is an error. */
const NORMALIZED_TOLERANCE = 1e-3;

export async function parseYolo(root: string, options: YoloParseOptions = {}): Promise<SourceDataset> {
  const names = await readNames(root, options.namesFile);
  const hasImagesDir = await isDirectory(join(root, 'images'));
  const imageDir = hasImagesDir ? join(root, 'images') : root;
  const labelDir = hasImagesDir && (await isDirectory(join(root, 'labels'))) ? join(root, 'labels') : imageDir;
  const issues: DatasetIssue[] = [];
  const items: SourceItem[] = [];
  for (const relative of await listFiles(imageDir, isImageFile)) {
    const labelFile = join(labelDir, relative.replace(/\.[^./]+$/, '.txt'));
    const item: SourceItem = {
      path: join(imageDir, relative),
      patientId: patientFromName(relative, options.patientPattern),
      boxes: [],
      normalized: true,
    };
    if (await isFile(labelFile)) {
      const boxes = parseYoloLabels(await readText(labelFile), labelFile, names, issues);
      if (boxes === null) continue;
      item.boxes = boxes;
      item.labelSource = labelFile;
    }
    items.push(item);
  }
  return { format: 'yolo', root, categories: names, items, issues };
}

/** Parses one label file; returns null (after recording an error with its line) when any line is malformed. */
export function parseYoloLabels(
  text: string,
  file: string,
  names: string[],
  issues: DatasetIssue[],
): SourceBox[] | null {
  const boxes: SourceBox[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '' || line.startsWith('#')) continue;
    const fail = (message: string) => {
      issues.push(issueAt('error', 'invalid_yolo', file, i + 1, `${message}; image skipped`));
      return null;
    };
    const fields = line.split(/\s+/);
    if (fields.length !== 5) return fail(`expected 5 fields "class cx cy w h", found ${fields.length}`);
    const numbers = fields.map(Number);
    if (!numbers.every(Number.isFinite)) return fail(`not a number in "${line}"`);
    const [cls, cx, cy, w, h] = numbers;
    if (!Number.isInteger(cls) || cls < 0 || cls >= names.length) {
      return fail(`class ${fields[0]} is not an index into the ${names.length} class names`);
    }
    if (!(w > 0 && h > 0)) return fail(`box has zero or negative size (w ${w}, h ${h})`);
    const x0 = cx - w / 2;
    const y0 = cy - h / 2;
    const t = NORMALIZED_TOLERANCE;
    if (x0 < -t || y0 < -t || cx + w / 2 > 1 + t || cy + h / 2 > 1 + t) {
      return fail(`box reaches outside the image (values must be normalized to [0, 1]): "${line}"`);
    }
    const x = Math.max(0, x0);
    const y = Math.max(0, y0);
    boxes.push({
      category: names[cls],
      bbox: [x, y, Math.min(1, cx + w / 2) - x, Math.min(1, cy + h / 2) - y],
    });
  }
  return boxes;
}

async function readNames(root: string, namesFile: string | undefined): Promise<string[]> {
  const candidates = namesFile
    ? [namesFile]
    : ['classes.txt', 'obj.names', 'names.txt', 'data.yaml'].map((n) => join(root, n));
  for (const file of candidates) {
    if (!(await isFile(file))) continue;
    const text = await readText(file);
    const names = file.endsWith('.yaml') || file.endsWith('.yml') ? yamlNames(text, file) : lines(text);
    if (names.length === 0) throw new FedcxrError('invalid_labels', 'no class names', { file });
    const duplicate = names.find((n, i) => names.indexOf(n) !== i);
    if (duplicate) throw new FedcxrError('invalid_labels', `class name "${duplicate}" appears twice`, { file });
    return names;
  }
  throw new FedcxrError(
    'invalid_labels',
    `no class names file (${namesFile ?? 'classes.txt, obj.names, names.txt or data.yaml'})`,
    {
      file: root,
    },
  );
}

function lines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

/** The `names:` of an Ultralytics data.yaml: an inline list, a block list, or an index mapping. */
function yamlNames(text: string, file: string): string[] {
  const all = text.split(/\r?\n/);
  const start = all.findIndex((l) => /^names\s*:/.test(l));
  if (start < 0) throw new FedcxrError('invalid_labels', 'no "names:" key', { file });
  const unquote = (s: string) => s.trim().replace(/^['"]|['"]$/g, '');
  const inline = all[start].replace(/^names\s*:/, '').trim();
  if (inline.startsWith('[')) {
    if (!inline.endsWith(']'))
      throw new FedcxrError('invalid_labels', `line ${start + 1}: unterminated names list`, { file });
    return inline
      .slice(1, -1)
      .split(',')
      .map(unquote)
      .filter((n) => n !== '');
  }
  const names: string[] = [];
  for (let i = start + 1; i < all.length; i++) {
    const line = all[i];
    if (!/^\s+/.test(line) || line.trim() === '') {
      if (line.trim() === '') continue;
      break;
    }
    const list = /^\s+-\s*(.+)$/.exec(line);
    const mapped = /^\s+(\d+)\s*:\s*(.+)$/.exec(line);
    if (list) names.push(unquote(list[1]));
    else if (mapped) names[Number(mapped[1])] = unquote(mapped[2]);
    else
      throw new FedcxrError('invalid_labels', `line ${i + 1}: cannot read a class name from "${line.trim()}"`, {
        file,
      });
  }
  if (names.some((n) => n === undefined))
    throw new FedcxrError('invalid_labels', 'names mapping skips an index', { file });
  return names;
}
