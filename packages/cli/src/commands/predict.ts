/**
 * `cxr predict --model <dir|file.onnx> <files or dirs...> --out <dir>`: detections for DICOM, PNG and JPEG
 * files (folders walked recursively), prepared as the model's training images were, with boxes in each
 * ORIGINAL file's pixels. Writes COCO results, a CSV, overlay PNGs and, for DICOM inputs, a DICOM Structured
 * Report per image; bad files are reported and skipped.
 */
import { mkdir } from 'node:fs/promises';
import { basename, extname, join, relative } from 'node:path';
import {
  asFedcxrError,
  type Detection,
  drawBoxes,
  encodeRgbPng,
  FedcxrError,
  greyToRgb,
  initEngine,
  type ModelCard,
  writeFileAtomic,
  writeJsonAtomic,
} from '@fedcxr/core';
import { writeDetectionSr } from '@fedcxr/dicom';
import { loadDetector } from '@fedcxr/models-frcnn';
import type { Command } from 'commander';
import { action, createProgress, ExitCode, withCommonOptions } from '../framework.js';
import { collectInputs, type PreparedInput, preparationFromCard, prepareInput } from '../inference/input.js';
import { openInferenceModel } from '../inference/model.js';

const FORMATS = ['coco', 'csv', 'overlay', 'dicom-sr'] as const;
type OutputFormat = (typeof FORMATS)[number];

interface PredictFlags {
  model: string;
  out?: string;
  scoreThr: string;
  format: string;
  engine: string;
  threads?: string;
}

export interface ImagePrediction {
  image: string;
  image_id: number;
  width: number;
  height: number;
  detections: { bbox: [number, number, number, number]; category_id: number; category: string; score: number }[];
}

interface Predictor {
  classes: readonly string[];
  categoryIds: number[];
  card: Partial<ModelCard>;
  predict(input: PreparedInput): Promise<Detection[]>;
  close(): Promise<void>;
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
    program
      .command('predict')
      .description('detect findings on DICOM, PNG or JPEG files (folders walked recursively); boxes in original pixels')
      .argument('<inputs...>', 'files or folders')
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
  ).action(
    action(async (ctx, inputs: string[], flags: PredictFlags) => {
      const threshold = Number(flags.scoreThr);
      if (!(threshold >= 0 && threshold <= 1))
        throw new FedcxrError('usage', `--score-thr must be in [0, 1], got ${flags.scoreThr}`);
      const formats = parseFormats(flags.format);
      const threads = flags.threads === undefined ? undefined : Number(flags.threads);
      const files = await collectInputs(inputs);
      if (files.length === 0) throw new FedcxrError('usage', `no DICOM, PNG or JPEG files in ${inputs.join(', ')}`);
      const predictor = await openPredictor(flags.model, flags.engine, threads);
      const preparation = preparationFromCard(predictor.card);
      const predictions: ImagePrediction[] = [];
      const failures: { file: string; error: { code: string; message: string } }[] = [];
      const csv = ['image,class,score,x,y,w,h'];
      if (flags.out) await mkdir(flags.out, { recursive: true });
      const progress = createProgress(ctx, 'predicting', files.length);
      try {
        // Decode the next file while the model works on this one.
        let next: Promise<PreparedInput> | null = prepareInput(files[0], preparation);
        for (let i = 0; i < files.length; i++) {
          const file = files[i];
          const current = next!;
          next = i + 1 < files.length ? prepareInput(files[i + 1], preparation) : null;
          next?.catch(() => undefined);
          try {
            const input = await current;
            const detections = (await predictor.predict(input)).filter((d) => d.score >= threshold);
            const record: ImagePrediction = {
              image: file,
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
            predictions.push(record);
            for (const d of record.detections)
              csv.push([csvCell(file), csvCell(d.category), d.score, ...d.bbox].join(','));
            if (flags.out) await writePerImage(flags.out, formats, input, detections, record, predictor, i);
          } catch (thrown) {
            const error = asFedcxrError(thrown, 'predict_failed', file);
            failures.push({ file, error: { code: error.code, message: error.message } });
            ctx.log(`skipped ${error.message}`);
          }
          progress.tick(1, `${failures.length} failed`);
        }
      } finally {
        progress.stop();
        await predictor.close();
      }
      if (flags.out) {
        if (formats.has('coco')) {
          const results = predictions.flatMap((p) =>
            p.detections.map((d) => ({
              image_id: p.image_id,
              category_id: d.category_id,
              bbox: d.bbox,
              score: d.score,
            })),
          );
          await writeJsonAtomic(join(flags.out, 'results.json'), results);
          await writeJsonAtomic(
            join(flags.out, 'images.json'),
            predictions.map(({ image, image_id, width, height }) => ({
              id: image_id,
              file_name: image,
              width,
              height,
            })),
          );
        }
        if (formats.has('csv')) await writeFileAtomic(join(flags.out, 'detections.csv'), `${csv.join('\n')}\n`);
        await writeJsonAtomic(join(flags.out, 'manifest.json'), {
          model: flags.model,
          engine: flags.engine,
          score_threshold: threshold,
          images: predictions.length,
          detections: predictions.reduce((n, p) => n + p.detections.length, 0),
          failed: failures,
        });
      }
      const detectionsTotal = predictions.reduce((n, p) => n + p.detections.length, 0);
      return {
        data: ctx.json && !flags.out ? predictions : { predictions, failed: failures, out: flags.out ?? null },
        human: `${predictions.length} image(s), ${detectionsTotal} detection(s)${failures.length ? `, ${failures.length} failed` : ''}${flags.out ? ` → ${relative(process.cwd(), flags.out) || '.'}` : ''}`,
        exitCode: failures.length > 0 ? ExitCode.partialFailure : ExitCode.ok,
      };
    }),
  );
}

async function writePerImage(
  out: string,
  formats: Set<OutputFormat>,
  input: PreparedInput,
  detections: Detection[],
  record: ImagePrediction,
  predictor: Predictor,
  index: number,
): Promise<void> {
  const stem = outputStem(input.file, index + 1);
  if (formats.has('overlay')) {
    const { pixels, width, height } = input.image;
    const overlay = drawBoxes(
      greyToRgb(pixels, width, height),
      detections.map((d) => ({ box: d.box, text: `${predictor.classes[d.label]} ${d.score.toFixed(2)}` })),
    );
    await writeFileAtomic(join(out, 'overlays', `${stem}.png`), encodeRgbPng(overlay));
  }
  if (formats.has('dicom-sr') && input.kind === 'dicom' && input.source) {
    const findings = record.detections.map((d) => ({
      label: d.category,
      score: d.score,
      box: [d.bbox[0], d.bbox[1], d.bbox[0] + d.bbox[2], d.bbox[1] + d.bbox[3]] as [number, number, number, number],
    }));
    const model = predictor.card;
    await writeFileAtomic(
      join(out, 'sr', `${stem}.sr.dcm`),
      writeDetectionSr(input.source, findings, {
        algorithmName: `fedcxr ${model.architecture ?? ''} ${model.backbone ?? ''}`.trim(),
      }),
    );
  }
}
