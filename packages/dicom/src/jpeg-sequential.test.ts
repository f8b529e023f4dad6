import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import dicomParser from 'dicom-parser';
import { describe, expect, it } from 'vitest';
import { decodeSequentialJpeg } from './jpeg-sequential.js';
import { readDicom } from './read.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const data = join(repoRoot, '../shared/data');
const hasData = existsSync(join(data, 'dicom-samples/EXPECTED.json'));
if (!hasData) console.warn(`jpeg-sequential tests on real files skipped: ${data} not found`);

function firstFragment(path: string): Uint8Array {
  const bytes = new Uint8Array(readFileSync(path));
  const dataSet = dicomParser.parseDicom(bytes);
  const fragment = dataSet.elements.x7fe00010.fragments?.[0];
  if (!fragment) throw new Error(`${path} has no fragments`);
  return bytes.subarray(fragment.position, fragment.position + fragment.length);
}

describe.skipIf(!hasData)('sequential JPEG decoder (libjpeg islow port)', () => {
  it('decodes 8-bit RSNA baselines exactly as libjpeg-turbo does', async () => {
    const dir = join(data, 'rsna-pneumonia/dicom');
    const names = ['01e4fd43-4f2c-421f-bd68-c756dceb5742.dcm', '08542d41-e606-41df-b08c-9527b531f13f.dcm'];
    for (const name of names) {
      const mine = decodeSequentialJpeg(firstFragment(join(dir, name)));
      const turbo = (await readDicom(join(dir, name))).frames[0].stored;
      expect(mine.precision).toBe(8);
      expect(Int32Array.from(mine.samples)).toEqual(Int32Array.from(turbo));
    }
  });

  it('decodes the 12-bit extended sample (pixels checked against GDCM in samples.test.ts)', () => {
    const out = decodeSequentialJpeg(firstFragment(join(data, 'dicom-samples/JPGExtended.dcm')));
    expect([out.width, out.height, out.precision]).toEqual([256, 1024, 12]);
  });

  it('fails with an Error, not a hang, on cut or garbled streams', () => {
    const stream = firstFragment(join(data, 'dicom-samples/JPGExtended.dcm'));
    for (const cut of [0, 3, 20, 200, 600]) expect(() => decodeSequentialJpeg(stream.slice(0, cut))).toThrow();
    const garbled = stream.slice();
    for (let i = 700; i < garbled.length; i += 13) garbled[i] ^= 0x5a;
    try {
      decodeSequentialJpeg(garbled);
    } catch (error) {
      expect(error).toBeInstanceOf(Error);
    }
  });
});
