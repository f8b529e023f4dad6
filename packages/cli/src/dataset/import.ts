/**
 * `dataset import`: any supported format → normalized PNG images plus one COCO `annotations.json`.
 * This is where DICOM reading (@fedcxr/dicom) meets the format parsers (@fedcxr/core), which is why it
 * lives in the CLI package: core must not depend on dicom.
 *
 * For every item: read the image (DICOM: decode, then the normalization preset; PNG/JPEG: grey, scaled to
 * [0, 1]); bring its boxes into the image's own pixels (YOLO fractions × size; labels drawn on a different
 * size — VOC <size>, COCO width/height, seed masks — scaled, with a warning); clip them to the image; resize
 * (longer side = `size`, aspect kept) and map the boxes with the same transform; write the PNG atomically.
 * A file that fails is reported and skipped; the batch goes on. Images without boxes (negatives) are kept.
 */
import { basename, dirname, join, relative } from 'node:path';
import {
  type CocoAnnotation,
  type CocoDataset,
  type CocoImage,
  type DatasetFormat,
  type DatasetIssue,
  FedcxrError,
  issueAt,
  type ParseSourceOptions,
  parseDatasetSource,
  readGreyRaster,
  type SourceItem,
  stem,
  VERSION,
  writeFileAtomic,
  writeJsonAtomic,
} from '@fedcxr/core';
import {
  boxToResized,
  encodeGrey,
  type NormalizedImage,
  normalize,
  type PresetName,
  readDicom,
  resizeKeepAspect,
} from '@fedcxr/dicom';

export interface ImportOptions {
  format: DatasetFormat;
  /** Export folder (seed, rsna, voc, yolo) or the COCO JSON file. */
  src: string;
  /** Output folder: annotations.json and images/. */
  out: string;
  /** DICOM normalization preset; default `seed` for the seed format, `window` otherwise. */
  preset?: PresetName;
  /** Longer side of the written images in pixels (aspect kept); default: original size. */
  size?: number;
  /** Pad resized images to size × size (bottom/right). Default false. */
  letterbox?: boolean;
  /** 8-bit (`png`, default) or 16-bit (`png16`) PNG. */
  imageFormat?: 'png' | 'png16';
  /** Format parser options (mask threshold/min area, includeTest, patientPattern, namesFile, imagesDir, classes). */
  parse?: ParseSourceOptions;
  onProgress?: (done: number, total: number, file: string) => void;
}

export interface ImportSummary {
  annotationsFile: string;
  images: number;
  annotations: number;
  negatives: number;
  patients: number;
  categories: { id: number; name: string; boxes: number }[];
  /** Files that could not be imported (reported, not fatal). */
  skipped: { file: string; message: string }[];
  /** Everything the parser and the import noticed, with locations. */
  issues: DatasetIssue[];
  seconds: number;
}

/** Relative tolerance before a box reaching past the image edge is worth a warning (it is clipped anyway). */
const CLIP_WARN_PIXELS = 1;

export async function importDataset(options: ImportOptions): Promise<ImportSummary> {
  const started = performance.now();
  if (options.size !== undefined && !(Number.isInteger(options.size) && options.size >= 16)) {
    throw new FedcxrError('usage', `--size must be an integer ≥ 16, got ${options.size}`);
  }
  const preset: PresetName = options.preset ?? (options.format === 'seed' ? 'seed' : 'window');
  const source = await parseDatasetSource(options.format, options.src, options.parse ?? {});
  const sourceRoot = options.format === 'coco' ? dirname(options.src) : options.src;
  const issues = [...source.issues];
  const categories = source.categories.map((name, i) => ({ id: i + 1, name, supercategory: 'finding' }));
  const categoryId = new Map(categories.map((c) => [c.name, c.id]));
  const images: CocoImage[] = [];
  const annotations: CocoAnnotation[] = [];
  const skipped: ImportSummary['skipped'] = [];
  const usedNames = new Set<string>();
  const total = source.items.length;

  for (let index = 0; index < total; index++) {
    const item = source.items[index];
    try {
      const loaded = await loadImage(item.path, preset);
      const boxes = sourceBoxes(item, loaded.image.width, loaded.image.height, issues);
      const resized = options.size
        ? resizeKeepAspect(loaded.image, options.size, { letterbox: options.letterbox ?? false })
        : null;
      const out = resized ?? loaded.image;
      const fileName = uniqueName(usedNames, `images/${stem(item.path)}.png`);
      await writeFileAtomic(
        join(options.out, fileName),
        encodeGrey(out.data, out.width, out.height, options.imageFormat ?? 'png'),
      );
      const id = images.length + 1;
      const patientId = item.patientId ?? loaded.patientId ?? stem(item.path);
      images.push({
        id,
        file_name: fileName,
        width: out.width,
        height: out.height,
        patient_id: patientId,
        source_path: relative(sourceRoot, item.path),
        original_width: loaded.image.width,
        original_height: loaded.image.height,
        ...(item.extra ?? {}),
      });
      for (const box of boxes) {
        const mapped = resized ? boxToResized(box.bbox, resized.transform) : box.bbox;
        const bbox = mapped.map(round3) as [number, number, number, number];
        annotations.push({
          id: annotations.length + 1,
          image_id: id,
          category_id: categoryId.get(box.category) as number,
          bbox,
          area: round3(bbox[2] * bbox[3]),
          iscrowd: 0,
        });
      }
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      skipped.push({ file: item.path, message });
      issues.push(
        issueAt('error', 'import_failed', item.path, undefined, `${message.replace(`${item.path}: `, '')}; skipped`),
      );
    }
    options.onProgress?.(index + 1, total, item.path);
  }

  const dataset: CocoDataset = {
    info: {
      description: `fedcxr dataset import (${options.format})`,
      fedcxr_version: VERSION,
      format: options.format,
      source: basename(options.src),
      preset,
      size: options.size ?? null,
      letterbox: options.letterbox ?? false,
    },
    images,
    annotations,
    categories,
  };
  const annotationsFile = join(options.out, 'annotations.json');
  await writeJsonAtomic(annotationsFile, dataset);
  const boxesPerCategory = new Map<number, number>();
  for (const a of annotations) boxesPerCategory.set(a.category_id, (boxesPerCategory.get(a.category_id) ?? 0) + 1);
  const withBoxes = new Set(annotations.map((a) => a.image_id));
  return {
    annotationsFile,
    images: images.length,
    annotations: annotations.length,
    negatives: images.filter((image) => !withBoxes.has(image.id)).length,
    patients: new Set(images.map((image) => image.patient_id)).size,
    categories: categories.map((c) => ({ id: c.id, name: c.name, boxes: boxesPerCategory.get(c.id) ?? 0 })),
    skipped,
    issues,
    seconds: (performance.now() - started) / 1000,
  };
}

interface LoadedImage {
  image: NormalizedImage;
  patientId: string | undefined;
}

async function loadImage(path: string, preset: PresetName): Promise<LoadedImage> {
  if (/\.(dcm|dicom|dic)$/i.test(path)) {
    const dicom = await readDicom(path);
    return { image: normalize(dicom, preset), patientId: dicom.header.patientId ?? undefined };
  }
  const raster = await readGreyRaster(path);
  const scale = raster.bitDepth === 16 ? 65535 : 255;
  const data = new Float32Array(raster.data.length);
  for (let i = 0; i < data.length; i++) data[i] = raster.data[i] / scale;
  return { image: { data, width: raster.width, height: raster.height }, patientId: undefined };
}

/** The item's boxes in the real image's pixels, clipped to it; empty ones dropped (with a warning). */
function sourceBoxes(item: SourceItem, width: number, height: number, issues: DatasetIssue[]): SourceItem['boxes'] {
  const where = item.labelSource ?? item.path;
  let sx = 1;
  let sy = 1;
  if (item.normalized) {
    sx = width;
    sy = height;
  } else if (item.declaredSize && (item.declaredSize.width !== width || item.declaredSize.height !== height)) {
    sx = width / item.declaredSize.width;
    sy = height / item.declaredSize.height;
    issues.push(
      issueAt(
        'warning',
        'size_mismatch',
        where,
        undefined,
        `labels are for ${item.declaredSize.width}x${item.declaredSize.height} but ${basename(item.path)} is ${width}x${height}: boxes scaled`,
      ),
    );
  }
  const out: SourceItem['boxes'] = [];
  for (const box of item.boxes) {
    const [x, y, w, h] = box.bbox;
    const x0 = Math.max(0, x * sx);
    const y0 = Math.max(0, y * sy);
    const x1 = Math.min(width, (x + w) * sx);
    const y1 = Math.min(height, (y + h) * sy);
    const reach = Math.max(-x * sx, -y * sy, (x + w) * sx - width, (y + h) * sy - height);
    if (x1 - x0 <= 0 || y1 - y0 <= 0) {
      issues.push(
        issueAt(
          'warning',
          'box_outside_image',
          where,
          undefined,
          `box [${box.bbox.join(', ')}] lies outside the ${width}x${height} image; dropped`,
        ),
      );
      continue;
    }
    if (reach > CLIP_WARN_PIXELS) {
      issues.push(
        issueAt(
          'warning',
          'box_clipped',
          where,
          undefined,
          `box [${box.bbox.join(', ')}] reaches ${reach.toFixed(1)} px past the ${width}x${height} image; clipped`,
        ),
      );
    }
    out.push({ category: box.category, bbox: [x0, y0, x1 - x0, y1 - y0] });
  }
  return out;
}

function uniqueName(used: Set<string>, wanted: string): string {
  let name = wanted;
  for (let n = 2; used.has(name); n++) name = wanted.replace(/\.png$/, `_${n}.png`);
  used.add(name);
  return name;
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}
