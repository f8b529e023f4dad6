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
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import {
  type CocoAnnotation,
  type CocoDataset,
  type CocoImage,
  type DatasetFormat,
  type DatasetIssue,
  FedcxrError,
  fileStem,
  issueAt,
  type ParseSourceOptions,
  parseDatasetSource,
  readGreyRaster,
  type SourceBox,
  type SourceItem,
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
  /** png (8-bit), png16, or jpeg (8-bit, quality 95: a compact copy to carry, e.g. to a GPU machine). */
  imageFormat?: 'png' | 'png16' | 'jpeg';
  /** JPEG quality, 1–100 (default 95). */
  jpegQuality?: number;
  /** Format parser options (mask threshold/min area, includeTest, patientPattern, namesFile, imagesDir, classes). */
  parse?: ParseSourceOptions;
  /** Worker threads; default: available cores (at most 8); 0 or 1 converts in this thread. */
  workers?: number;
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
  /** What the parser did that is worth a line (a fusion's boxes in and out, images left out and why). */
  notes: string[];
  /** Worker threads used (0: all in this thread). */
  workers: number;
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

  // Output names are fixed before any work starts, so ids and names do not depend on completion order.
  const jobs: ConvertJob[] = source.items.map((item, index) => ({
    index,
    item,
    settings: {
      preset,
      size: options.size,
      letterbox: options.letterbox ?? false,
      imageFormat: options.imageFormat ?? 'png',
      jpegQuality: options.jpegQuality ?? 95,
      outFile: join(
        options.out,
        uniqueName(usedNames, `images/${fileStem(item.path)}.${options.imageFormat === 'jpeg' ? 'jpg' : 'png'}`),
      ),
    },
  }));
  const { results, workers } = await convertAll(jobs, options.workers, (done, job) =>
    options.onProgress?.(done, total, job.item.path),
  );
  for (const job of jobs) {
    const result = results[job.index];
    const item = job.item;
    if (!result.ok) {
      skipped.push({ file: item.path, message: result.message });
      issues.push(
        issueAt(
          'error',
          'import_failed',
          item.path,
          undefined,
          `${result.message.replace(`${item.path}: `, '')}; skipped`,
        ),
      );
      continue;
    }
    const converted = result.converted;
    issues.push(...converted.issues);
    const id = images.length + 1;
    images.push({
      id,
      file_name: relative(options.out, job.settings.outFile).split('\\').join('/'),
      width: converted.width,
      height: converted.height,
      patient_id: item.patientId ?? converted.patientId ?? fileStem(item.path),
      source_path: relative(sourceRoot, item.path),
      original_width: converted.originalWidth,
      original_height: converted.originalHeight,
      ...(item.extra ?? {}),
    });
    for (const box of converted.boxes) {
      annotations.push({
        id: annotations.length + 1,
        image_id: id,
        category_id: categoryId.get(box.category) as number,
        bbox: box.bbox,
        area: round3(box.bbox[2] * box.bbox[3]),
        iscrowd: 0,
        ...(box.attributes ?? {}),
      });
    }
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
      ...(source.info ?? {}),
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
    notes: source.notes ?? [],
    workers,
    seconds: (performance.now() - started) / 1000,
  };
}

/** What one worker (or the main thread) does for one item. Plain data in and out: it crosses threads. */
export interface ConvertSettings {
  preset: PresetName;
  size: number | undefined;
  letterbox: boolean;
  imageFormat: 'png' | 'png16' | 'jpeg';
  /** JPEG quality (1–100) when imageFormat is jpeg; default 95. */
  jpegQuality?: number;
  outFile: string;
}

export interface ConvertJob {
  index: number;
  item: SourceItem;
  settings: ConvertSettings;
}

export interface ConvertedItem {
  width: number;
  height: number;
  originalWidth: number;
  originalHeight: number;
  patientId: string | undefined;
  /** In the written image's pixels, rounded to 1/1000 px. */
  boxes: SourceBox[];
  issues: DatasetIssue[];
}

export type ConvertResult = { ok: true; converted: ConvertedItem } | { ok: false; message: string };

/** Read → normalize → boxes into real pixels → resize (boxes too) → write PNG. */
export async function convertItem(item: SourceItem, settings: ConvertSettings): Promise<ConvertedItem> {
  const loaded = await loadImage(item.path, settings.preset);
  const issues: DatasetIssue[] = [];
  const boxes = sourceBoxes(item, loaded.image.width, loaded.image.height, issues);
  const resized = settings.size
    ? resizeKeepAspect(loaded.image, settings.size, { letterbox: settings.letterbox })
    : null;
  const out = resized ?? loaded.image;
  await writeFileAtomic(
    settings.outFile,
    encodeGrey(out.data, out.width, out.height, settings.imageFormat, settings.jpegQuality),
  );
  return {
    width: out.width,
    height: out.height,
    originalWidth: loaded.image.width,
    originalHeight: loaded.image.height,
    patientId: loaded.patientId,
    boxes: boxes.map((box) => ({
      ...box,
      bbox: (resized ? boxToResized(box.bbox, resized.transform) : box.bbox).map(round3) as [
        number,
        number,
        number,
        number,
      ],
    })),
    issues,
  };
}

/** Below this many items (unless workers are asked for) all runs in this thread: starting workers costs more. */
const MIN_ITEMS_FOR_WORKERS = 64;

/** Converts every job, in worker threads when worth it; results in job order. Exported for tests. */
export async function convertAll(
  jobs: ConvertJob[],
  workers: number | undefined,
  onDone: (done: number, job: ConvertJob) => void,
  script: { url: URL; execArgv: string[] } | null = workerScript(),
): Promise<{ results: ConvertResult[]; workers: number }> {
  const results: ConvertResult[] = new Array(jobs.length);
  let done = 0;
  const record = (job: ConvertJob, result: ConvertResult) => {
    results[job.index] = result;
    onDone(++done, job);
  };
  const inThread = async (job: ConvertJob): Promise<ConvertResult> => {
    try {
      return { ok: true, converted: await convertItem(job.item, job.settings) };
    } catch (error) {
      return { ok: false, message: error instanceof Error ? error.message : String(error) };
    }
  };
  const count = Math.min(workers ?? Math.min(8, availableParallelism()), Math.ceil(jobs.length / 4));
  if (script === null || count < 2 || (workers === undefined && jobs.length < MIN_ITEMS_FOR_WORKERS)) {
    for (const job of jobs) record(job, await inThread(job));
    return { results, workers: 0 };
  }
  let next = 0;
  const runWorker = (): Promise<void> =>
    new Promise((resolve) => {
      const worker = new Worker(script.url, { execArgv: script.execArgv });
      let current: ConvertJob | null = null;
      let answered = false;
      const feed = () => {
        current = next < jobs.length ? jobs[next++] : null;
        if (current === null) {
          void worker.terminate().then(() => resolve());
          return;
        }
        worker.postMessage(current);
      };
      worker.on('message', (result: ConvertResult) => {
        answered = true;
        if (current) record(current, result);
        feed();
      });
      worker.on('error', async (error) => {
        const failed = current;
        current = null;
        void worker.terminate();
        if (!answered) {
          // The worker never started working (no resolver, a missing build file): this share runs here.
          for (let job = failed; job !== null; job = next < jobs.length ? jobs[next++] : null)
            record(job, await inThread(job));
          resolve();
          return;
        }
        // The thread died mid-item (a decoder crashed it): fail that item, a fresh worker takes the rest.
        if (failed) record(failed, { ok: false, message: `${failed.item.path}: worker failed: ${error.message}` });
        runWorker().then(resolve);
      });
      feed();
    });
  await Promise.all(Array.from({ length: count }, runWorker));
  return { results, workers: count };
}

/**
 * The worker entry: built beside the CLI bundle (dist/dataset/import-worker.js) or, when running from the
 * TypeScript sources (tests, a clone without a build), the .ts file loaded through Node's type transform
 * and the workspace's source resolver. Null when neither is available: everything then runs in this thread.
 */
function workerScript(): { url: URL; execArgv: string[] } | null {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    const hooks = new URL('../../../federated/src/ts-source-register.mjs', here);
    const url = new URL('./import-worker.ts', here);
    if (!existsSync(fileURLToPath(hooks)) || !existsSync(fileURLToPath(url))) return null;
    return { url, execArgv: ['--experimental-transform-types', '--no-warnings', '--import', hooks.href] };
  }
  for (const candidate of ['./dataset/import-worker.js', './import-worker.js']) {
    const url = new URL(candidate, here);
    if (existsSync(fileURLToPath(url))) return { url, execArgv: [] };
  }
  return null;
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
    out.push({ ...box, bbox: [x0, y0, x1 - x0, y1 - y0] });
  }
  return out;
}

function uniqueName(used: Set<string>, wanted: string): string {
  let name = wanted;
  for (let n = 2; used.has(name); n++) name = wanted.replace(/\.(png|jpg)$/, `_${n}.$1`);
  used.add(name);
  return name;
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}
