import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  modalityLut,
  normalize,
  normalizeResized,
  PRESETS,
  seedTransform,
  simplestColorBalance,
  windowTransform,
} from './normalize.js';
import type { DicomHeader } from './parse.js';
import { type DicomImage, readDicom } from './read.js';
import { resizeKeepAspect } from './resize.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const samplesDir = join(repoRoot, '../shared/data/dicom-samples');
const hasSamples = existsSync(join(samplesDir, 'EXPECTED.json'));
const rsnaDir = join(repoRoot, '../shared/data/rsna-pneumonia/dicom');
if (!hasSamples) console.warn(`dicom normalize tests on real files skipped: ${samplesDir} not found`);

const reference = JSON.parse(readFileSync(join(repoRoot, 'tools/reference/fixtures/dicom/reference.json'), 'utf8')) as {
  seed: Record<string, { mean: number; sum: number; stride: number; values: number[] }>;
};

function header(overrides: Partial<DicomHeader>): DicomHeader {
  return {
    bitsStored: 10,
    bitsAllocated: 16,
    photometricInterpretation: 'MONOCHROME1',
    windowCenter: null,
    windowWidth: null,
    voiLutFunction: null,
    voiLutSequence: null,
    modalityLutSequence: null,
    rescaleSlope: null,
    rescaleIntercept: null,
    ...overrides,
  } as DicomHeader;
}

function image(stored: number[], overrides: Partial<DicomHeader>, columns = stored.length): DicomImage {
  return {
    file: 'synthetic.dcm',
    header: header(overrides),
    frameCount: 1,
    frames: [{ rows: stored.length / columns, columns, samplesPerPixel: 1, stored: Int32Array.from(stored) }],
  };
}

const ramp = Array.from({ length: 1024 }, (_, i) => i);

describe('seed preset (PRODUCT.md formula)', () => {
  it('is exactly clip → −ln((1+x)/2^B) → clip(z/2.5) for a MONOCHROME1 image with WC/WW', () => {
    const wc = 550;
    const ww = 1024;
    const out = normalize(image(ramp, { windowCenter: [wc], windowWidth: [ww] }), 'seed').data;
    for (const x of ramp) {
      const clipped = Math.min(Math.max(x, wc - ww / 2), wc + ww / 2);
      const z = -Math.log((1 + clipped) / 2 ** 10);
      const c = Math.min(Math.max((z - 0) / (2.5 - 0), 0), 1);
      expect(out[x] === Math.fround(c), `x=${x}`).toBe(true);
    }
    // Spot values: the window's top maps to z = −ln(1063/1024) < 0 → 0; x = 100 → z ≈ 2.3 → ≈ 0.92.
    expect(out[1023]).toBe(0);
    expect(out[100]).toBeCloseTo(-Math.log(101 / 1024) / 2.5, 6);
    // x = 0 is clipped up to imin = 38 → z = −ln(39/1024) ≈ 3.27 > 2.5 → 1.
    expect(out[0]).toBe(1);
  });

  it('without WC/WW uses the full stored range [0, 2^B − 1] as the window', () => {
    const out = seedTransform(Int32Array.from(ramp), header({}));
    for (const x of [0, 1, 80, 500, 1023]) {
      expect(out[x] === Math.fround(Math.min(1, Math.max(0, -Math.log((1 + x) / 1024) / 2.5)))).toBe(true);
    }
  });

  it('mirrors MONOCHROME2 values and window so that the output keeps the MONOCHROME1 orientation', () => {
    const mono2 = normalize(
      image(ramp, { photometricInterpretation: 'MONOCHROME2', windowCenter: [400], windowWidth: [600] }),
      'seed',
    );
    const mirrored = ramp.map((x) => 1023 - x);
    const mono1 = normalize(image(mirrored, { windowCenter: [1023 - 400], windowWidth: [600] }), 'seed');
    expect(Array.from(mono2.data)).toEqual(Array.from(mono1.data));
    // Bright MONOCHROME2 pixels (high x) stay bright.
    expect(mono2.data[1000]).toBeGreaterThan(mono2.data[200]);
  });

  it('keeps the logarithm defined for windows reaching below zero (signed data)', () => {
    const out = seedTransform(Int32Array.from([-500, -1, 0, 10]), header({ windowCenter: [0], windowWidth: [2000] }));
    for (const v of out) expect(Number.isFinite(v)).toBe(true);
    expect(out[0]).toBe(out[2]);
  });

  it.skipIf(!hasSamples).each(Object.keys(reference.seed))('%s matches numpy float64 → float32', async (name) => {
    const want = reference.seed[name];
    const { data } = normalize(await readDicom(join(samplesDir, name)), 'seed');
    let sum = 0;
    for (const v of data) sum += v;
    expect(sum / data.length).toBeCloseTo(want.mean, 6);
    const picked = want.values.map((_, k) => data[k * want.stride]);
    let worst = 0;
    for (let k = 0; k < picked.length; k++) worst = Math.max(worst, Math.abs(picked[k] - want.values[k]));
    expect(worst).toBeLessThanOrEqual(1.2e-7);
  });
});

describe('window preset (standard chain)', () => {
  it('LINEAR, LINEAR_EXACT and SIGMOID follow PS3.3 C.11.2.1.2', () => {
    const values = Float64Array.from([0, 99, 100, 150, 200, 201, 300]);
    const linear = windowTransform(values, header({ windowCenter: [150], windowWidth: [101] }));
    // LINEAR: c' = 149.5, w' = 100 → 0 at ≤ 99.5, (x − 149.5)/100 + 0.5 between, 1 above 199.5.
    expect(Array.from(linear)).toEqual([0, 0, 0.005, 0.505, 1, 1, 1].map(Math.fround));
    const exact = windowTransform(
      values,
      header({ windowCenter: [150], windowWidth: [100], voiLutFunction: 'LINEAR_EXACT' }),
    );
    expect(Array.from(exact)).toEqual([0, 0, 0, 0.5, 1, 1, 1].map(Math.fround));
    const sigmoid = windowTransform(
      values,
      header({ windowCenter: [150], windowWidth: [100], voiLutFunction: 'SIGMOID' }),
    );
    expect(sigmoid[3]).toBeCloseTo(0.5, 6);
    expect(sigmoid[0]).toBeCloseTo(1 / (1 + Math.exp(6)), 6);
  });

  it('applies rescale slope/intercept, a Modality LUT sequence and a VOI LUT sequence', () => {
    expect(
      Array.from(modalityLut(Int32Array.from([0, 10]), header({ rescaleSlope: 2, rescaleIntercept: -1024 }))),
    ).toEqual([-1024, -1004]);
    const lut = { entries: 3, firstMapped: 5, bitsPerEntry: 8, data: Uint16Array.from([10, 20, 255]), type: null };
    expect(Array.from(modalityLut(Int32Array.from([0, 5, 6, 7, 99]), header({ modalityLutSequence: [lut] })))).toEqual([
      10, 10, 20, 255, 255,
    ]);
    const voi = windowTransform(
      Float64Array.from([5, 6, 7]),
      header({ voiLutSequence: [lut], windowCenter: [0], windowWidth: [1] }),
    );
    expect(Array.from(voi)).toEqual([10 / 255, 20 / 255, 1].map(Math.fround));
  });

  it('inverts MONOCHROME1 and falls back to min..max without a window', () => {
    const mono1 = normalize(image([0, 512, 1024], {}), 'window').data;
    expect(Array.from(mono1)).toEqual([1, 0.5, 0]);
    const mono2 = normalize(image([0, 512, 1024], { photometricInterpretation: 'MONOCHROME2' }), 'window').data;
    expect(Array.from(mono2)).toEqual([0, 0.5, 1]);
  });

  it.skipIf(!hasSamples)('matches pydicom apply_voi_lut(apply_modality_lut()) statistics on the samples', async () => {
    const expected = JSON.parse(readFileSync(join(samplesDir, 'EXPECTED.json'), 'utf8')) as Record<
      string,
      {
        modality_then_voi_index0?: {
          min: number;
          max: number;
          mean: number;
          pydicom_output_range: [number, number];
        } | null;
      }
    >;
    const checked: string[] = [];
    for (const [name, entry] of Object.entries(expected)) {
      const want = entry.modality_then_voi_index0;
      if (!want || name === '_meta') continue;
      const dicom = await readDicom(join(samplesDir, name));
      const unit = windowTransform(modalityLut(dicom.frames[0].stored, dicom.header), dicom.header);
      const [low, high] = want.pydicom_output_range;
      let min = Number.POSITIVE_INFINITY;
      let max = Number.NEGATIVE_INFINITY;
      let sum = 0;
      for (const v of unit) {
        const scaled = v * (high - low) + low;
        min = Math.min(min, scaled);
        max = Math.max(max, scaled);
        sum += scaled;
      }
      const tolerance = (high - low) * 2e-7;
      expect(Math.abs(min - want.min), name).toBeLessThanOrEqual(tolerance);
      expect(Math.abs(max - want.max), name).toBeLessThanOrEqual(tolerance);
      expect(Math.abs(sum / unit.length - want.mean), name).toBeLessThanOrEqual(tolerance + 1e-6);
      checked.push(name);
    }
    expect(checked.length).toBeGreaterThanOrEqual(3);
  });
});

describe('scb and minmax presets, colour', () => {
  it('scb saturates s1 % and s2 % of the pixels (IPOL 2011)', () => {
    const values = Array.from({ length: 100 }, (_, i) => i);
    const out = simplestColorBalance(values, 10, 10);
    // vmin = sorted[10] = 10, vmax = sorted[89] = 89.
    expect(out[10]).toBe(0);
    expect(out[89]).toBe(1);
    expect(out[49]).toBeCloseTo(39 / 79, 6);
    expect(out.filter((v) => v === 0).length).toBe(11);
    expect(out.filter((v) => v === 1).length).toBe(11);
  });

  it('minmax stretches to [0, 1]; every preset output stays inside [0, 1]', () => {
    const img = image([-100, 0, 300], {
      photometricInterpretation: 'MONOCHROME2',
      windowCenter: [0],
      windowWidth: [100],
    });
    expect(Array.from(normalize(img, 'minmax').data)).toEqual([0, 0.25, 1]);
    for (const preset of PRESETS) {
      for (const v of normalize(img, preset).data) expect(v >= 0 && v <= 1).toBe(true);
    }
  });

  it('turns RGB into BT.601 luma', () => {
    const rgb: DicomImage = {
      file: 'rgb.dcm',
      header: header({ photometricInterpretation: 'RGB', bitsStored: 8 }),
      frameCount: 1,
      frames: [{ rows: 1, columns: 2, samplesPerPixel: 3, stored: Int32Array.from([255, 0, 0, 255, 255, 255]) }],
    };
    const out = normalize(rgb, 'window');
    expect(out.data[0]).toBeCloseTo(0.299, 6);
    expect(out.data[1]).toBeCloseTo(1, 6);
  });
});

describe.skipIf(!hasSamples)('fast paths give the same floats as the per-pixel definitions', () => {
  it.each(['CR-MONO1-10-chest.dcm', 'CT_small.dcm', 'MR_small.dcm', 'JPEG2000.dcm', 'JPGExtended.dcm'])(
    '%s: table path = per-pixel path, normalizeResized = resizeKeepAspect(normalize)',
    async (name) => {
      const image = await readDicom(join(samplesDir, name));
      for (const preset of PRESETS) {
        const table = normalize(image, preset);
        const direct = normalize(image, preset, { perPixel: true });
        expect(Buffer.from(table.data.buffer).equals(Buffer.from(direct.data.buffer)), `${name} ${preset}`).toBe(true);
        const fused = normalizeResized(image, preset, 50);
        const twoStep = resizeKeepAspect(table, 50);
        expect(
          Buffer.from(fused.data.buffer).equals(Buffer.from(twoStep.data.buffer)),
          `${name} ${preset} resized`,
        ).toBe(true);
        expect(fused.transform).toEqual(twoStep.transform);
      }
    },
  );
});

describe.skipIf(!existsSync(rsnaDir))(
  'fast paths on RSNA 8-bit JPEG frames (1024² → 512, the integer-shrink path)',
  () => {
    it('normalizeResized = resizeKeepAspect(per-pixel normalize), bit for bit, for every preset', async () => {
      for (const name of ['000fe35a-2649-43d4-b027-e67796d412e0.dcm', '0022073f-cec8-42ec-ab5f-bc2314649235.dcm']) {
        const image = await readDicom(join(rsnaDir, name));
        for (const preset of PRESETS) {
          const fused = normalizeResized(image, preset, 512);
          const twoStep = resizeKeepAspect(normalize(image, preset, { perPixel: true }), 512);
          expect(Buffer.from(fused.data.buffer).equals(Buffer.from(twoStep.data.buffer)), `${name} ${preset}`).toBe(
            true,
          );
        }
      }
    });

    it('keeps the frames compact (Uint8Array), with the same floats as the same values in an Int32Array', async () => {
      const image = await readDicom(join(rsnaDir, '000fe35a-2649-43d4-b027-e67796d412e0.dcm'));
      const [frame] = image.frames;
      expect(frame.stored).toBeInstanceOf(Uint8Array);
      const wide: DicomImage = { ...image, frames: [{ ...frame, stored: Int32Array.from(frame.stored) }] };
      for (const preset of PRESETS) {
        const pairs = [
          [normalize(image, preset), normalize(wide, preset)],
          [normalizeResized(image, preset, 512), normalizeResized(wide, preset, 512)],
        ];
        for (const [a, b] of pairs) {
          expect(Buffer.from(a.data.buffer).equals(Buffer.from(b.data.buffer)), preset).toBe(true);
        }
      }
    });
  },
);
