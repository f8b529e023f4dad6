import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DicomError } from './errors.js';
import { MUTATION_KINDS, type Mutation, mutate } from './mutations.js';
import { normalize } from './normalize.js';
import { readDicom } from './read.js';

const samples = join(dirname(fileURLToPath(import.meta.url)), '../../../../shared/data/dicom-samples');
const hasSamples = existsSync(join(samples, 'EXPECTED.json'));
if (!hasSamples) console.warn(`fuzz tests skipped: ${samples} not found`);

/** Small files covering every decoder path (native LE/BE/implicit, ACR-NEMA, RLE, JPEG 8/12-bit, JPEG-LS, J2K). */
const seeds = [
  'MR_small.dcm',
  'MR_small_bigendian.dcm',
  'MR_small_implicit.dcm',
  'MR_small_RLE.dcm',
  'MR_small_jpeg_ls_lossless.dcm',
  'MR_small_jp2klossless.dcm',
  'JPGExtended.dcm',
  'SC_rgb_jpeg_dcmtk.dcm',
  'SC_ybr_full_422_uncompressed.dcm',
  'CT_small.dcm',
];

const mutationArbitrary = fc.record({
  file: fc.integer({ min: 0, max: seeds.length - 1 }),
  kind: fc.constantFrom(...MUTATION_KINDS),
  at: fc.double({ min: 0, max: 0.999999, noNaN: true }),
  value: fc.integer({ min: 0, max: 0xffffffff }),
});

describe.skipIf(!hasSamples)('fuzzing the reader with mutated sample files (fixed seed)', () => {
  const originals = hasSamples ? seeds.map((name) => new Uint8Array(readFileSync(join(samples, name)))) : [];

  it('every mutated file decodes to consistent frames or fails with a DicomError naming it', async () => {
    const codes = new Map<string, number>();
    let decoded = 0;
    await fc.assert(
      fc.asyncProperty(mutationArbitrary, async ({ file, ...mutation }) => {
        const bytes = mutate(originals[file], mutation as Mutation);
        const name = `fuzz/${seeds[file]}`;
        try {
          const image = await readDicom(bytes, { file: name });
          const frame = image.frames[0];
          expect(frame.stored.length).toBe(frame.rows * frame.columns * frame.samplesPerPixel);
          if (frame.samplesPerPixel === 1 && image.header.photometricInterpretation?.startsWith('MONO')) {
            const out = normalize(image, 'window');
            expect(out.data.length).toBe(frame.rows * frame.columns);
          }
          decoded++;
        } catch (error) {
          if (!(error instanceof DicomError)) throw error;
          expect(error.message).toContain(name);
          // Internal slips (TypeError, RangeError) must not hide behind a DicomError code.
          expect(error.cause instanceof TypeError || error.cause instanceof RangeError, String(error.cause)).toBe(
            false,
          );
          codes.set(error.code, (codes.get(error.code) ?? 0) + 1);
        }
      }),
      { seed: 20261126, numRuns: 400 },
    );
    // The sample must exercise both outcomes.
    expect(decoded).toBeGreaterThan(20);
    expect(codes.size).toBeGreaterThanOrEqual(3);
  });

  it('every truncation of a JPEG 2000 and an RLE file is a DicomError, never a crash', async () => {
    for (const name of ['MR_small_jp2klossless.dcm', 'MR_small_RLE.dcm']) {
      const bytes = new Uint8Array(readFileSync(join(samples, name)));
      for (let cut = 0; cut < bytes.length; cut += 61) {
        const outcome = await readDicom(bytes.slice(0, cut), { file: name }).then(
          () => 'ok',
          (error: unknown) => (error instanceof DicomError ? error.code : `crash: ${String(error)}`),
        );
        expect(outcome.startsWith('crash'), `${name} cut at ${cut}: ${outcome}`).toBe(false);
      }
    }
  });
});
