import { FedcxrError } from '@fedcxr/base';
import { DicomError } from './errors.js';
import type { DicomHeader, DicomLut } from './parse.js';
import type { DicomFrame, DicomImage, StoredValues } from './read.js';
import { type ResizedImage, type ResizeOptions, resizeKeepAspect, resizeLookup } from './resize.js';
import { valueRange } from './value-range.js';

/** A grey image with values in [0, 1], row-major. */
export interface NormalizedImage {
  data: Float32Array;
  width: number;
  height: number;
}

export const PRESETS = ['seed', 'window', 'scb', 'minmax'] as const;
export type PresetName = (typeof PRESETS)[number];

export interface NormalizeOptions {
  /** Frame index within `image.frames` (default 0). */
  frame?: number;
  /** Which Window Center/Width pair (or VOI LUT item) to use (default 0). */
  windowIndex?: number;
  /** `seed`: lower end of the simplest colour balance after the log (default 0). */
  vmin?: number;
  /** `seed`: upper end (default 2.5). */
  vmax?: number;
  /** `scb`: percent of pixels saturated at the dark end (default 1). */
  s1?: number;
  /** `scb`: percent of pixels saturated at the bright end (default 1). */
  s2?: number;
  /** Compute every pixel separately instead of through a per-value table (same result; slower; for checks). */
  perPixel?: boolean;
}

export function isPresetName(name: string): name is PresetName {
  return (PRESETS as readonly string[]).includes(name);
}

/**
 * Turns stored values into a display-ready grey Float32 image in [0, 1] by a named preset:
 *
 * - `window`: the standard DICOM chain: Modality LUT (LUT sequence, else rescale slope/intercept) →
 *   VOI (VOI LUT sequence if present, as pydicom prefers; else Window Center/Width with VOI LUT Function
 *   LINEAR, LINEAR_EXACT or SIGMOID; with neither, the min..max of the modality values) → MONOCHROME1 inverted.
 * - `seed`: the seed study's transform, exactly: imin = WC − WW/2, imax = WC + WW/2, x = clip(stored, imin, imax),
 *   z = −ln((1 + x) / 2^B) (B = Bits Stored), c = clip((z − vmin)/(vmax − vmin), 0, 1), vmin 0, vmax 2.5.
 *   It works on stored values and was made for MONOCHROME1 images (high stored value = dark), where its
 *   output has bones bright. Documented choices beyond the formula:
 *   without WC/WW the window is the full stored range [0, 2^B − 1]; for MONOCHROME2 the stored values and the
 *   window are mirrored first (x → 2^B − 1 − x) so that the output keeps the same orientation (bones bright);
 *   x is also kept ≥ 0 so the logarithm is defined for signed data.
 * - `scb`: Modality LUT, then simplest colour balance (IPOL 2011): saturate s1 % of pixels at 0 and s2 % at 1,
 *   stretch linearly between; MONOCHROME1 inverted.
 * - `minmax`: Modality LUT, then (v − min)/(max − min); MONOCHROME1 inverted.
 *
 * Colour images (RGB, or YBR converted to RGB on reading) are turned to grey by ITU-R BT.601 luma
 * (0.299 R + 0.587 G + 0.114 B) and have no Modality LUT or VOI: `window` and `seed` then divide the luma by
 * 2^B − 1, `scb` and `minmax` stretch it as above.
 */
export function normalize(image: DicomImage, preset: PresetName, options: NormalizeOptions = {}): NormalizedImage {
  const frame = image.frames[options.frame ?? 0];
  if (!frame) {
    throw new DicomError('invalid_header', `frame ${options.frame ?? 0} was not decoded`, { file: image.file });
  }
  const { header } = image;
  const width = frame.columns;
  const height = frame.rows;
  const bits = header.bitsStored ?? header.bitsAllocated ?? 8;
  const photometric = (header.photometricInterpretation ?? 'MONOCHROME2').toUpperCase();
  if (frame.samplesPerPixel === 3) return { data: normalizeColour(frame, preset, bits, options), width, height };
  if (photometric === 'PALETTE COLOR') {
    throw new DicomError('unsupported_pixel_format', 'PALETTE COLOR images cannot be normalized to grey', {
      file: image.file,
    });
  }
  const invert = photometric === 'MONOCHROME1';
  if (!isPresetName(preset)) {
    throw new FedcxrError('invalid_option', `unknown preset ${String(preset)} (use ${PRESETS.join(', ')})`);
  }
  const table = options.perPixel ? null : presetTable(frame.stored, header, preset, options, invert);
  if (!table) return { data: normalizeDirect(frame.stored, header, preset, options, invert), width, height };
  const { stored } = frame;
  const out = new Float32Array(stored.length);
  const { values, offset } = table;
  for (let i = 0; i < stored.length; i++) out[i] = values[stored[i] - offset];
  return { data: out, width, height };
}

/**
 * normalize + resizeKeepAspect in one go, without materializing the full-size normalized image when the preset
 * is a per-value table (the usual case). The result is identical to `resizeKeepAspect(normalize(...), size)`.
 */
export function normalizeResized(
  image: DicomImage,
  preset: PresetName,
  size: number,
  options: NormalizeOptions & ResizeOptions = {},
): ResizedImage {
  const frame = image.frames[options.frame ?? 0];
  const photometric = (image.header.photometricInterpretation ?? 'MONOCHROME2').toUpperCase();
  const table =
    frame && frame.samplesPerPixel === 1 && photometric !== 'PALETTE COLOR' && isPresetName(preset) && !options.perPixel
      ? presetTable(frame.stored, image.header, preset, options, photometric === 'MONOCHROME1')
      : null;
  if (!table) return resizeKeepAspect(normalize(image, preset, options), size, options);
  return resizeLookup(frame.stored, table.offset, table.values, frame.columns, frame.rows, size, options);
}

/** Per-pixel path for stored ranges too wide for a table. */
function normalizeDirect(
  stored: StoredValues,
  header: DicomHeader,
  preset: PresetName,
  options: NormalizeOptions,
  invert: boolean,
): Float32Array {
  let data: Float32Array;
  if (preset === 'seed') return seedTransform(stored, header, options, invert);
  if (preset === 'window') data = windowTransform(modalityLut(stored, header), header, options);
  else if (preset === 'scb') data = simplestColorBalance(modalityLut(stored, header), options.s1 ?? 1, options.s2 ?? 1);
  else data = minMax(modalityLut(stored, header));
  if (invert) for (let i = 0; i < data.length; i++) data[i] = 1 - data[i];
  return data;
}

interface IntegerDomain {
  min: number;
  max: number;
  /** How many pixels hold each value min..max (computed on first use: only min..max and scb need it). */
  counts(): Uint32Array;
}

/** Stored values span at most this many integers → every preset is computed once per value and looked up. */
const MAX_TABLE = 1 << 22;

/** Value counts of a frame, cached because presets are often computed several times from one decoded frame. */
const domainCache = new WeakMap<StoredValues, IntegerDomain | null>();

function integerDomain(stored: StoredValues): IntegerDomain | null {
  const cached = domainCache.get(stored);
  if (cached !== undefined) return cached;
  const { min, max } = valueRange(stored);
  let domain: IntegerDomain | null = null;
  if (stored.length > 0 && max - min + 1 <= MAX_TABLE) {
    let counts: Uint32Array | null = null;
    domain = {
      min,
      max,
      counts() {
        if (!counts) {
          counts = new Uint32Array(max - min + 1);
          for (let i = 0; i < stored.length; i++) counts[stored[i] - min]++;
        }
        return counts;
      },
    };
  }
  domainCache.set(stored, domain);
  return domain;
}

/**
 * The preset as a table over every stored value between the frame's min and max, or null when that range is too
 * wide. Same results as normalizeDirect, bit for bit (the same array functions run on the table of candidate
 * values), but each value is transformed once: a 1024² 8-bit radiograph needs 256 logarithms, not a million.
 */
function presetTable(
  stored: StoredValues,
  header: DicomHeader,
  preset: PresetName,
  options: NormalizeOptions,
  invert: boolean,
): { values: Float32Array; offset: number } | null {
  const domain = integerDomain(stored);
  if (!domain) return null;
  const { min, max } = domain;
  const values = new Int32Array(max - min + 1);
  for (let k = 0; k < values.length; k++) values[k] = min + k;
  let table: Float32Array;
  if (preset === 'seed') {
    table = seedTransform(values, header, options, invert);
  } else {
    const modal = modalityLut(values, header);
    const index = options.windowIndex ?? 0;
    const hasVoi =
      header.voiLutSequence !== null ||
      ((header.windowCenter?.[index] ?? header.windowCenter?.[0]) !== undefined &&
        (header.windowWidth?.[index] ?? header.windowWidth?.[0] ?? 0) > 0);
    if (preset === 'window' && hasVoi) {
      table = windowTransform(modal, header, options);
    } else {
      // min..max and simplest colour balance look at the values present, weighted by their counts.
      let low: number;
      let high: number;
      if (preset !== 'scb' && header.modalityLutSequence === null) {
        // A linear rescale maps the extreme stored values (both present) onto the extreme modality values.
        low = Math.min(modal[0], modal[modal.length - 1]);
        high = Math.max(modal[0], modal[modal.length - 1]);
      } else {
        const present: Array<[number, number]> = [];
        const counts = domain.counts();
        for (let k = 0; k < counts.length; k++) if (counts[k] > 0) present.push([modal[k], counts[k]]);
        present.sort((a, b) => a[0] - b[0]);
        low = present[0][0];
        high = present[present.length - 1][0];
      }
      if (preset === 'scb') {
        const present: Array<[number, number]> = [];
        const counts = domain.counts();
        for (let k = 0; k < counts.length; k++) if (counts[k] > 0) present.push([modal[k], counts[k]]);
        present.sort((a, b) => a[0] - b[0]);
        const s1 = options.s1 ?? 1;
        const s2 = options.s2 ?? 1;
        checkSaturations(s1, s2);
        low = valueAtRank(present, Math.floor((stored.length * s1) / 100));
        high = valueAtRank(present, Math.max(0, Math.ceil((stored.length * (100 - s2)) / 100) - 1));
      }
      table = stretch(modal, low, high);
    }
    if (invert) for (let k = 0; k < table.length; k++) table[k] = 1 - table[k];
  }
  return { values: table, offset: min };
}

function valueAtRank(sortedWithCounts: Array<[number, number]>, rank: number): number {
  let seen = 0;
  for (const [value, count] of sortedWithCounts) {
    seen += count;
    if (rank < seen) return value;
  }
  return sortedWithCounts[sortedWithCounts.length - 1][0];
}

function checkSaturations(s1: number, s2: number): void {
  if (s1 < 0 || s2 < 0 || s1 + s2 >= 100) {
    throw new FedcxrError('invalid_option', `scb saturations s1=${s1} s2=${s2} must be ≥ 0 and sum < 100`);
  }
}

/** The seed transform; see `normalize`. Exported for tests against the formula. */
export function seedTransform(
  stored: StoredValues,
  header: Pick<
    DicomHeader,
    'bitsStored' | 'bitsAllocated' | 'windowCenter' | 'windowWidth' | 'photometricInterpretation'
  >,
  options: Pick<NormalizeOptions, 'vmin' | 'vmax' | 'windowIndex'> = {},
  monochrome1 = (header.photometricInterpretation ?? '').toUpperCase() === 'MONOCHROME1',
): Float32Array {
  const bits = header.bitsStored ?? header.bitsAllocated ?? 16;
  const top = 2 ** bits - 1;
  const index = options.windowIndex ?? 0;
  const center = header.windowCenter?.[index] ?? header.windowCenter?.[0];
  const width = header.windowWidth?.[index] ?? header.windowWidth?.[0];
  let low = 0;
  let high = top;
  if (center !== undefined && width !== undefined) {
    low = center - width / 2;
    high = center + width / 2;
  }
  const mirror = !monochrome1;
  if (mirror) [low, high] = [top - high, top - low];
  low = Math.max(low, 0);
  high = Math.max(high, low);
  const vmin = options.vmin ?? 0;
  const vmax = options.vmax ?? 2.5;
  const range = 2 ** bits;
  const out = new Float32Array(stored.length);
  for (let i = 0; i < stored.length; i++) {
    let x = mirror ? top - stored[i] : stored[i];
    x = x < low ? low : x > high ? high : x;
    const z = -Math.log((1 + x) / range);
    const c = (z - vmin) / (vmax - vmin);
    out[i] = c > 0 ? (c > 1 ? 1 : c) : 0;
  }
  return out;
}

/** Stored → modality values: the first Modality LUT Sequence item, else rescale slope/intercept, else identity. */
export function modalityLut(
  stored: StoredValues,
  header: Pick<DicomHeader, 'modalityLutSequence' | 'rescaleSlope' | 'rescaleIntercept'>,
): Float64Array {
  const out = new Float64Array(stored.length);
  const lut = header.modalityLutSequence?.[0];
  if (lut) {
    for (let i = 0; i < stored.length; i++) out[i] = lookup(lut, stored[i]);
    return out;
  }
  const slope = header.rescaleSlope ?? 1;
  const intercept = header.rescaleIntercept ?? 0;
  for (let i = 0; i < stored.length; i++) out[i] = stored[i] * slope + intercept;
  return out;
}

function lookup(lut: DicomLut, value: number): number {
  let index = Math.round(value) - lut.firstMapped;
  if (index < 0) index = 0;
  else if (index >= lut.entries) index = lut.entries - 1;
  return lut.data[index];
}

/** VOI stage of the `window` preset, output in [0, 1] (before MONOCHROME1 inversion). */
export function windowTransform(
  values: Float64Array,
  header: Pick<DicomHeader, 'voiLutSequence' | 'windowCenter' | 'windowWidth' | 'voiLutFunction'>,
  options: Pick<NormalizeOptions, 'windowIndex'> = {},
): Float32Array {
  const index = options.windowIndex ?? 0;
  const out = new Float32Array(values.length);
  const lut = header.voiLutSequence?.[index] ?? header.voiLutSequence?.[0];
  if (lut) {
    const scale = 1 / (2 ** lut.bitsPerEntry - 1);
    for (let i = 0; i < values.length; i++) out[i] = Math.min(1, lookup(lut, values[i]) * scale);
    return out;
  }
  const center = header.windowCenter?.[index] ?? header.windowCenter?.[0];
  const width = header.windowWidth?.[index] ?? header.windowWidth?.[0];
  if (center === undefined || width === undefined || width <= 0) return minMax(values);
  const fn = (header.voiLutFunction ?? 'LINEAR').toUpperCase();
  if (fn === 'SIGMOID') {
    for (let i = 0; i < values.length; i++) out[i] = 1 / (1 + Math.exp((-4 * (values[i] - center)) / width));
    return out;
  }
  // LINEAR (PS3.3 C.11.2.1.2.1) shifts the centre by 0.5 and narrows the width by 1; LINEAR_EXACT does not.
  const exact = fn === 'LINEAR_EXACT' || width < 1;
  const c = exact ? center : center - 0.5;
  const w = exact ? width : width - 1;
  const below = c - w / 2;
  const above = c + w / 2;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    out[i] = v <= below ? 0 : v > above ? 1 : (v - c) / w + 0.5;
  }
  return out;
}

export function minMax(values: ArrayLike<number>): Float32Array {
  let low = Number.POSITIVE_INFINITY;
  let high = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < values.length; i++) {
    if (values[i] < low) low = values[i];
    if (values[i] > high) high = values[i];
  }
  return stretch(values, low, high);
}

function stretch(values: ArrayLike<number>, low: number, high: number): Float32Array {
  const out = new Float32Array(values.length);
  const span = high - low;
  if (!(span > 0)) return out;
  for (let i = 0; i < values.length; i++) {
    const c = (values[i] - low) / span;
    out[i] = c > 0 ? (c > 1 ? 1 : c) : 0;
  }
  return out;
}

/**
 * Simplest colour balance (Limare et al., IPOL 2011): vmin is the value below which s1 % of the pixels lie,
 * vmax the value above which s2 % lie (order statistics of the sorted values); stretch and clip to [0, 1].
 */
export function simplestColorBalance(values: ArrayLike<number>, s1: number, s2: number): Float32Array {
  const n = values.length;
  if (n === 0) return new Float32Array(0);
  checkSaturations(s1, s2);
  const sorted = Float64Array.from(values).sort();
  const low = sorted[Math.floor((n * s1) / 100)];
  const high = sorted[Math.max(0, Math.ceil((n * (100 - s2)) / 100) - 1)];
  return stretch(values, low, high);
}

function normalizeColour(frame: DicomFrame, preset: PresetName, bits: number, options: NormalizeOptions): Float32Array {
  const pixels = frame.rows * frame.columns;
  const luma = new Float64Array(pixels);
  const s = frame.stored;
  for (let i = 0; i < pixels; i++) luma[i] = 0.299 * s[3 * i] + 0.587 * s[3 * i + 1] + 0.114 * s[3 * i + 2];
  if (preset === 'scb') return simplestColorBalance(luma, options.s1 ?? 1, options.s2 ?? 1);
  if (preset === 'minmax') return minMax(luma);
  return stretch(luma, 0, 2 ** bits - 1);
}
