import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { type DicomImageToWrite, encodeDicom, uidFromText } from './write.js';

// Files this writer produced, read back by pydicom (tools/reference/dataset_dicom_write_check.py wrote
// expected.json). Encoding the same input must give the same bytes, so pydicom's verdict stays valid.
// Regenerate with FEDCXR_REGENERATE_FIXTURES=1, then rerun the Python script.
const fixtures = fileURLToPath(new URL('../../../tools/reference/fixtures/dataset/dicom-write/', import.meta.url));

function ramp(width: number, height: number, bits: number): Uint16Array {
  const pixels = new Uint16Array(width * height);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 2654435761) % 2 ** bits;
  return pixels;
}

const cases: Record<string, DicomImageToWrite> = {
  'mono1_12bit_log.dcm': {
    width: 13,
    height: 7,
    pixels: ramp(13, 7, 12),
    bitsStored: 12,
    photometric: 'MONOCHROME1',
    windowCenter: 2047.5,
    windowWidth: 3001,
    pixelIntensityRelationship: 'LOG',
    patientId: 'PHANTOM007',
    instanceNumber: 3,
    studyDate: '20260101',
  },
  'mono2_16bit.dcm': {
    width: 8,
    height: 6,
    pixels: ramp(8, 6, 16),
    patientId: 'P1',
    patientName: 'Doe^Jane',
    studyInstanceUid: '1.2.3.4',
    seriesInstanceUid: '1.2.3.4.5',
    sopInstanceUid: '1.2.3.4.5.6',
    modality: 'DX',
  },
};

describe('encodeDicom', () => {
  for (const [name, image] of Object.entries(cases)) {
    it(`${name}: same bytes as the file pydicom read`, async () => {
      const bytes = encodeDicom(image);
      if (process.env.FEDCXR_REGENERATE_FIXTURES) await writeFile(join(fixtures, name), bytes);
      expect(Buffer.compare(Buffer.from(bytes), await readFile(join(fixtures, name)))).toBe(0);
    });
  }

  it('pydicom read every tag and pixel as written', async () => {
    const seen = JSON.parse(await readFile(join(fixtures, 'expected.json'), 'utf8')) as Record<
      string,
      Record<string, unknown>
    >;
    const mono1 = seen['mono1_12bit_log.dcm'];
    expect(mono1).toMatchObject({
      TransferSyntaxUID: '1.2.840.10008.1.2.1',
      SOPClassUID: '1.2.840.10008.5.1.4.1.1.1',
      Modality: 'CR',
      BodyPartExamined: 'CHEST',
      PatientID: 'PHANTOM007',
      PhotometricInterpretation: 'MONOCHROME1',
      Rows: 7,
      Columns: 13,
      BitsAllocated: 16,
      BitsStored: 12,
      HighBit: 11,
      PixelRepresentation: 0,
      SamplesPerPixel: 1,
      WindowCenter: 2047.5,
      WindowWidth: 3001,
      PixelIntensityRelationship: 'LOG',
      InstanceNumber: 3,
      StudyDate: '20260101',
    });
    expect(mono1.SOPInstanceUID).toBe(mono1.MediaStorageSOPInstanceUID);
    expect(mono1.pixels).toEqual(Array.from(cases['mono1_12bit_log.dcm'].pixels));
    const mono2 = seen['mono2_16bit.dcm'];
    expect(mono2).toMatchObject({
      PhotometricInterpretation: 'MONOCHROME2',
      BitsStored: 16,
      PatientName: 'Doe^Jane',
      StudyInstanceUID: '1.2.3.4',
      SeriesInstanceUID: '1.2.3.4.5',
      SOPInstanceUID: '1.2.3.4.5.6',
      Modality: 'DX',
    });
    expect(mono2.pixels).toEqual(Array.from(cases['mono2_16bit.dcm'].pixels));
    expect(mono2.WindowCenter).toBeNull();
  });

  it('derives stable, valid UIDs', () => {
    expect(uidFromText('a')).toBe(uidFromText('a'));
    expect(uidFromText('a')).not.toBe(uidFromText('b'));
    expect(uidFromText('a')).toMatch(/^2\.25\.[1-9][0-9]*$/);
    expect(uidFromText('a').length).toBeLessThanOrEqual(64);
  });

  it('refuses pixels outside BitsStored, a wrong pixel count, and a bad UID', () => {
    const base = cases['mono1_12bit_log.dcm'];
    expect(() => encodeDicom({ ...base, pixels: new Uint16Array(91).fill(4096) })).toThrow(/outside the 12-bit/);
    expect(() => encodeDicom({ ...base, pixels: new Uint16Array(5) })).toThrow(/expected 91 pixels/);
    expect(() => encodeDicom({ ...base, sopInstanceUid: '1.2.x' })).toThrow(/not a valid UID/);
    expect(() => encodeDicom({ ...base, windowWidth: undefined })).toThrow(/go together/);
  });
});
