/**
 * Pascal VOC: one XML per image (`Annotations/*.xml`, or XML files anywhere under the root), each with
 * `<filename>`, `<size><width><height>` and `<object><name><bndbox><xmin><ymin><xmax><ymax>`. VOC pixel
 * coordinates are 1-based and inclusive, so a box becomes [xmin - 1, ymin - 1, xmax - xmin + 1,
 * ymax - ymin + 1] (the Detectron2 convention). Images are looked up in `JPEGImages/`, `images/`, beside
 * the XML, or at `<path>`. `<size>` is kept as the declared size: when the real image differs, the import
 * scales the boxes and warns. A broken XML file is reported (file, line, column) and skipped.
 */
import { dirname, join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { isDirectory, isFile, listFiles, patientFromName, readText } from '../files.js';
import { type DatasetIssue, issueAt, type SourceBox, type SourceDataset, type SourceItem } from '../source.js';

export interface VocParseOptions {
  /** Category names in id order; default: every name found, sorted. Objects of other names are reported and dropped. */
  classes?: string[];
  /** Regex whose first group, applied to the image's file stem, is the patient id (default: the stem). */
  patientPattern?: RegExp;
}

export async function parseVoc(root: string, options: VocParseOptions = {}): Promise<SourceDataset> {
  const annotationDir = (await isDirectory(join(root, 'Annotations'))) ? join(root, 'Annotations') : root;
  const xmlFiles = await listFiles(annotationDir, (name) => name.toLowerCase().endsWith('.xml'));
  const issues: DatasetIssue[] = [];
  const items: SourceItem[] = [];
  const names = new Set<string>();
  const parser = new XMLParser({ ignoreAttributes: true, parseTagValue: false, isArray: (name) => name === 'object' });
  for (const relative of xmlFiles) {
    const file = join(annotationDir, relative);
    const parsed = parseOne(await readText(file), file, parser, issues);
    if (parsed === null) continue;
    const image = await findImage(root, dirname(file), parsed.filename, parsed.path);
    if (image === null) {
      issues.push(issueAt('error', 'missing_file', file, undefined, `image "${parsed.filename}" not found; skipped`));
      continue;
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

async function findImage(
  root: string,
  xmlDir: string,
  filename: string,
  path: string | undefined,
): Promise<string | null> {
  const candidates = [
    join(root, 'JPEGImages', filename),
    join(root, 'images', filename),
    join(xmlDir, filename),
    join(root, filename),
  ];
  if (path) candidates.push(path);
  for (const candidate of candidates) if (await isFile(candidate)) return candidate;
  return null;
}
