import { FedcxrError } from '@fedcxr/base';
import { thrownMessage } from './errors.js';
import type { DicomHeader, DicomLut } from './parse.js';
import { readDicom, readDicomHeader } from './read.js';
import { type PixelStats, pixelStats } from './stats.js';

/** A LUT without its table, for printing. */
export interface LutSummary {
  entries: number;
  firstMapped: number;
  bitsPerEntry: number;
  type: string | null;
}

export type DicomInfo = { file: string } & Omit<DicomHeader, 'voiLutSequence' | 'modalityLutSequence'> & {
    voiLutSequence: LutSummary[] | null;
    modalityLutSequence: LutSummary[] | null;
    /** Stored pixels of frame 0, with `--stats` / `{ stats: true }`. */
    pixels?: PixelStats;
  };

export interface DicomInfoFailure {
  file: string;
  error: { code: string; message: string };
}

const summarize = (luts: DicomLut[] | null): LutSummary[] | null =>
  luts?.map(({ entries, firstMapped, bitsPerEntry, type }) => ({ entries, firstMapped, bitsPerEntry, type })) ?? null;

/** Header facts (and optionally stored-pixel statistics) of one file; failures are returned, not thrown. */
export async function dicomInfo(
  file: string,
  options: { stats?: boolean } = {},
): Promise<DicomInfo | DicomInfoFailure> {
  try {
    let header: DicomHeader;
    let pixels: PixelStats | undefined;
    if (options.stats) {
      const image = await readDicom(file);
      header = image.header;
      pixels = pixelStats(image.frames[0]);
    } else {
      header = await readDicomHeader(file);
    }
    const info: DicomInfo = {
      file,
      ...header,
      voiLutSequence: summarize(header.voiLutSequence),
      modalityLutSequence: summarize(header.modalityLutSequence),
    };
    if (pixels) info.pixels = pixels;
    return info;
  } catch (thrown) {
    if (thrown instanceof FedcxrError) return { file, error: { code: thrown.code, message: thrown.message } };
    return { file, error: { code: 'internal', message: `${file}: ${thrownMessage(thrown)}` } };
  }
}

export function isInfoFailure(value: DicomInfo | DicomInfoFailure): value is DicomInfoFailure {
  return 'error' in value;
}
