import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readGreyRaster } from '@fedcxr/core';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../testing.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../../../..');
const samples = join(repoRoot, '../shared/data/dicom-samples');
const hasSamples = existsSync(join(samples, 'EXPECTED.json'));
if (!hasSamples) console.warn(`cxr dicom tests skipped: ${samples} not found`);

const scratch = mkdtempSync(join(tmpdir(), 'cxr-dicom-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe.skipIf(!hasSamples)('cxr dicom', () => {
  const expected = hasSamples ? JSON.parse(readFileSync(join(samples, 'EXPECTED.json'), 'utf8')) : {};

  it('info --json --stats prints header facts and EXPECTED.json pixel statistics', async () => {
    const run = await runCli(['dicom', 'info', join(samples, 'CR-MONO1-10-chest.dcm'), '--json', '--stats']);
    expect(run.exitCode).toBe(0);
    const info = run.json<Record<string, unknown> & { pixels: Record<string, unknown> }>();
    const want = expected['CR-MONO1-10-chest.dcm'];
    expect(info.photometricInterpretation).toBe('MONOCHROME1');
    expect(info.windowCenter).toEqual([550]);
    expect(info.bitsStored).toBe(10);
    expect(info.pixels).toMatchObject({
      min: want.pixel_array.min,
      max: want.pixel_array.max,
      mean: want.pixel_array.mean,
      sum: want.pixel_array.sum,
      sha256: want.pixel_array.sha256_int32_le_c,
    });
  });

  it('info on several files gives an array, failures as {file, error} and a non-zero exit', async () => {
    const files = ['MR_small.dcm', 'rtplan.dcm', 'MR_truncated.dcm'].map((name) => join(samples, name));
    const run = await runCli(['dicom', 'info', ...files, '--json', '--stats']);
    expect(run.exitCode).toBe(1);
    const results = run.json<Array<{ file: string; error?: { code: string; message: string } }>>();
    expect(results.map((r) => r.error?.code ?? 'ok')).toEqual(['ok', 'no_pixel_data', 'truncated']);
    expect(results[1].error?.message).toContain('rtplan.dcm');
  });

  it('info without --json prints readable lines; a non-DICOM file is reported, the others still printed', async () => {
    const run = await runCli(['dicom', 'info', join(samples, 'EXPECTED.json'), join(samples, 'MR_small.dcm')]);
    expect(run.stdout).toContain('EXPECTED.json: ERROR not_dicom');
    expect(run.stdout).toContain('MR MONOCHROME2 64x64 16/16 bits signed');
    expect(run.exitCode).toBe(1);
  });

  it('convert writes images, a manifest with successes and failures, and exits 1 when some failed', async () => {
    const out = join(scratch, 'convert');
    const run = await runCli([
      'dicom',
      'convert',
      join(samples, 'CR-MONO1-10-chest.dcm'),
      join(samples, 'RG1_J2KI.dcm'),
      join(samples, 'rtplan.dcm'),
      '--out',
      out,
      '--preset',
      'seed',
      '--size',
      '128',
      '--json',
    ]);
    expect(run.exitCode).toBe(1);
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect(run.json()).toEqual(manifest);
    expect(manifest.succeeded.map((s: { output: string }) => s.output)).toEqual([
      join(out, 'CR-MONO1-10-chest.png'),
      join(out, 'RG1_J2KI.png'),
    ]);
    expect(manifest.failed).toEqual([
      { file: join(samples, 'rtplan.dcm'), error: expect.objectContaining({ code: 'no_pixel_data' }) },
    ]);
    const png = await readGreyRaster(join(out, 'RG1_J2KI.png'));
    expect([png.width, png.height]).toEqual([128, 128]);
    expect(manifest.succeeded[1].transform).toMatchObject({ contentWidth: 121, contentHeight: 128 });
  });

  it('convert rejects an unknown preset as a usage error', async () => {
    const run = await runCli(['dicom', 'convert', samples, '--out', scratch, '--preset', 'nope']);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain('unknown preset "nope"');
  });
});
