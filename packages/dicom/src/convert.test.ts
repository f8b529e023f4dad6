import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { readGreyRaster } from '@fedcxr/base';
import { afterAll, describe, expect, it } from 'vitest';
import { type ConvertManifest, convertBatch, encodeGrey, planConversion } from './convert.js';

const here = dirname(fileURLToPath(import.meta.url));
const samples = join(here, '../../../../shared/data/dicom-samples');
const hasSamples = existsSync(join(samples, 'EXPECTED.json'));
if (!hasSamples) console.warn(`convert tests skipped: ${samples} not found`);
/** Worker threads run the compiled worker, so that path is tested against the built package (npm run build). */
const builtIndex = join(here, '../dist/index.js');
const hasBuild = existsSync(join(here, '../dist/convert-worker.js'));
if (!hasBuild) console.warn('convert worker-thread tests skipped: packages/dicom/dist not built (npm run build)');

const scratch = mkdtempSync(join(tmpdir(), 'dicom-convert-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('encodeGrey', () => {
  it('writes raw16 as little-endian uint16 of round(v · 65535)', async () => {
    const raw = encodeGrey(Float32Array.from([0, 0.5, 1]), 3, 1, 'raw16');
    expect(Array.from(raw)).toEqual([0, 0, 0x00, 0x80, 0xff, 0xff]);
  });
});

describe.skipIf(!hasSamples)('planConversion and convertBatch', () => {
  it('finds *.dcm recursively and mirrors names', async () => {
    const jobs = await planConversion([samples], '/out', 'jpeg');
    expect(jobs.length).toBe(21);
    expect(jobs).toContainEqual({ file: join(samples, 'CR-MONO1-10-chest.dcm'), output: '/out/CR-MONO1-10-chest.jpg' });
  });

  it('in this thread: goes on past bad files and lists them in manifest.json', async () => {
    const out = join(scratch, 'inline');
    const jobs = await planConversion([samples], out, 'png');
    const manifest = await convertBatch(jobs, out, { preset: 'window', size: 64, format: 'png' }, { workers: 0 });
    expect(manifest.workers).toBe(0);
    expect(manifest.failed.map((f) => f.error.code).sort()).toEqual(['invalid_header', 'no_pixel_data', 'truncated']);
    expect(manifest.succeeded.length).toBe(18);
    expect(JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'))).toEqual(manifest);
    const png = await readGreyRaster(join(out, 'MR_small.png'));
    expect([png.width, png.height, png.bitDepth]).toEqual([64, 64, 8]);
  });

  it.skipIf(!hasBuild)('in worker threads: same outputs, and a per-file timeout stops a stuck decode', async () => {
    const built = (await import(pathToFileURL(builtIndex).href)) as { convertBatch: typeof convertBatch };
    const out = join(scratch, 'workers');
    const jobs = await planConversion([samples], out, 'png');
    const manifest: ConvertManifest = await built.convertBatch(
      jobs,
      out,
      { preset: 'window', size: 64, format: 'png' },
      { workers: 2 },
    );
    expect(manifest.workers).toBe(2);
    expect(manifest.succeeded.length).toBe(18);
    const inline = JSON.parse(readFileSync(join(scratch, 'inline/manifest.json'), 'utf8')) as ConvertManifest;
    expect(readFileSync(join(out, 'RG1_J2KI.png'))).toEqual(readFileSync(join(scratch, 'inline/RG1_J2KI.png')));
    expect(manifest.failed.map((f) => f.file)).toEqual(inline.failed.map((f) => f.file));
    const slow = await built.convertBatch(
      jobs.slice(0, 2),
      join(scratch, 'slow'),
      { preset: 'seed', format: 'png' },
      {
        workers: 1,
        timeoutMs: 1,
      },
    );
    expect(slow.failed.map((f) => f.error.code)).toEqual(['decode_timeout', 'decode_timeout']);
  });
});
