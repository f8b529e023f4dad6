import { createHash } from 'node:crypto';
import { endianness } from 'node:os';
import type { DicomFrame } from './read.js';

/** Stored-pixel statistics exactly as dicom-samples/EXPECTED.json defines them. */
export interface PixelStats {
  /** [rows, columns] or [rows, columns, samples], as numpy's shape. */
  shape: number[];
  min: number;
  max: number;
  /** Mean rounded to 6 decimals. */
  mean: number;
  /** Exact integer sum (a number: exact up to 2^53). */
  sum: number;
  /** sha256 of the values as int32 little-endian (whatever array holds them), row-major, samples interleaved. */
  sha256: string;
}

export function pixelStats(frame: DicomFrame): PixelStats {
  const values = frame.stored instanceof Int32Array ? frame.stored : Int32Array.from(frame.stored);
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
  }
  let bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  if (endianness() === 'BE') {
    const copy = new Uint8Array(values.length * 4);
    const view = new DataView(copy.buffer);
    for (let i = 0; i < values.length; i++) view.setInt32(4 * i, values[i], true);
    bytes = copy;
  }
  const shape =
    frame.samplesPerPixel === 1 ? [frame.rows, frame.columns] : [frame.rows, frame.columns, frame.samplesPerPixel];
  return {
    shape,
    min,
    max,
    mean: Math.round((sum / values.length) * 1e6) / 1e6,
    sum,
    sha256: createHash('sha256').update(bytes).digest('hex'),
  };
}
