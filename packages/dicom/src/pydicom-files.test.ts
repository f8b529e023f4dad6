import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readDicom } from './read.js';
import { pixelStats } from './stats.js';

/**
 * pydicom's own test files (inside its wheel; here from the reference venv, or $FEDCXR_PYDICOM_TEST_FILES):
 * multi-frame RLE at 8/16/32 bits, deflated, JPEG without colour transform, JPEG 2000 whose pixel representation
 * disagrees with the codestream. Every frame must equal pydicom's (tools/reference/dicom_rsna_hashes.py).
 */
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../../..');
/** $FEDCXR_PYDICOM_TEST_FILES, else pydicom inside $REFERENCE_VENV (set by .ci/run) or the usual reference venv. */
function pydicomTestFiles(): string {
  if (process.env.FEDCXR_PYDICOM_TEST_FILES) return process.env.FEDCXR_PYDICOM_TEST_FILES;
  const venv = process.env.REFERENCE_VENV ?? '/tmp/fedcxr-reference-venv';
  const lib = join(venv, 'lib');
  const python = existsSync(lib) ? readdirSync(lib).find((name) => name.startsWith('python3')) : undefined;
  return join(lib, python ?? 'python3', 'site-packages/pydicom/data/test_files');
}
const testFiles = pydicomTestFiles();
const hasFiles = existsSync(join(testFiles, 'image_dfl.dcm'));
if (!hasFiles) console.warn(`pydicom test-file comparisons skipped: ${testFiles} not found`);

const reference = JSON.parse(readFileSync(join(repoRoot, 'tools/reference/fixtures/dicom/reference.json'), 'utf8')) as {
  pydicom_test_files: Record<
    string,
    {
      transfer_syntax: string;
      frames: Array<{ shape: number[]; min: number; max: number; sum: number; sha256: string }>;
    }
  >;
};

describe.skipIf(!hasFiles)("pydicom's test files decode to pydicom's pixels, every frame", () => {
  it.each(Object.entries(reference.pydicom_test_files))('%s', async (name, want) => {
    const image = await readDicom(join(testFiles, name), { frames: 'all' });
    expect(image.header.transferSyntaxUid).toBe(want.transfer_syntax);
    expect(image.frames.length).toBe(want.frames.length);
    image.frames.forEach((frame, index) => {
      const stats = pixelStats(frame);
      expect(
        { shape: stats.shape, min: stats.min, max: stats.max, sum: stats.sum, sha256: stats.sha256 },
        `frame ${index}`,
      ).toEqual(want.frames[index]);
    });
  });
});
