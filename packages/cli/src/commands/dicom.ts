/**
 * `cxr dicom info <files...> [--stats]`: header facts (and stored-pixel statistics) per file.
 * `cxr dicom convert <files|dirs...> --out <dir> --preset <name> [--size N] [--format ...]`: normalized images
 * plus a manifest of successes and failures, in worker threads.
 */
import { FedcxrError } from '@fedcxr/core';
import {
  convertBatch,
  dicomInfo,
  isInfoFailure,
  isPresetName,
  OUTPUT_FORMATS,
  type OutputFormat,
  PRESETS,
  planConversion,
} from '@fedcxr/dicom';
import type { Command } from 'commander';
import { action, createProgress, ExitCode, withCommonOptions } from '../framework.js';

interface ConvertFlags {
  out: string;
  preset: string;
  size?: string;
  format: string;
  workers?: string;
}

function positiveInteger(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0) {
    throw new FedcxrError('usage', `${flag} must be a non-negative integer, got ${JSON.stringify(value)}`);
  }
  return number;
}

export function registerDicomCommands(program: Command): void {
  const dicom = program.command('dicom').description('read DICOM files: header facts, pixel statistics, conversion');

  withCommonOptions(
    dicom
      .command('info')
      .description(
        'print header facts per file (an array for several); --stats adds stored-pixel statistics of frame 0',
      )
      .argument('<files...>', 'DICOM files')
      .option('--stats', 'decode pixels and add {min, max, mean, sum, sha256} of the stored values of frame 0'),
  ).action(
    action(async (ctx, files: string[], flags: { stats?: boolean }) => {
      const results = [];
      for (const file of files) results.push(await dicomInfo(file, { stats: flags.stats }));
      const failures = results.filter(isInfoFailure);
      const human = results
        .map((r) => {
          if (isInfoFailure(r)) return `${r.file}: ERROR ${r.error.code}: ${r.error.message}`;
          const lines = [
            `${r.file}: ${r.modality ?? '?'} ${r.photometricInterpretation ?? '?'} ${r.columns ?? '?'}x${r.rows ?? '?'} ` +
              `${r.bitsStored ?? '?'}/${r.bitsAllocated ?? '?'} bits ${r.pixelRepresentation === 1 ? 'signed' : 'unsigned'}, ` +
              `${r.numberOfFrames ?? 1} frame(s), ${r.transferSyntaxName}`,
            `  window ${JSON.stringify(r.windowCenter)}/${JSON.stringify(r.windowWidth)} ${r.voiLutFunction ?? ''} ` +
              `rescale ${r.rescaleSlope ?? 1}/${r.rescaleIntercept ?? 0} PIR ${r.pixelIntensityRelationship ?? '-'} ` +
              `patient ${r.patientId ?? '-'}`,
          ];
          if (r.pixels) {
            const p = r.pixels;
            lines.push(`  pixels min ${p.min} max ${p.max} mean ${p.mean} sum ${p.sum} sha256 ${p.sha256}`);
          }
          return lines.join('\n');
        })
        .join('\n');
      if (failures.length > 0) ctx.log(`${failures.length} of ${files.length} file(s) failed`);
      return {
        data: files.length === 1 ? results[0] : results,
        human,
        exitCode: failures.length > 0 ? ExitCode.partialFailure : ExitCode.ok,
      };
    }),
  );

  withCommonOptions(
    dicom
      .command('convert')
      .description('normalize DICOM images into PNG/JPEG/raw16 files with a manifest of successes and failures')
      .argument('<inputs...>', 'DICOM files or directories (searched recursively for *.dcm)')
      .requiredOption('--out <dir>', 'output directory (mirrors the input layout; manifest.json inside)')
      .option('--preset <name>', `normalization preset: ${PRESETS.join(', ')}`, 'seed')
      .option('--size <n>', 'resize so the longer side is n pixels (aspect kept, letterboxed to n x n)')
      .option('--format <format>', `output format: ${OUTPUT_FORMATS.join(', ')}`, 'png')
      .option('--workers <n>', 'worker threads (default: number of cores; 0 = in this thread)'),
  ).action(
    action(async (ctx, inputs: string[], flags: ConvertFlags) => {
      if (!isPresetName(flags.preset)) {
        throw new FedcxrError('usage', `unknown preset "${flags.preset}" (use ${PRESETS.join(', ')})`);
      }
      if (!(OUTPUT_FORMATS as readonly string[]).includes(flags.format)) {
        throw new FedcxrError('usage', `unknown format "${flags.format}" (use ${OUTPUT_FORMATS.join(', ')})`);
      }
      const size = positiveInteger('--size', flags.size);
      const workers = positiveInteger('--workers', flags.workers);
      const format = flags.format as OutputFormat;
      const jobs = await planConversion(inputs, flags.out, format);
      if (jobs.length === 0) throw new FedcxrError('usage', `no DICOM files (*.dcm) found in ${inputs.join(', ')}`);
      const progress = createProgress(ctx, 'convert', jobs.length);
      let failed = 0;
      const manifest = await convertBatch(
        jobs,
        flags.out,
        { preset: flags.preset, size: size || undefined, format },
        {
          workers,
          onProgress: (_done, _total, last) => {
            if ('error' in last) failed++;
            progress.tick(1, failed > 0 ? `${failed} failed` : '');
          },
        },
      );
      progress.stop();
      const human = [
        `converted ${manifest.succeeded.length} of ${jobs.length} file(s) into ${flags.out} (manifest.json)`,
        ...manifest.failed.map((f) => `  failed: ${f.error.message} [${f.error.code}]`),
      ].join('\n');
      return {
        data: manifest,
        human,
        exitCode: manifest.failed.length > 0 ? ExitCode.partialFailure : ExitCode.ok,
      };
    }),
  );
}
