import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DicomError } from './errors.js';
import { readDicom, readDicomHeader } from './read.js';
import { pixelStats } from './stats.js';

/** The shared real-data folder sits beside the repository root (../shared/data). */
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const samplesDir = join(repoRoot, '../shared/data/dicom-samples');
const hasSamples = existsSync(join(samplesDir, 'EXPECTED.json'));
if (!hasSamples) console.warn(`dicom samples tests skipped: ${samplesDir}/EXPECTED.json not found`);

interface ExpectedStats {
  shape: number[];
  min: number;
  max: number;
  mean: number;
  sum: number;
  sha256_int32_le_c: string;
}
type Expected = Record<string, unknown> & {
  pixel_array: ExpectedStats | null;
  reference_without_pydicom?: { stats: ExpectedStats } | null;
  pydicom_outcome: string;
  number_of_frames_invalid?: boolean;
};

const expected: Record<string, Expected> = hasSamples
  ? JSON.parse(readFileSync(join(samplesDir, 'EXPECTED.json'), 'utf8'))
  : {};
const entries = Object.entries(expected).filter(([name]) => name !== '_meta');

/** Files with no reference pixels must fail with exactly these codes. */
const expectedErrors: Record<string, string> = {
  'MR_truncated.dcm': 'truncated',
  'badVR.dcm': 'invalid_header',
  'rtplan.dcm': 'no_pixel_data',
};

describe.skipIf(!hasSamples)('every file of dicom-samples/EXPECTED.json', () => {
  it.each(entries)('%s: header facts as pydicom reads them', async (name, want) => {
    const file = join(samplesDir, name);
    if (want.number_of_frames_invalid) {
      await expect(readDicomHeader(file)).rejects.toMatchObject({ code: 'invalid_header' });
      return;
    }
    const header = await readDicomHeader(file);
    const facts = {
      transfer_syntax_uid: header.transferSyntaxUid,
      transfer_syntax_source:
        header.transferSyntaxSource === 'inferred' ? want.transfer_syntax_source : 'file meta (0002,0010)',
      has_preamble: header.hasPreamble,
      has_file_meta: header.hasFileMeta,
      modality: header.modality,
      patient_id: header.patientId,
      sop_class_uid: header.sopClassUid,
      photometric_interpretation: header.photometricInterpretation,
      rows: header.rows,
      columns: header.columns,
      samples_per_pixel: header.samplesPerPixel,
      bits_allocated: header.bitsAllocated,
      bits_stored: header.bitsStored,
      high_bit: header.highBit,
      pixel_representation: header.pixelRepresentation,
      planar_configuration: header.planarConfiguration,
      number_of_frames: header.numberOfFrames,
      window_center: header.windowCenter,
      window_width: header.windowWidth,
      voi_lut_function: header.voiLutFunction,
      rescale_slope: header.rescaleSlope,
      rescale_intercept: header.rescaleIntercept,
      rescale_type: header.rescaleType,
      pixel_intensity_relationship: header.pixelIntensityRelationship,
      pixel_intensity_relationship_sign: header.pixelIntensityRelationshipSign,
      lossy_image_compression: header.lossyImageCompression,
      has_voi_lut_sequence: header.voiLutSequence !== null,
      has_modality_lut_sequence: header.modalityLutSequence !== null,
      pixel_data_present: header.pixelDataPresent,
    };
    const reference = Object.fromEntries(Object.keys(facts).map((key) => [key, want[key]]));
    if (typeof reference.number_of_frames === 'string') reference.number_of_frames = Number(reference.number_of_frames);
    expect(facts).toEqual(reference);
    if (want.pixel_data_present) {
      expect(header.pixelDataEncapsulated).toBe(want.pixel_data_encapsulated);
      expect(header.pixelDataLength === 0xffffffff || header.pixelDataEncapsulated).toBe(
        want.pixel_data_encapsulated as boolean,
      );
    }
  });

  it.each(entries)('%s: stored pixels of frame 0 (hash, min, max, mean, sum) or a clear error', async (name, want) => {
    const file = join(samplesDir, name);
    const reference = want.pixel_array ?? want.reference_without_pydicom?.stats ?? null;
    const code = expectedErrors[name];
    if (code) {
      const error = await readDicom(file).catch((thrown: unknown) => thrown);
      expect(error).toBeInstanceOf(DicomError);
      expect((error as DicomError).code).toBe(code);
      expect((error as DicomError).message).toContain(name);
      return;
    }
    expect(reference, `${name} has reference pixels`).not.toBeNull();
    const image = await readDicom(file);
    const stats = pixelStats(image.frames[0]);
    const want6 = reference as ExpectedStats;
    expect(stats.shape).toEqual(want6.shape);
    expect({ min: stats.min, max: stats.max, sum: stats.sum, mean: stats.mean, sha256: stats.sha256 }).toEqual({
      min: want6.min,
      max: want6.max,
      sum: want6.sum,
      mean: want6.mean,
      sha256: want6.sha256_int32_le_c,
    });
  });

  it('the lossless MR_small variants decode to exactly the pixels of MR_small.dcm', async () => {
    const base = pixelStats((await readDicom(join(samplesDir, 'MR_small.dcm'))).frames[0]);
    const variants = entries.map(([name]) => name).filter((name) => /^MR_small_/.test(name));
    expect(variants.length).toBeGreaterThanOrEqual(5);
    for (const name of variants) {
      const stats = pixelStats((await readDicom(join(samplesDir, name))).frames[0]);
      expect(stats.sha256, name).toBe(base.sha256);
    }
  });
});
