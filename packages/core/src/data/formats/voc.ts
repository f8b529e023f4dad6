/**
 * Pascal VOC: one XML per image, each with `<filename>`, `<size><width><height>` and
 * `<object><name><bndbox><xmin><ymin><xmax><ymax>`. VOC pixel coordinates are 1-based and inclusive, so a box becomes [xmin - 1, ymin - 1, xmax - xmin + 1,
 * ymax - ymin + 1] (the Detectron2 convention). XML files come from `Annotations/`, `annotations/xml/`,
 * `annotations/`, `xml/` or anywhere under the root. Images are looked up beside the XML, at the root, under
 * `JPEGImages/`, `images/`, `imgs/` (recursively; `<filename>` with or without its extension), or at
 * `<path>`. `<size>` is kept as the declared size: when the real image differs, the import scales the boxes
 * and warns. A broken XML file is reported (file, line, column) and skipped.
 */
import { dirname, extname, join, relative } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { fileStem, isDirectory, isFile, listFiles, patientFromName, readText } from '../files.js';
import { type DatasetIssue, issueAt, type SourceBox, type SourceDataset, type SourceItem } from '../source.js';

export interface VocParseOptions {
  /** Category names in id order; default: every name found, sorted. Objects of other names are reported and dropped. */
  classes?: string[];
  /** Regex whose first group, applied to the image's file stem, is the patient id (default: the stem). */
  patientPattern?: RegExp;
}

/** Where VOC exports keep their XML, in order of preference; the root (searched recursively) is the last resort. */
const ANNOTATION_DIRS = ['Annotations', 'annotations/xml', 'annotations', 'xml'];
/** Where VOC exports keep their images (searched recursively), besides the XML's own folder. */
const IMAGE_DIRS = ['JPEGImages', 'images', 'imgs'];
const VOC_IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.dcm', '.dicom', '.bmp', '.tif', '.tiff'];

export async function parseVoc(root: string, options: VocParseOptions = {}): Promise<SourceDataset> {
  let annotationDir = root;
  for (const dir of ANNOTATION_DIRS) {
    if (await isDirectory(join(root, dir))) {
      annotationDir = join(root, dir);
      break;
    }
  }
  const xmlFiles = await listFiles(annotationDir, (name) => name.toLowerCase().endsWith('.xml'));
  const images = await indexImages(root);
  const issues: DatasetIssue[] = [];
  const items: SourceItem[] = [];
  const names = new Set<string>();
  const parser = new XMLParser({ ignoreAttributes: true, parseTagValue: false, isArray: (name) => name === 'object' });
  for (const xmlFile of xmlFiles) {
    const file = join(annotationDir, xmlFile);
    const parsed = parseOne(await readText(file), file, parser, issues);
    if (parsed === null) continue;
    const found = await findImage(images, dirname(file), parsed.filename, parsed.path);
    if (found.path === null) {
      issues.push(
        issueAt(
          'error',
          'missing_file',
          file,
          undefined,
          `image "${parsed.filename}" not found (looked beside the XML and under ${IMAGE_DIRS.map((d) => `${d}/`).join(', ')}${extname(parsed.filename) ? '' : `, with the extensions ${VOC_IMAGE_EXTENSIONS.join(' ')}`}); skipped`,
        ),
      );
      continue;
    }
    const image = found.path;
    if (found.others.length > 0) {
      issues.push(
        issueAt(
          'warning',
          'ambiguous_image',
          file,
          undefined,
          `"${parsed.filename}" matches ${found.others.length + 1} images; using ${relative(root, image)} (also ${found.others.map((o) => relative(root, o)).join(', ')})`,
        ),
      );
    }
    for (const box of parsed.boxes) names.add(box.category);
    items.push({
      path: image,
      patientId: patientFromName(image, options.patientPattern),
      boxes: parsed.boxes,
      declaredSize: parsed.size ?? undefined,
      labelSource: file,
    });
  }
  const categories = options.classes ?? [...names].sort();
  if (options.classes) {
    for (const item of items) {
      const unknown = item.boxes.filter((b) => !categories.includes(b.category));
      for (const box of unknown) {
        issues.push(
          issueAt(
            'warning',
            'unknown_category',
            item.labelSource as string,
            undefined,
            `object "${box.category}" is not in the class list; dropped`,
          ),
        );
      }
      item.boxes = item.boxes.filter((b) => categories.includes(b.category));
    }
  }
  for (const item of items) if (item.declaredSize === undefined) delete item.declaredSize;
  return { format: 'voc', root, categories, items, issues };
}

interface VocRecord {
  filename: string;
  path: string | undefined;
  size: { width: number; height: number } | null;
  boxes: SourceBox[];
}

/** Parses one VOC XML; on any problem records an error issue and returns null (the file is skipped). */
export function parseVocXml(text: string, file: string, issues: DatasetIssue[]): VocRecord | null {
  const parser = new XMLParser({ ignoreAttributes: true, parseTagValue: false, isArray: (name) => name === 'object' });
  return parseOne(text, file, parser, issues);
}

function parseOne(text: string, file: string, parser: XMLParser, issues: DatasetIssue[]): VocRecord | null {
  const valid = XMLValidator.validate(text);
  if (valid !== true) {
    issues.push(
      issueAt(
        'error',
        'invalid_xml',
        file,
        valid.err.line,
        `broken XML (column ${valid.err.col}): ${valid.err.msg}; skipped`,
      ),
    );
    return null;
  }
  const fail = (message: string, item?: string) => {
    issues.push(issueAt('error', 'invalid_voc', file, undefined, `${message}; skipped`, item));
    return null;
  };
  const doc = parser.parse(text) as { annotation?: Record<string, unknown> };
  const annotation = doc.annotation;
  if (typeof annotation !== 'object' || annotation === null) return fail('no <annotation> root element');
  const filename = text0(annotation.filename);
  if (!filename) return fail('no <filename>');
  let size: VocRecord['size'] = null;
  const sizeNode = annotation.size as Record<string, unknown> | undefined;
  if (sizeNode !== undefined) {
    const width = Number(text0(sizeNode.width));
    const height = Number(text0(sizeNode.height));
    if (!(Number.isInteger(width) && width > 0 && Number.isInteger(height) && height > 0)) {
      return fail(
        `<size> must hold positive integer <width> and <height>, got ${text0(sizeNode.width)}x${text0(sizeNode.height)}`,
      );
    }
    size = { width, height };
  }
  const boxes: SourceBox[] = [];
  const objects = (annotation.object as Record<string, unknown>[] | undefined) ?? [];
  for (let i = 0; i < objects.length; i++) {
    const item = `object ${i + 1}`;
    const object = objects[i];
    const name = text0(object?.name);
    if (!name) return fail('no <name>', item);
    const bndbox = object.bndbox as Record<string, unknown> | undefined;
    if (!bndbox) return fail('no <bndbox>', item);
    const [xmin, ymin, xmax, ymax] = ['xmin', 'ymin', 'xmax', 'ymax'].map((k) => Number(text0(bndbox[k])));
    if (![xmin, ymin, xmax, ymax].every(Number.isFinite))
      return fail('<bndbox> needs numeric xmin, ymin, xmax, ymax', item);
    if (!(xmax >= xmin && ymax >= ymin))
      return fail(`empty box (xmin ${xmin}, xmax ${xmax}, ymin ${ymin}, ymax ${ymax})`, item);
    if (xmin < 1 || ymin < 1) return fail(`box starts before pixel 1 (xmin ${xmin}, ymin ${ymin})`, item);
    if (size && (xmax > size.width || ymax > size.height)) {
      return fail(`box ends outside the image (xmax ${xmax}, ymax ${ymax}, size ${size.width}x${size.height})`, item);
    }
    boxes.push({ category: name, bbox: [xmin - 1, ymin - 1, xmax - xmin + 1, ymax - ymin + 1] });
  }
  return { filename, path: text0(annotation.path) || undefined, size, boxes };
}

function text0(value: unknown): string {
  if (typeof value === 'string') return value.trim();
  if (typeof value === 'number') return String(value);
  return '';
}

interface ImageIndex {
  root: string;
  /** Image files under the usual image folders, by lower-case base name and by lower-case stem. */
  byName: Map<string, string[]>;
  byStem: Map<string, string[]>;
}

async function indexImages(root: string): Promise<ImageIndex> {
  const index: ImageIndex = { root, byName: new Map(), byStem: new Map() };
  const add = (map: Map<string, string[]>, key: string, path: string) => {
    const list = map.get(key);
    if (list) list.push(path);
    else map.set(key, [path]);
  };
  for (const dir of IMAGE_DIRS) {
    const base = join(root, dir);
    if (!(await isDirectory(base))) continue;
    const isImage = (name: string) => VOC_IMAGE_EXTENSIONS.includes(extname(name).toLowerCase());
    for (const file of await listFiles(base, isImage)) {
      const path = join(base, file);
      const name = (file.split('/').pop() as string).toLowerCase();
      add(index.byName, name, path);
      add(index.byStem, fileStem(name), path);
    }
  }
  return index;
}

/**
 * The image an XML names: `<filename>` under the image folders, beside the XML or at the root, then, for a
 * name without an image extension, by stem under the image folders (TBX11K writes `tb0003` for
 * `tb0003.png`), then `<path>`. `others` lists further matches, for a warning.
 */
async function findImage(
  index: ImageIndex,
  xmlDir: string,
  filename: string,
  path: string | undefined,
): Promise<{ path: string | null; others: string[] }> {
  const hasImageExtension = VOC_IMAGE_EXTENSIONS.includes(extname(filename).toLowerCase());
  const base = (filename.split(/[\\/]/).pop() as string).toLowerCase();
  const found = (matches: string[] | undefined) =>
    matches && matches.length > 0 ? { path: matches[0], others: matches.slice(1) } : null;
  const byName = found(index.byName.get(base));
  if (byName) return byName;
  const names = hasImageExtension ? [filename] : [filename, ...VOC_IMAGE_EXTENSIONS.map((e) => filename + e)];
  for (const dir of [xmlDir, index.root]) {
    for (const name of names) {
      const candidate = join(dir, name);
      if (await isFile(candidate)) return { path: candidate, others: [] };
    }
  }
  const byStem = hasImageExtension ? null : found(index.byStem.get(base));
  if (byStem) return byStem;
  if (path && (await isFile(path))) return { path, others: [] };
  return { path: null, others: [] };
}
