/**
 * Label-CSV columns under the names hospitals actually use. A table's header is matched against the common
 * names of each role (file, category, a box column or coordinate columns); `--columns role=name,…` names the
 * rest. Matching ignores case, spaces, `_`, `-` and `.`, so `Image Index`, `image_id` and `ImageID` are one name.
 */
import { type CsvRow, csvNumber, labelError } from './csv.js';

/** What a label column means. Coordinates are either x/y/width/height or two corners. */
export type ColumnRole =
  | 'file'
  | 'category'
  | 'box'
  | 'x'
  | 'y'
  | 'width'
  | 'height'
  | 'xmin'
  | 'ymin'
  | 'xmax'
  | 'ymax';

export const COLUMN_ROLES: readonly ColumnRole[] = [
  'file',
  'category',
  'box',
  'x',
  'y',
  'width',
  'height',
  'xmin',
  'ymin',
  'xmax',
  'ymax',
];

/** Common names of each role, in order of preference (already in the normalized spelling). */
const COLUMN_ALIASES: Record<ColumnRole, readonly string[]> = {
  file: ['file', 'filename', 'image', 'imageid', 'imagename', 'imageindex', 'path', 'imagepath', 'filepath', 'dicom'],
  category: ['category', 'class', 'label', 'finding', 'classname', 'findinglabel', 'categoryname'],
  box: ['box', 'bbox', 'boundingbox'],
  x: ['x', 'left'],
  y: ['y', 'top'],
  width: ['width', 'w'],
  height: ['height', 'h'],
  xmin: ['xmin', 'x1', 'left'],
  ymin: ['ymin', 'y1', 'top'],
  xmax: ['xmax', 'x2', 'right'],
  ymax: ['ymax', 'y2', 'bottom'],
};

/** How a row's box is spelled: one text column, x/y/width/height, or two corners. */
export type BoxColumns =
  | { kind: 'text'; box: string }
  | { kind: 'xywh'; x: string; y: string; width: string; height: string }
  | { kind: 'corners'; xmin: string; ymin: string; xmax: string; ymax: string };

export interface LabelColumns {
  file: string;
  category: string;
  box: BoxColumns;
}

/** Lower case without spaces, `_`, `-` or `.`: the spelling names are compared in. */
export function normalizeColumnName(name: string): string {
  return name.toLowerCase().replace(/[\s_.\-[\]]+/g, '');
}

/**
 * Parses `role=column,role=column` (`--columns`). Unknown roles and empty names are errors that list the roles.
 */
export function parseColumnOverrides(text: string): Partial<Record<ColumnRole, string>> {
  const overrides: Partial<Record<ColumnRole, string>> = {};
  for (const part of text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const eq = part.indexOf('=');
    const role = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    const column = eq < 0 ? '' : part.slice(eq + 1).trim();
    const canonical = role === 'w' ? 'width' : role === 'h' ? 'height' : role === 'class' ? 'category' : role;
    if (!(COLUMN_ROLES as readonly string[]).includes(canonical)) {
      throw labelError('--columns', undefined, `unknown role "${role}" (roles: ${COLUMN_ROLES.join(', ')})`);
    }
    if (column === '') throw labelError('--columns', undefined, `"${part}" names no column (write ${role}=<column>)`);
    overrides[canonical as ColumnRole] = column;
  }
  return overrides;
}

/**
 * Finds each role's column in `header`. Overrides name a column exactly (or in the normalized spelling);
 * otherwise the first alias present wins. A header without a file, a category or a complete box spelling
 * is an error that lists what was found and what is accepted.
 */
export function resolveLabelColumns(
  header: readonly string[],
  file: string,
  overrides: Partial<Record<ColumnRole, string>> = {},
): LabelColumns {
  const byNormal = new Map<string, string>();
  for (const name of header)
    if (!byNormal.has(normalizeColumnName(name))) byNormal.set(normalizeColumnName(name), name);
  const find = (role: ColumnRole): string | undefined => {
    const wanted = overrides[role];
    if (wanted !== undefined) {
      const hit = header.includes(wanted) ? wanted : byNormal.get(normalizeColumnName(wanted));
      if (hit === undefined) {
        throw labelError(file, 1, `--columns ${role}=${wanted}: no such column; header is "${header.join(',')}"`);
      }
      return hit;
    }
    for (const alias of COLUMN_ALIASES[role]) {
      const hit = byNormal.get(alias);
      if (hit !== undefined) return hit;
    }
    return undefined;
  };
  const fileColumn = find('file');
  const categoryColumn = find('category');
  const box = resolveBox(find);
  const missing: string[] = [];
  if (fileColumn === undefined) missing.push(`a file column (${COLUMN_ALIASES.file.join(' / ')})`);
  if (categoryColumn === undefined) missing.push(`a category column (${COLUMN_ALIASES.category.join(' / ')})`);
  if (box === undefined) {
    missing.push(
      'a box: a "box"/"bbox" column ([x, y, w, h]), or x, y, width|w, height|h, or xmin, ymin, xmax, ymax (also x_min…, x1, y1, x2, y2)',
    );
  }
  if (missing.length > 0 || fileColumn === undefined || categoryColumn === undefined || box === undefined) {
    throw labelError(
      file,
      1,
      `unrecognised header "${header.join(',')}": needs ${missing.join('; ')}. Name other columns with --columns file=…,category=…,x=…,y=…,width=…,height=… (or xmin=…,ymin=…,xmax=…,ymax=…, or box=…)`,
    );
  }
  return { file: fileColumn, category: categoryColumn, box };
}

function resolveBox(find: (role: ColumnRole) => string | undefined): BoxColumns | undefined {
  const text = find('box');
  const xmin = find('xmin');
  const ymin = find('ymin');
  const xmax = find('xmax');
  const ymax = find('ymax');
  const width = find('width');
  const height = find('height');
  // Corners win when both far corners are there; otherwise a left/top with a size (xmin + width counts too).
  if (xmin && ymin && xmax && ymax) return { kind: 'corners', xmin, ymin, xmax, ymax };
  const x = find('x') ?? xmin;
  const y = find('y') ?? ymin;
  if (x && y && width && height) return { kind: 'xywh', x, y, width, height };
  if (text) return { kind: 'text', box: text };
  return undefined;
}

/**
 * The row's box as [x, y, width, height], or null when the row has no box (an image without findings).
 * Checks the size is positive and the corner is not negative, naming file and line.
 */
export function rowBox(row: CsvRow, columns: BoxColumns, file: string): [number, number, number, number] | null {
  let box: [number, number, number, number] | null;
  if (columns.kind === 'text') box = parseBoxText(row, columns.box, file);
  else {
    const names =
      columns.kind === 'xywh'
        ? [columns.x, columns.y, columns.width, columns.height]
        : [columns.xmin, columns.ymin, columns.xmax, columns.ymax];
    const numbers = names.map((c) => csvNumber(row, c, file));
    if (numbers.every((n) => n === null)) return null;
    if (numbers.some((n) => n === null)) {
      throw labelError(file, row.line, `box needs all of ${names.join(', ')}`);
    }
    const [a, b, c, d] = numbers as number[];
    box = columns.kind === 'xywh' ? [a, b, c, d] : [a, b, c - a, d - b];
  }
  if (box === null) return null;
  if (!(box[2] > 0 && box[3] > 0)) {
    throw labelError(file, row.line, `box has zero or negative size (${box[2]}x${box[3]})`);
  }
  if (box[0] < 0 || box[1] < 0) {
    throw labelError(file, row.line, `box starts at a negative coordinate (${box[0]}, ${box[1]})`);
  }
  return box;
}

function parseBoxText(row: CsvRow, column: string, file: string): [number, number, number, number] | null {
  const raw = (row.values[column] ?? '').trim();
  if (raw === '' || raw === '[]') return null;
  const parts = raw
    .replace(/^[[(]|[\])]$/g, '')
    .split(/[\s,;]+/)
    .filter((p) => p !== '');
  const numbers = parts.map(Number);
  if (numbers.length !== 4 || !numbers.every(Number.isFinite)) {
    throw labelError(file, row.line, `${column} must be 4 numbers [x, y, width, height], got "${raw}"`);
  }
  return numbers as [number, number, number, number];
}
