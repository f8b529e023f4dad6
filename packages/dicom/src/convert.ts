import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { encodeGreyJpeg, encodeGreyPng, FedcxrError, writeFileAtomic, writeJsonAtomic } from '@fedcxr/base';
import { DicomError, thrownMessage } from './errors.js';
import { type NormalizeOptions, normalize, normalizeResized, type PresetName } from './normalize.js';
import { readDicom } from './read.js';
import type { ResizeTransform } from './resize.js';

export const OUTPUT_FORMATS = ['png', 'png16', 'jpeg', 'raw16'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface ConvertOptions {
  preset: PresetName;
  /** Longer side after resizing (aspect kept, letterboxed to size × size); omit to keep the original size. */
  size?: number;
  /** png: 8-bit PNG; png16: 16-bit PNG; jpeg: 8-bit JPEG (quality 95); raw16: little-endian uint16, no header. */
  format: OutputFormat;
  normalize?: NormalizeOptions;
}

export interface ConvertJob {
  file: string;
  output: string;
}

export interface ConvertSuccess {
  file: string;
  output: string;
  width: number;
  height: number;
  /** Present when resized: maps boxes between the output and the original pixels (see boxToOriginal). */
  transform: ResizeTransform | null;
  patientId: string | null;
  studyInstanceUid: string | null;
  sopInstanceUid: string | null;
}

export interface ConvertFailure {
  file: string;
  error: { code: string; message: string };
}

export interface ConvertManifest {
  preset: PresetName;
  size: number | null;
  format: OutputFormat;
  workers: number;
  succeeded: ConvertSuccess[];
  failed: ConvertFailure[];
}

const extensions: Record<OutputFormat, string> = { png: '.png', png16: '.png', jpeg: '.jpg', raw16: '.raw' };

/** Encodes a [0, 1] grey image in the requested format (JPEG at `jpegQuality`, default 95). */
export function encodeGrey(
  data: Float32Array,
  width: number,
  height: number,
  format: OutputFormat,
  jpegQuality = 95,
): Uint8Array {
  if (format === 'png16' || format === 'raw16') {
    const samples = new Uint16Array(data.length);
    for (let i = 0; i < data.length; i++) samples[i] = Math.round(data[i] * 65535);
    if (format === 'png16') return encodeGreyPng({ width, height, channels: 1, bitDepth: 16, data: samples });
    const bytes = new Uint8Array(samples.length * 2);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < samples.length; i++) view.setUint16(2 * i, samples[i], true);
    return bytes;
  }
  const samples = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) samples[i] = Math.round(data[i] * 255);
  const image = { width, height, channels: 1 as const, bitDepth: 8 as const, data: samples };
  return format === 'png' ? encodeGreyPng(image) : encodeGreyJpeg(image, jpegQuality);
}

/** Read → normalize → resize → encode → write (atomically) one file. Throws DicomError/FedcxrError. */
export async function convertOne(job: ConvertJob, options: ConvertOptions): Promise<ConvertSuccess> {
  const image = await readDicom(job.file);
  // normalizeResized = resizeKeepAspect(normalize(...)), bit for bit, without the full-size float image.
  const resized = options.size ? normalizeResized(image, options.preset, options.size, options.normalize) : null;
  const out = resized ?? normalize(image, options.preset, options.normalize);
  await writeFileAtomic(job.output, encodeGrey(out.data, out.width, out.height, options.format));
  return {
    file: job.file,
    output: job.output,
    width: out.width,
    height: out.height,
    transform: resized?.transform ?? null,
    patientId: image.header.patientId,
    studyInstanceUid: image.header.studyInstanceUid,
    sopInstanceUid: image.header.sopInstanceUid,
  };
}

function isDicomName(name: string): boolean {
  return /\.(dcm|dicom|dic)$/i.test(name);
}

/**
 * Expands files and directories (recursively, files named *.dcm / *.dicom / *.dic) into conversion jobs whose
 * outputs mirror the layout under `outDir`. Files named directly are taken whatever their name.
 */
export async function planConversion(inputs: string[], outDir: string, format: OutputFormat): Promise<ConvertJob[]> {
  const jobs: ConvertJob[] = [];
  const seen = new Set<string>();
  const add = (file: string, rel: string) => {
    const stem = rel.replace(/\.(dcm|dicom|dic)$/i, '');
    let output = join(outDir, stem + extensions[format]);
    for (let n = 2; seen.has(output); n++) output = join(outDir, `${stem}-${n}${extensions[format]}`);
    seen.add(output);
    jobs.push({ file, output });
  };
  const walk = async (dir: string, root: string) => {
    const entries = await readdir(dir, { withFileTypes: true });
    entries.sort((a, b) => a.name.localeCompare(b.name));
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path, root);
      else if (entry.isFile() && isDicomName(entry.name)) add(path, relative(root, path));
    }
  };
  for (const input of inputs) {
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      info = await stat(input);
    } catch {
      throw new FedcxrError('usage', `input not found: ${input}`, { file: input });
    }
    if (info.isDirectory()) await walk(input, input);
    else add(input, basename(input));
  }
  return jobs;
}

export interface BatchOptions {
  /** Worker threads (default: available cores, at most the number of jobs). 0 converts in this thread. */
  workers?: number;
  /** A file whose conversion takes longer than this fails with `decode_timeout` (worker mode only; default 120 s). */
  timeoutMs?: number;
  onProgress?: (done: number, total: number, last: ConvertSuccess | ConvertFailure) => void;
}

function failureOf(file: string, thrown: unknown): ConvertFailure {
  if (thrown instanceof FedcxrError) return { file, error: { code: thrown.code, message: thrown.message } };
  return { file, error: { code: 'internal', message: `${file}: ${thrownMessage(thrown)}` } };
}

/** The compiled worker sits beside this module in dist/; from TypeScript sources (tests) there is none. */
function workerScript(): string | null {
  const here = fileURLToPath(import.meta.url);
  const script = join(dirname(here), 'convert-worker.js');
  return here.endsWith('.js') && existsSync(script) ? script : null;
}

/**
 * Converts every job, in worker threads when available (a batch goes on past bad files), and writes
 * `manifest.json` into `outDir` listing successes and failures.
 */
export async function convertBatch(
  jobs: ConvertJob[],
  outDir: string,
  options: ConvertOptions,
  batch: BatchOptions = {},
): Promise<ConvertManifest> {
  const script = workerScript();
  const wanted = batch.workers ?? availableParallelism();
  const workers = script ? Math.max(0, Math.min(wanted, jobs.length)) : 0;
  const results: Array<ConvertSuccess | ConvertFailure> = new Array(jobs.length);
  let done = 0;
  const record = (index: number, result: ConvertSuccess | ConvertFailure) => {
    results[index] = result;
    done++;
    batch.onProgress?.(done, jobs.length, result);
  };
  if (workers === 0) {
    for (let i = 0; i < jobs.length; i++) {
      try {
        record(i, await convertOne(jobs[i], options));
      } catch (thrown) {
        record(i, failureOf(jobs[i].file, thrown));
      }
    }
  } else {
    await runPool(script as string, workers, jobs, options, batch.timeoutMs ?? 120_000, record);
  }
  const manifest: ConvertManifest = {
    preset: options.preset,
    size: options.size ?? null,
    format: options.format,
    workers,
    succeeded: results.filter((r): r is ConvertSuccess => 'output' in r),
    failed: results.filter((r): r is ConvertFailure => 'error' in r),
  };
  await writeJsonAtomic(join(outDir, 'manifest.json'), manifest);
  return manifest;
}

type WorkerReply =
  | { index: number; ok: true; result: ConvertSuccess }
  | { index: number; ok: false; failure: ConvertFailure };

async function runPool(
  script: string,
  size: number,
  jobs: ConvertJob[],
  options: ConvertOptions,
  timeoutMs: number,
  record: (index: number, result: ConvertSuccess | ConvertFailure) => void,
): Promise<void> {
  let next = 0;
  await new Promise<void>((resolve) => {
    let active = 0;
    const start = () => {
      if (next >= jobs.length) {
        if (active === 0) resolve();
        return;
      }
      active++;
      const worker = new Worker(script, { workerData: { options } });
      let current = -1;
      let timer: NodeJS.Timeout | undefined;
      let finished = false;
      const finish = () => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        active--;
        void worker.terminate();
        start();
      };
      const feed = () => {
        if (next >= jobs.length) {
          finish();
          return;
        }
        current = next++;
        timer = setTimeout(() => {
          // A decoder that hangs is stopped by ending its thread; a fresh worker takes the remaining jobs.
          record(current, {
            file: jobs[current].file,
            error: { code: 'decode_timeout', message: `${jobs[current].file}: no result after ${timeoutMs} ms` },
          });
          current = -1;
          finish();
        }, timeoutMs);
        worker.postMessage({ index: current, job: jobs[current] });
      };
      worker.on('message', (reply: WorkerReply) => {
        clearTimeout(timer);
        if (reply.index !== current) return;
        record(reply.index, reply.ok ? reply.result : reply.failure);
        current = -1;
        feed();
      });
      worker.on('error', (error) => {
        if (current >= 0) record(current, failureOf(jobs[current].file, error));
        current = -1;
        finish();
      });
      worker.on('exit', () => {
        if (current >= 0) {
          record(
            current,
            failureOf(jobs[current].file, new DicomError('corrupt_pixel_data', 'worker exited while decoding')),
          );
          current = -1;
        }
        finish();
      });
      feed();
    };
    for (let i = 0; i < size; i++) start();
  });
}
