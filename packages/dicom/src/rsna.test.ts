import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readDicom } from './read.js';
import { pixelStats } from './stats.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const rsnaDir = join(repoRoot, '../shared/data/rsna-pneumonia/dicom');
const hasRsna = existsSync(rsnaDir);
if (!hasRsna) console.warn(`RSNA pixel tests skipped: ${rsnaDir} not found`);

/** Written by tools/reference/dicom_rsna_hashes.py from pydicom's pixel_array. */
const reference = JSON.parse(readFileSync(join(repoRoot, 'tools/reference/fixtures/dicom/reference.json'), 'utf8')) as {
  rsna: Record<string, { shape: number[]; min: number; max: number; sum: number; sha256: string }>;
};

describe.skipIf(!hasRsna)('RSNA pneumonia DICOMs decode to pydicom pixels', () => {
  it.each(Object.entries(reference.rsna))('%s', async (name, want) => {
    const stats = pixelStats((await readDicom(join(rsnaDir, name))).frames[0]);
    expect({ shape: stats.shape, min: stats.min, max: stats.max, sum: stats.sum, sha256: stats.sha256 }).toEqual(want);
  });
});
