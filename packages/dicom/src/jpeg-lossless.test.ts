import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readDicom } from './read.js';
import { pixelStats } from './stats.js';

/**
 * JPEG lossless (process 14) has no file in dicom-samples; jpeg-lossless-decoder-js ships DICOM test files: one
 * 256 × 256 16-bit image compressed with each of the 7 predictors. Lossless means all must give the same pixels.
 */
const require = createRequire(import.meta.url);
const dataDir = join(dirname(require.resolve('jpeg-lossless-decoder-js/package.json')), 'tests/data');
const hasData = existsSync(join(dataDir, 'jpeg_lossless_sel1.dcm'));
if (!hasData) console.warn(`JPEG lossless tests skipped: ${dataDir} not found`);

describe.skipIf(!hasData)('JPEG lossless, process 14 (predictors 1 to 7)', () => {
  it('every predictor decodes to the same pixels', async () => {
    const hashes = new Set<string>();
    for (let selection = 1; selection <= 7; selection++) {
      const image = await readDicom(join(dataDir, `jpeg_lossless_sel${selection}.dcm`));
      expect(image.header.transferSyntaxUid).toMatch(/^1\.2\.840\.10008\.1\.2\.4\.(57|70)$/);
      expect([image.frames[0].rows, image.frames[0].columns]).toEqual([256, 256]);
      hashes.add(pixelStats(image.frames[0]).sha256);
    }
    expect(hashes.size).toBe(1);
  });

  it('matches the decoder package’s own checksum of the 16-bit samples (CRC-32 3476557349)', async () => {
    const image = await readDicom(join(dataDir, 'jpeg_lossless_sel1.dcm'));
    const samples = Uint16Array.from(image.frames[0].stored);
    expect(crc32(new Uint8Array(samples.buffer))).toBe(3476557349);
    expect(readFileSync(join(dataDir, 'jpeg_lossless_sel1-8bit.dcm')).length).toBeGreaterThan(0);
    const eight = await readDicom(join(dataDir, 'jpeg_lossless_sel1-8bit.dcm'));
    expect(eight.header.bitsAllocated).toBe(8);
  });
});

function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
