import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeDicom } from '@fedcxr/dicom';
import { describe, expect, it } from 'vitest';
import { collectInputs, preparationFromCard, prepareInput } from './input.js';

describe('input preparation for predict and explain', () => {
  it('reads the importer settings from the model card, else the seed preset at full size', () => {
    expect(preparationFromCard({ preprocessing: { dicom: { preset: 'window', size: 512, letterbox: true } } })).toEqual(
      {
        preset: 'window',
        size: 512,
        letterbox: true,
      },
    );
    expect(preparationFromCard({ preprocessing: { normalization: 'seed-log' } })).toEqual({
      preset: 'seed',
      size: null,
      letterbox: false,
    });
    expect(preparationFromCard({})).toEqual({ preset: 'seed', size: null, letterbox: false });
  });

  it('resizes a DICOM as the importer did and maps boxes back to the original pixels', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'input-'));
    const file = join(dir, 'x.dcm');
    writeFileSync(
      file,
      encodeDicom({
        width: 200,
        height: 100,
        pixels: Uint16Array.from({ length: 200 * 100 }, (_, i) => i % 4096),
        bitsStored: 12,
        photometric: 'MONOCHROME1',
        windowCenter: 2048,
        windowWidth: 4096,
        patientId: 'P1',
        studyInstanceUid: '1.2.3',
        sopInstanceUid: '1.2.3.4',
      }),
    );
    const input = await prepareInput(file, { preset: 'seed', size: 100, letterbox: true });
    expect([input.image.width, input.image.height]).toEqual([100, 100]);
    expect([input.originalWidth, input.originalHeight]).toEqual([200, 100]);
    expect(input.toOriginal([10, 20, 50, 40])).toEqual([20, 40, 100, 80]);
    expect(input.source).toMatchObject({ studyInstanceUid: '1.2.3', sopInstanceUid: '1.2.3.4', patientId: 'P1' });
    expect(Math.max(...input.image.pixels)).toBeLessThanOrEqual(1);
    expect(await collectInputs([dir])).toEqual([file]);
  });

  it('names a file that is neither DICOM nor an image', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'input-'));
    const file = join(dir, 'notes.dcm');
    writeFileSync(file, 'hello');
    await expect(prepareInput(file, { preset: 'seed', size: null, letterbox: false })).rejects.toThrow(/notes\.dcm/);
  });
});
