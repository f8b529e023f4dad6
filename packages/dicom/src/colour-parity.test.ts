import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DicomError } from './errors.js';
import { readDicom, ybrFullToRgb } from './read.js';
import { pixelStats } from './stats.js';

/**
 * Colour and big-endian native files written by pydicom (tools/reference/dicom_colour_fixtures.py): RGB 8/16 bits,
 * YBR_FULL and YBR_FULL_422 8 bits, planar configuration 0 and 1, MONOCHROME1/2 8/16 bits, in implicit and
 * explicit VR little endian and explicit VR big endian (8-bit big endian both as OB and as OW), odd and even sizes,
 * some with 2 frames. Every frame must equal pydicom's default pixel_array exactly (YBR converted to RGB).
 */
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const folder = join(repoRoot, 'tools/reference/fixtures/dicom/colour');

interface FrameStats {
  shape: number[];
  min: number;
  max: number;
  sum: number;
  sha256: string;
  head: number[];
}
interface Entry {
  transfer_syntax: string;
  photometric: string;
  bits_allocated: number;
  planar_configuration: number | null;
  pixel_vr: string;
  rows: number;
  columns: number;
  frames?: FrameStats[];
  pydicom_error?: string;
}
const expected = JSON.parse(readFileSync(join(folder, 'expected.json'), 'utf8')) as {
  files: Record<string, Entry>;
  ybr_full_to_rgb_all: { sha256: string; boundary: number[][]; blas: string };
};
const decodable = Object.entries(expected.files).filter(([, entry]) => entry.frames);
const refused = Object.entries(expected.files).filter(([, entry]) => entry.pydicom_error);

describe("colour and big-endian files decode to pydicom's pixels", () => {
  it('covers every combination the generator writes', () => {
    const seen = new Set(decodable.map(([, e]) => `${e.photometric}/${e.bits_allocated}/${e.transfer_syntax}`));
    for (const photometric of ['RGB', 'YBR_FULL', 'YBR_FULL_422', 'MONOCHROME1', 'MONOCHROME2']) {
      for (const syntax of ['1.2.840.10008.1.2', '1.2.840.10008.1.2.1', '1.2.840.10008.1.2.2']) {
        expect(seen.has(`${photometric}/8/${syntax}`), `${photometric} 8-bit ${syntax}`).toBe(true);
        if (!photometric.startsWith('YBR')) {
          expect(seen.has(`${photometric}/16/${syntax}`), `${photometric} 16-bit ${syntax}`).toBe(true);
        }
      }
    }
    expect(decodable.length).toBeGreaterThanOrEqual(90);
  });

  it.each(decodable)('%s', async (name, want) => {
    const image = await readDicom(join(folder, name), { frames: 'all' });
    expect(image.header.transferSyntaxUid).toBe(want.transfer_syntax);
    const frames = want.frames ?? [];
    expect(image.frames.length).toBe(frames.length);
    image.frames.forEach((frame, index) => {
      const stats = pixelStats(frame);
      const got = { shape: stats.shape, min: stats.min, max: stats.max, sum: stats.sum, sha256: stats.sha256 };
      const head = Array.from(frame.stored.subarray(0, frames[index].head.length));
      expect({ ...got, head }, `frame ${index}`).toEqual(frames[index]);
    });
  });

  it.each(refused)('%s: refused, as pydicom refuses it', async (name, want) => {
    await expect(readDicom(join(folder, name)), want.pydicom_error).rejects.toBeInstanceOf(DicomError);
    await expect(readDicom(join(folder, name))).rejects.toMatchObject({ code: 'unsupported_pixel_format' });
  });
});

describe("YBR_FULL to RGB is pydicom's conversion for every (Y, Cb, Cr)", () => {
  it('the triples on a rounding boundary', () => {
    const { boundary } = expected.ybr_full_to_rgb_all;
    expect(boundary.length).toBeGreaterThan(0);
    const values = Int32Array.from(boundary.flatMap((row) => row.slice(0, 3)));
    ybrFullToRgb(values);
    expect(Array.from(values)).toEqual(boundary.flatMap((row) => row.slice(3)));
  });

  it(`all 2^24 triples (pydicom with ${expected.ybr_full_to_rgb_all.blas})`, () => {
    const hash = createHash('sha256');
    const chunk = 1 << 16;
    const values = new Int32Array(3 * chunk);
    const bytes = new Uint8Array(3 * chunk);
    for (let start = 0; start < 1 << 24; start += chunk) {
      for (let i = 0; i < chunk; i++) {
        const v = start + i;
        values[3 * i] = v >> 16;
        values[3 * i + 1] = (v >> 8) & 255;
        values[3 * i + 2] = v & 255;
      }
      ybrFullToRgb(values);
      bytes.set(values);
      hash.update(bytes);
    }
    expect(hash.digest('hex')).toBe(expected.ybr_full_to_rgb_all.sha256);
  });
});
