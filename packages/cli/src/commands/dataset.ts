/**
 * `cxr dataset import|split|stats|check`: bring a labelled export in as normalized PNGs + COCO, split it by
 * patient, look at it, and list its problems. Library logic: @fedcxr/core (formats, splits, stats, check) and
 * ../dataset/import.ts (the DICOM-aware import pipeline).
 */
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import {
  COLUMN_ROLES,
  type CocoDataset,
  checkDataset,
  DATASET_FORMATS,
  type DatasetFormat,
  datasetStats,
  FedcxrError,
  formatIssue,
  parseColumnOverrides,
  type SplitCounts,
  statsHtml,
  VINDR_DEFAULT_FUSION_IOU,
  writeFileAtomic,
} from '@fedcxr/core';
import { isPresetName, PRESETS } from '@fedcxr/dicom';
import type { Command } from 'commander';
import { importDataset } from '../dataset/import.js';
import { splitAnnotationsFile } from '../dataset/split.js';
import { type PullFlags, pullFromDicomweb, withDicomwebPullOptions } from '../dicomweb/pull.js';
import { action, createProgress, ExitCode, withCommonOptions } from '../framework.js';

interface ImportFlags extends Partial<PullFlags> {
  format?: string;
  out: string;
  preset?: string;
  size?: string;
  letterbox?: boolean;
  bits?: string;
  imageFormat: string;
  jpegQuality: string;
  includeTest?: boolean;
  patientPattern?: string;
  names?: string;
  images?: string;
  maskThreshold?: string;
  maskMinArea?: string;
  workers?: string;
  columns?: string;
  fusion?: string;
  fusionIou?: string;
}

interface SplitFlags {
  by: string;
  val: string;
  test?: string;
  folds?: string;
  seed: string;
  out?: string;
}

export function registerDatasetCommands(program: Command): void {
  const dataset = program.command('dataset').description('import, split, inspect and check detection datasets');

  withCommonOptions(
    dataset
      .command('import')
      .description('import a labelled export as normalized PNG images plus one COCO annotations.json')
      .argument('[src]', 'export folder (seed, rsna, voc, yolo, vindr, nih) or COCO JSON file (coco)')
      .option('--format <format>', `input format: ${DATASET_FORMATS.join(', ')}`)
      .requiredOption('--out <dir>', 'output folder (annotations.json and images/)')
      .option(
        '--preset <name>',
        `DICOM normalization: ${PRESETS.join(', ')} (default: seed for --format seed, else window)`,
      )
      .option('--size <n>', 'longer side of the written images in pixels (aspect kept)')
      .option('--letterbox', 'pad resized images to size x size')
      .option('--bits <n>', 'PNG bit depth: 8 or 16', '8')
      .option('--image-format <f>', 'png, or jpeg (8-bit: a compact copy to carry elsewhere)', 'png')
      .option('--jpeg-quality <q>', 'with --image-format jpeg: quality 1-100', '95')
      .option('--include-test', 'seed: also import test/image (unlabelled)')
      .option(
        '--patient-pattern <regex>',
        'patient id = first group of this regex on the file name (voc, yolo, coco; nih without Data_Entry)',
      )
      .option('--names <file>', 'yolo: class names file')
      .option('--images <dir>', 'coco: folder the file_names are relative to (default: the JSON folder)')
      .option('--mask-threshold <t>', 'seed: mask foreground threshold, fraction of full scale', '0.5')
      .option('--mask-min-area <px>', 'seed: smallest lesion component kept, in mask pixels', '4')
      .option(
        '--columns <role=name,...>',
        `seed: train.csv columns not under a common name (roles: ${COLUMN_ROLES.join(', ')})`,
      )
      .option(
        '--fusion <wbf|none>',
        "vindr: fuse readers' boxes (weighted boxes fusion) or keep each with its rad_id",
        'wbf',
      )
      .option(
        '--fusion-iou <t>',
        "vindr: IoU above which two readers' boxes are one finding",
        String(VINDR_DEFAULT_FUSION_IOU),
      )
      .option('--workers <n>', 'worker threads (default: CPU cores, at most 8, for 64+ images; 0: none)'),
  ).action(
    action(async (ctx, src: string | undefined, flags: ImportFlags) => {
      if (flags.dicomweb) return pullFromDicomweb(ctx, { ...flags, out: flags.out }, src);
      if (src === undefined || flags.format === undefined)
        throw new FedcxrError('usage', 'dataset import needs <src> and --format (or --dicomweb <base-url>)');
      const format = flags.format as DatasetFormat;
      if (!DATASET_FORMATS.includes(format)) {
        throw new FedcxrError('usage', `--format must be one of ${DATASET_FORMATS.join(', ')}, got "${flags.format}"`);
      }
      if (flags.preset !== undefined && !isPresetName(flags.preset)) {
        throw new FedcxrError('usage', `--preset must be one of ${PRESETS.join(', ')}, got "${flags.preset}"`);
      }
      if (flags.bits !== '8' && flags.bits !== '16')
        throw new FedcxrError('usage', `--bits must be 8 or 16, got "${flags.bits}"`);
      const size = flags.size === undefined ? undefined : integerFlag('--size', flags.size, 16);
      let patientPattern: RegExp | undefined;
      if (flags.patientPattern !== undefined) {
        try {
          patientPattern = new RegExp(flags.patientPattern);
        } catch (error) {
          throw new FedcxrError('usage', `--patient-pattern is not a valid regex: ${(error as Error).message}`);
        }
      }
      let progress: ReturnType<typeof createProgress> | null = null;
      const summary = await importDataset({
        format,
        src,
        out: flags.out,
        preset: flags.preset as Parameters<typeof importDataset>[0]['preset'],
        size,
        letterbox: flags.letterbox ?? false,
        imageFormat: imageFormatFlag(flags.imageFormat, flags.bits),
        jpegQuality: integerFlag('--jpeg-quality', flags.jpegQuality, 1, 100),
        workers: flags.workers === undefined ? undefined : integerFlag('--workers', flags.workers, 0),
        parse: {
          includeTest: flags.includeTest ?? false,
          patientPattern,
          namesFile: flags.names,
          imagesDir: flags.images,
          threshold: fractionFlag('--mask-threshold', flags.maskThreshold ?? '0.5'),
          minArea: integerFlag('--mask-min-area', flags.maskMinArea ?? '4', 1),
          columns: flags.columns === undefined ? undefined : parseColumnOverrides(flags.columns),
          fusion: fusionFlag(flags.fusion ?? 'wbf'),
          fusionIou: fractionFlag('--fusion-iou', flags.fusionIou ?? String(VINDR_DEFAULT_FUSION_IOU)),
        },
        onProgress: (_done, total, file) => {
          progress ??= createProgress(ctx, 'import', total);
          progress.tick(1, basename(file));
        },
      });
      (progress as ReturnType<typeof createProgress> | null)?.stop();
      for (const issue of summary.issues) ctx.log(`${issue.severity}: ${formatIssue(issue)}`);
      const lines = [
        `${summary.images} images (${summary.negatives} without boxes, ${summary.patients} patients), ${summary.annotations} boxes in ${summary.seconds.toFixed(1)} s`,
        ...summary.categories.map((c) => `  ${c.name}: ${c.boxes}`),
        ...summary.notes,
        `skipped: ${summary.skipped.length}; warnings: ${summary.issues.filter((i) => i.severity === 'warning').length}`,
        `wrote ${summary.annotationsFile}`,
      ];
      return {
        data: summary,
        human: lines.join('\n'),
        exitCode: summary.skipped.length > 0 ? ExitCode.partialFailure : ExitCode.ok,
      };
    }),
  );
  withDicomwebPullOptions(dataset.commands.find((c) => c.name() === 'import')!);

  withCommonOptions(
    dataset
      .command('split')
      .description('split a COCO dataset by patient (stratified by class presence): train/val[/test] or K folds')
      .argument('<annotations>', 'COCO annotations.json (images need patient_id)')
      .option('--by <key>', 'grouping key (only "patient")', 'patient')
      .option('--val <fraction>', 'validation fraction', '0.2')
      .option('--test <fraction>', 'test fraction held out first', '0')
      .option('--folds <k>', 'K-fold cross-validation instead of one train/val split')
      .option('--seed <n>', 'random seed', '0')
      .option('--out <dir>', 'where to write the split files (default: beside the annotations)'),
  ).action(
    action(async (ctx, file: string, flags: SplitFlags) => {
      if (flags.by !== 'patient') throw new FedcxrError('usage', `--by must be "patient", got "${flags.by}"`);
      const { files: written, splits: counts } = await splitAnnotationsFile(file, {
        val: Number(flags.val),
        test: Number(flags.test ?? '0'),
        folds: flags.folds === undefined ? undefined : integerFlag('--folds', flags.folds, 2),
        seed: integerFlag('--seed', flags.seed, 0),
        out: flags.out,
      });
      ctx.log(`wrote ${written.join(', ')}`);
      return { data: { files: written, splits: counts }, human: countsTable(counts) };
    }),
  );

  withCommonOptions(
    dataset
      .command('stats')
      .description('images, patients, boxes per class, boxes per image, box sizes, images per patient')
      .argument('<annotations>', 'COCO annotations.json')
      .option(
        '--html [file]',
        'also write a self-contained HTML page with histograms (default: stats.html beside the input)',
      ),
  ).action(
    action(async (_ctx, file: string, flags: { html?: string | boolean }) => {
      const dataset = await readJson(file);
      const stats = datasetStats(dataset);
      let htmlFile: string | null = null;
      if (flags.html) {
        htmlFile = typeof flags.html === 'string' ? flags.html : join(dirname(file), 'stats.html');
        await writeFileAtomic(htmlFile, statsHtml(stats, `Dataset statistics: ${file}`));
      }
      const side = stats.boxSide;
      const human = [
        `${stats.images} images, ${stats.patients} patients, ${stats.annotations} boxes, ${stats.negatives} images without boxes`,
        ...stats.categories.map((c) => `  ${c.name}: ${c.boxes} boxes in ${c.images} images`),
        `boxes per image: ${stats.boxesPerImage.labels.map((l, i) => `${l}:${stats.boxesPerImage.counts[i]}`).join(' ')}`,
        `images per patient: ${stats.imagesPerPatient.labels.map((l, i) => `${l}:${stats.imagesPerPatient.counts[i]}`).join(' ')}`,
        `box sqrt(area) px: min ${side.min.toFixed(1)}, median ${side.median.toFixed(1)}, max ${side.max.toFixed(1)}; COCO small/medium/large ${stats.areaRanges.small}/${stats.areaRanges.medium}/${stats.areaRanges.large}`,
        ...(htmlFile ? [`wrote ${htmlFile}`] : []),
      ].join('\n');
      return { data: { ...stats, html: htmlFile }, human };
    }),
  );

  withCommonOptions(
    dataset
      .command('check')
      .description('list every problem of a COCO dataset with its location (exit 1 when there are errors)')
      .argument('<annotations>', 'COCO annotations.json')
      .option('--images <dir>', 'folder the file_names are relative to (default: the JSON folder)'),
  ).action(
    action(async (_ctx, file: string, flags: { images?: string }) => {
      const result = await checkDataset(file, { imagesDir: flags.images });
      const human = [
        ...result.issues.map((issue) => `${issue.severity}: ${formatIssue(issue)}`),
        `${result.errors} error(s), ${result.warnings} warning(s)`,
      ].join('\n');
      const { dataset: _dataset, ...data } = result;
      return { data, human, exitCode: result.errors > 0 ? ExitCode.partialFailure : ExitCode.ok };
    }),
  );
}

function integerFlag(flag: string, value: string, min: number, max = Number.POSITIVE_INFINITY): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < min || number > max) {
    const range = max === Number.POSITIVE_INFINITY ? `≥ ${min}` : `in ${min}..${max}`;
    throw new FedcxrError('usage', `${flag} must be an integer ${range}, got "${value}"`);
  }
  return number;
}

function fractionFlag(flag: string, value: string): number {
  const number = Number(value);
  if (!(number > 0 && number <= 1)) throw new FedcxrError('usage', `${flag} must be in (0, 1], got "${value}"`);
  return number;
}

function imageFormatFlag(format: string, bits: string | undefined): 'png' | 'png16' | 'jpeg' {
  if (format === 'png') return bits === '16' ? 'png16' : 'png';
  if (format === 'jpeg') {
    if (bits === '16')
      throw new FedcxrError('usage', 'JPEG images are 8-bit: drop --bits 16 or use --image-format png');
    return 'jpeg';
  }
  throw new FedcxrError('usage', `--image-format must be png or jpeg, got "${format}"`);
}

function fusionFlag(value: string): 'wbf' | 'none' {
  if (value !== 'wbf' && value !== 'none')
    throw new FedcxrError('usage', `--fusion must be wbf or none, got "${value}"`);
  return value;
}

async function readJson(file: string): Promise<CocoDataset> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new FedcxrError('file_unreadable', `cannot read: ${(error as Error).message}`, { file });
  }
  try {
    return JSON.parse(text) as CocoDataset;
  } catch (error) {
    throw new FedcxrError('invalid_coco', `not valid JSON: ${(error as Error).message}`, { file });
  }
}

function countsTable(counts: SplitCounts[]): string {
  const classes = Object.keys(counts[0]?.classes ?? {});
  const width = Math.max(12, ...classes.map((c) => c.length)) + 2;
  const header = `${'split (class: images/boxes)'.padEnd(width)}${counts.map((c) => c.name.padStart(14)).join('')}`;
  const row = (label: string, values: string[]) =>
    `${label.padEnd(width)}${values.map((v) => v.padStart(14)).join('')}`;
  return [
    header,
    row(
      'patients',
      counts.map((c) => String(c.patients)),
    ),
    row(
      'images',
      counts.map((c) => String(c.images)),
    ),
    row(
      'no boxes',
      counts.map((c) => String(c.negatives)),
    ),
    row(
      'boxes',
      counts.map((c) => String(c.annotations)),
    ),
    ...classes.map((name) =>
      row(
        name,
        counts.map((c) => `${c.classes[name].images}/${c.classes[name].boxes}`),
      ),
    ),
  ].join('\n');
}
