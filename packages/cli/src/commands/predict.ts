/**
 * `cxr predict --model <dir|file.onnx> <files or dirs...> --out <dir>`: detections for DICOM, PNG and JPEG
 * files (folders walked recursively), prepared as the model's training images were, with boxes in each
 * ORIGINAL file's pixels. Writes COCO results, a CSV, overlay PNGs and, for DICOM inputs, a DICOM Structured
 * Report per image; bad files are reported and skipped.
 *
 * `cxr predict --model … --dicomweb <base-url> [--study UID] [--modality CR,DX] [--since YYYYMMDD] [--store]`:
 * the same for the images of a PACS (QIDO-RS to find them, WADO-RS to retrieve them); `--store` sends each
 * report back into its study (STOW-RS), and a rerun skips the images a fedcxr report already covers.
 */
import { mkdir } from 'node:fs/promises';
import { basename, extname, join, relative } from 'node:path';
import {
  asFedcxrError,
  type Detection,
  drawBoxesForDisplay,
  encodeRgbPng,
  FedcxrError,
  greyToRgb,
  initEngine,
  type ModelCard,
  writeFileAtomic,
  writeJsonAtomic,
} from '@fedcxr/core';
import {
  type DicomHeader,
  type GspsSourceImage,
  type SrFinding,
  type SrOptions,
  type SrSourceImage,
  writeDetectionGsps,
  writeDetectionSr,
} from '@fedcxr/dicom';
import { loadDetector } from '@fedcxr/models-frcnn';
import type { Command } from 'commander';
import {
  clientFromFlags,
  credentialsGiven,
  type DicomwebFlags,
  explainDicomwebError,
  selectionFromFlags,
  strayDicomwebFlag,
  withDicomwebOptions,
} from '../dicomweb/connect.js';
import type { FailedItem, SkippedInstance } from '../dicomweb/discover.js';
import { dicomwebSources, type StoredReport } from '../dicomweb/predict.js';
import { action, type CommandContext, createProgress, ExitCode, withCommonOptions } from '../framework.js';
import { collectInputs, type PreparedInput, preparationFromCard, prepareInput } from '../inference/input.js';
import { openInferenceModel } from '../inference/model.js';

const FORMATS = ['coco', 'csv', 'overlay', 'dicom-sr'] as const;
type OutputFormat = (typeof FORMATS)[number];

interface PredictFlags extends DicomwebFlags {
  model: string;
  out?: string;
  scoreThr: string;
  format: string;
  engine: string;
  threads?: string;
  store?: boolean;
  force?: boolean;
  gsps?: boolean;
}

export interface ImagePrediction {
  image: string;
  image_id: number;
  width: number;
  height: number;
  detections: { bbox: [number, number, number, number]; category_id: number; category: string; score: number }[];
}

export interface Predictor {
  classes: readonly string[];
  categoryIds: number[];
  card: Partial<ModelCard>;
  predict(input: PreparedInput): Promise<Detection[]>;
  close(): Promise<void>;
}

/**
 * One image to predict on, wherever it comes from: `prepare` reads and prepares it; for PACS images, the hooks
 * fill in the report's patient/study attributes, place it in a series, and store it.
 */
export interface PredictSource {
  /** How outputs name the image (a file path, or the instance's WADO-RS URL). */
  image: string;
  /** Base name of its per-image output files. */
  stem: string;
  prepare(): Promise<PreparedInput>;
  /** Completes the report's source identity (patient name, accession, … from the PACS). */
  srSource?(source: SrSourceImage): SrSourceImage;
  srOptions?(): SrOptions;
  /** Series and number of the presentation state (--gsps). */
  gspsOptions?(): SrOptions;
  /** Sends the report (and the presentation state, when made) somewhere (STOW-RS); throws on failure. */
  store?(report: Uint8Array, presentationState: Uint8Array | null): Promise<StoredReport>;
  /** Says why a failure is a skip instead (a non-image object); null: it is a failure. */
  skipReason?(error: unknown): SkippedInstance | null;
  /** The failure record for what was thrown at this source (stage: where it failed). */
  failure?(thrown: unknown, stage: FailedItem['stage']): FailedItem;
}

async function openPredictor(model: string, engine: string, threads: number | undefined): Promise<Predictor> {
  if (engine === 'onnx') {
    const opened = await openInferenceModel(model, { threads });
    return {
      classes: opened.classes,
      categoryIds: opened.categoryIds,
      card: opened.card,
      predict: async (input) => (await opened.model.predict([input.image]))[0],
      close: () => opened.model.dispose(),
    };
  }
  if (engine === 'tfjs') {
    // The fastest tfjs backend that starts here (wasm on CPUs; tfjs-node-gpu or WebGPU on GPUs).
    await initEngine({ backend: 'auto' });
    const { detector, card } = await loadDetector(model);
    const recorded = card.categoryIds ?? null;
    return {
      classes: detector.classes,
      categoryIds: [0, ...(recorded ?? detector.classes.slice(1).map((_, i) => i + 1))],
      card,
      predict: async (input) => (await detector.predict([input.image]))[0],
      close: async () => detector.dispose(),
    };
  }
  throw new FedcxrError('usage', `--engine must be onnx or tfjs, got ${JSON.stringify(engine)}`);
}

function parseFormats(value: string): Set<OutputFormat> {
  const formats = new Set<OutputFormat>();
  for (const name of value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    if (!(FORMATS as readonly string[]).includes(name)) {
      throw new FedcxrError('usage', `--format: unknown output "${name}" (choose from ${FORMATS.join(', ')})`);
    }
    formats.add(name as OutputFormat);
  }
  return formats;
}

/** A file name for per-image outputs that stays unique when inputs share a base name. */
function outputStem(file: string, index: number): string {
  return `${String(index).padStart(5, '0')}_${basename(file, extname(file))}`;
}

const csvCell = (value: string | number) =>
  typeof value === 'number' ? String(value) : `"${value.replace(/"/g, '""')}"`;

export function registerPredictCommands(program: Command): void {
  withCommonOptions(
    withDicomwebOptions(
      program
        .command('predict')
        .description(
          'detect findings on DICOM, PNG or JPEG files (folders walked recursively) or on the images of a PACS (--dicomweb); boxes in original pixels',
        )
        .argument('[inputs...]', 'files or folders (or none, with --dicomweb)')
        .requiredOption('--model <dir|file.onnx>', 'model directory or exported .onnx file')
        .option('--out <dir>', 'write results here (COCO JSON, CSV, overlays, DICOM SR)')
        .option('--score-thr <t>', 'keep detections scoring at least this', '0.05')
        .option('--format <list>', `outputs to write under --out: ${FORMATS.join(',')}`, FORMATS.join(','))
        .option(
          '--engine <name>',
          'onnx (ONNX Runtime, default) or tfjs (the TensorFlow.js model; model directory only)',
          'onnx',
        )
        .option('--threads <n>', 'ONNX Runtime intra-op threads (default: all cores)'),
      'predict on the images',
    )
      .option(
        '--store',
        "DICOMweb: store each image's DICOM SR in its study (STOW-RS); reruns skip images already reported",
      )
      .option('--force', 'DICOMweb: with --store, predict and store again images a fedcxr report already covers')
      .option(
        '--gsps',
        'also make a Grayscale Softcopy Presentation State per DICOM image (boxes and labels a PACS viewer draws over it): in --out/gsps/ and, with --store, in the study',
      ),
  ).action(
    action(async (ctx, inputs: string[], flags: PredictFlags) => {
      const threshold = Number(flags.scoreThr);
      if (!(threshold >= 0 && threshold <= 1))
        throw new FedcxrError('usage', `--score-thr must be in [0, 1], got ${flags.scoreThr}`);
      const formats = parseFormats(flags.format);
      const threads = flags.threads === undefined ? undefined : Number(flags.threads);
      if (flags.dicomweb) {
        if (inputs.length > 0) {
          throw new FedcxrError('usage', 'give either input files or --dicomweb, not both');
        }
        return predictDicomweb(ctx, flags, formats, threshold, threads);
      }
      const stray = strayDicomwebFlag(flags) ?? (flags.store ? '--store' : flags.force ? '--force' : null);
      if (stray) throw new FedcxrError('usage', `${stray} needs --dicomweb <base-url>`);
      if (flags.gsps && !flags.out) throw new FedcxrError('usage', '--gsps writes presentation states under --out');
      if (inputs.length === 0) throw new FedcxrError('usage', 'give input files or folders, or --dicomweb <base-url>');
      const files = await collectInputs(inputs);
      if (files.length === 0) throw new FedcxrError('usage', `no DICOM, PNG or JPEG files in ${inputs.join(', ')}`);
      const predictor = await openPredictor(flags.model, flags.engine, threads);
      const preparation = preparationFromCard(predictor.card);
      const sources: PredictSource[] = files.map((file, i) => ({
        image: file,
        stem: outputStem(file, i + 1),
        prepare: () => prepareInput(file, preparation),
      }));
      const run = await predictAll(ctx, predictor, sources, {
        out: flags.out,
        formats,
        threshold,
        gsps: Boolean(flags.gsps),
      });
      await writeSummary(flags, run, { engine: flags.engine, threshold, formats });
      const detectionsTotal = countDetections(run.predictions);
      return {
        data:
          ctx.json && !flags.out
            ? run.predictions
            : { predictions: run.predictions, failed: run.failed, out: flags.out ?? null },
        human: `${run.predictions.length} image(s), ${detectionsTotal} detection(s)${run.failed.length ? `, ${run.failed.length} failed` : ''}${outNote(flags.out)}`,
        exitCode: run.failed.length > 0 ? ExitCode.partialFailure : ExitCode.ok,
      };
    }),
  );
}

const countDetections = (predictions: ImagePrediction[]) => predictions.reduce((n, p) => n + p.detections.length, 0);
const outNote = (out: string | undefined) => (out ? ` → ${relative(process.cwd(), out) || '.'}` : '');

async function predictDicomweb(
  ctx: CommandContext,
  flags: PredictFlags,
  formats: Set<OutputFormat>,
  threshold: number,
  threads: number | undefined,
) {
  if (flags.force && !flags.store) throw new FedcxrError('usage', '--force goes with --store');
  if (flags.gsps && !flags.store && !flags.out) {
    throw new FedcxrError('usage', '--gsps writes presentation states under --out, or with --store into the PACS');
  }
  const selection = selectionFromFlags(flags);
  const client = clientFromFlags(flags);
  try {
    const found = await dicomwebSources(ctx, client, selection, {
      store: Boolean(flags.store),
      force: Boolean(flags.force),
      credentials: credentialsGiven(flags),
    });
    let run: PredictRun = { predictions: [], failed: [], skipped: [], stored: [], csv: [CSV_HEADER] };
    if (found.count > 0) {
      const predictor = await openPredictor(flags.model, flags.engine, threads);
      run = await predictAll(ctx, predictor, found.sources(preparationFromCard(predictor.card)), {
        out: flags.out,
        formats,
        threshold,
        report: Boolean(flags.store),
        gsps: Boolean(flags.gsps),
      });
    }
    run.failed.unshift(...found.failed);
    run.skipped.unshift(...found.skipped);
    await writeSummary(flags, run, {
      engine: flags.engine,
      threshold,
      formats,
      source: { dicomweb: client.baseUrl, studies: found.studies },
    });
    const skippedImages = run.skipped.filter((s) => s.reason !== 'modality');
    const human = [
      `${found.studies} stud${found.studies === 1 ? 'y' : 'ies'}: ${run.predictions.length} image(s) predicted, ${countDetections(run.predictions)} detection(s)`,
      flags.store ? `, ${run.stored.length} report(s) stored` : '',
      skippedImages.length ? `, ${skippedImages.length} skipped` : '',
      run.failed.length ? `, ${run.failed.length} failed` : '',
      outNote(flags.out),
    ].join('');
    return {
      data: {
        source: client.baseUrl,
        studies: found.studies,
        predictions: run.predictions,
        stored: run.stored,
        skipped: run.skipped,
        failed: run.failed,
        out: flags.out ?? null,
      },
      human,
      exitCode: run.failed.length > 0 ? ExitCode.partialFailure : ExitCode.ok,
    };
  } catch (thrown) {
    throw explainDicomwebError(thrown, credentialsGiven(flags));
  } finally {
    client.close();
  }
}

const CSV_HEADER = 'image,class,score,x,y,w,h';

interface PredictRun {
  predictions: ImagePrediction[];
  failed: (FailedItem | { file: string; error: { code: string; message: string } })[];
  skipped: SkippedInstance[];
  stored: StoredReport[];
  csv: string[];
}

/** Predicts on every source in turn (preparing the next while the model works), writing per-image outputs. */
async function predictAll(
  ctx: CommandContext,
  predictor: Predictor,
  sources: PredictSource[],
  settings: { out?: string; formats: Set<OutputFormat>; threshold: number; report?: boolean; gsps?: boolean },
): Promise<PredictRun> {
  const { out, formats, threshold } = settings;
  const run: PredictRun = { predictions: [], failed: [], skipped: [], stored: [], csv: [CSV_HEADER] };
  if (out) await mkdir(out, { recursive: true });
  const wantReport = settings.report || (out !== undefined && formats.has('dicom-sr'));
  const algorithmName = `fedcxr ${predictor.card.architecture ?? ''} ${predictor.card.backbone ?? ''}`.trim();
  const progress = createProgress(ctx, 'predicting', sources.length);
  try {
    let next: Promise<PreparedInput> | null = sources.length ? sources[0].prepare() : null;
    for (let i = 0; i < sources.length; i++) {
      const source = sources[i];
      const current = next!;
      next = i + 1 < sources.length ? sources[i + 1].prepare() : null;
      next?.catch(() => undefined);
      let stage: FailedItem['stage'] = 'retrieve';
      try {
        let input: PreparedInput;
        try {
          input = await current;
        } catch (thrown) {
          const skip = source.skipReason?.(thrown);
          if (skip) {
            run.skipped.push(skip);
            ctx.log(`skipped ${skip.url}: ${skip.message}`);
            continue;
          }
          if ((thrown as Error)?.name !== 'DicomwebError') stage = 'decode';
          throw thrown;
        }
        stage = 'predict';
        const detections = (await predictor.predict(input)).filter((d) => d.score >= threshold);
        const record: ImagePrediction = {
          image: source.image,
          image_id: i + 1,
          width: input.originalWidth,
          height: input.originalHeight,
          detections: detections.map((d) => {
            const [x1, y1, x2, y2] = input.toOriginal(d.box);
            return {
              bbox: [x1, y1, x2 - x1, y2 - y1].map((v) => Math.round(v * 1000) / 1000) as [
                number,
                number,
                number,
                number,
              ],
              category_id: predictor.categoryIds[d.label] ?? d.label,
              category: predictor.classes[d.label] ?? String(d.label),
              score: Math.round(d.score * 1e6) / 1e6,
            };
          }),
        };
        run.predictions.push(record);
        for (const d of record.detections)
          run.csv.push([csvCell(source.image), csvCell(d.category), d.score, ...d.bbox].join(','));
        let report: Uint8Array | null = null;
        if (wantReport && input.kind === 'dicom' && input.source) {
          report = writeDetectionSr(source.srSource?.(input.source) ?? input.source, findings(record), {
            algorithmName,
            ...source.srOptions?.(),
          });
        }
        let presentation: Uint8Array | null = null;
        if (settings.gsps && input.kind === 'dicom' && input.source && input.dicomHeader) {
          const identity = source.srSource?.(input.source) ?? input.source;
          presentation = writeDetectionGsps(gspsImage(identity, input.dicomHeader, input), findings(record), {
            algorithmName,
            ...source.gspsOptions?.(),
          });
        }
        if (out) await writePerImage(out, formats, input, detections, predictor, source.stem, report, presentation);
        if (settings.report && source.store) {
          stage = 'store';
          if (!report)
            throw new FedcxrError('dicomweb_store_failed', 'no report to store: the image has no DICOM UIDs');
          run.stored.push(await source.store(report, presentation));
        }
      } catch (thrown) {
        if (source.failure) {
          const failure = source.failure(thrown, stage);
          run.failed.push(failure);
          ctx.log(`failed (${stage}) ${source.image}: ${failure.error.message}`);
        } else {
          const error = asFedcxrError(thrown, 'predict_failed', source.image);
          run.failed.push({ file: source.image, error: { code: error.code, message: error.message } });
          ctx.log(`skipped ${error.message}`);
        }
      } finally {
        const parts = [
          run.failed.length ? `${run.failed.length} failed` : '',
          run.stored.length ? `${run.stored.length} stored` : '',
        ];
        progress.tick(1, parts.filter(Boolean).join(', '));
      }
    }
  } finally {
    progress.stop();
    await predictor.close();
  }
  return run;
}

/** A record's detections as report findings (boxes as x1, y1, x2, y2 in the original image's pixels). */
function findings(record: ImagePrediction): SrFinding[] {
  return record.detections.map((d) => ({
    label: d.category,
    score: d.score,
    box: [d.bbox[0], d.bbox[1], d.bbox[0] + d.bbox[2], d.bbox[1] + d.bbox[3]],
  }));
}

/** The presentation state's view of the image: identity plus what its display depends on. */
function gspsImage(identity: SrSourceImage, header: DicomHeader, input: PreparedInput): GspsSourceImage {
  return {
    ...identity,
    columns: input.originalWidth,
    rows: input.originalHeight,
    photometricInterpretation: header.photometricInterpretation ?? undefined,
    windowCenter: header.windowCenter?.[0],
    windowWidth: header.windowWidth?.[0],
    voiLutFunction: header.voiLutFunction ?? undefined,
    rescaleSlope: header.rescaleSlope ?? undefined,
    rescaleIntercept: header.rescaleIntercept ?? undefined,
    rescaleType: header.rescaleType ?? undefined,
  };
}

async function writeSummary(
  flags: PredictFlags,
  run: PredictRun,
  settings: {
    engine: string;
    threshold: number;
    formats: Set<OutputFormat>;
    source?: { dicomweb: string; studies: number };
  },
): Promise<void> {
  const { out } = flags;
  if (!out) return;
  await mkdir(out, { recursive: true });
  const { predictions } = run;
  if (settings.formats.has('coco')) {
    const results = predictions.flatMap((p) =>
      p.detections.map((d) => ({
        image_id: p.image_id,
        category_id: d.category_id,
        bbox: d.bbox,
        score: d.score,
      })),
    );
    await writeJsonAtomic(join(out, 'results.json'), results);
    await writeJsonAtomic(
      join(out, 'images.json'),
      predictions.map(({ image, image_id, width, height }) => ({
        id: image_id,
        file_name: image,
        width,
        height,
      })),
    );
  }
  if (settings.formats.has('csv')) await writeFileAtomic(join(out, 'detections.csv'), `${run.csv.join('\n')}\n`);
  await writeJsonAtomic(join(out, 'manifest.json'), {
    model: flags.model,
    engine: settings.engine,
    score_threshold: settings.threshold,
    ...(settings.source ? { source: settings.source } : {}),
    images: predictions.length,
    detections: countDetections(predictions),
    failed: run.failed,
    ...(settings.source ? { skipped: run.skipped, stored: run.stored } : {}),
  });
}

async function writePerImage(
  out: string,
  formats: Set<OutputFormat>,
  input: PreparedInput,
  detections: Detection[],
  predictor: Predictor,
  stem: string,
  report: Uint8Array | null,
  presentation: Uint8Array | null,
): Promise<void> {
  if (formats.has('overlay')) {
    const { pixels, width, height } = input.image;
    const overlay = drawBoxesForDisplay(
      greyToRgb(pixels, width, height),
      detections.map((d) => ({ box: d.box, text: `${predictor.classes[d.label]} ${d.score.toFixed(2)}` })),
    );
    await writeFileAtomic(join(out, 'overlays', `${stem}.png`), encodeRgbPng(overlay));
  }
  if (formats.has('dicom-sr') && report) await writeFileAtomic(join(out, 'sr', `${stem}.sr.dcm`), report);
  if (presentation) await writeFileAtomic(join(out, 'gsps', `${stem}.pr.dcm`), presentation);
}
