import { FedcxrError } from '../../errors.js';
import type { DatasetFormat, SourceDataset } from '../source.js';
import { type CocoParseOptions, parseCocoSource } from './coco.js';
import { parseRsna } from './rsna.js';
import { parseSeed, type SeedParseOptions } from './seed.js';
import { parseVoc, type VocParseOptions } from './voc.js';
import { parseYolo, type YoloParseOptions } from './yolo.js';

export const DATASET_FORMATS: readonly DatasetFormat[] = ['seed', 'rsna', 'coco', 'voc', 'yolo'];

export type ParseSourceOptions = SeedParseOptions & VocParseOptions & YoloParseOptions & CocoParseOptions;

/** Reads a dataset in any supported format: `src` is the export folder, or the JSON file for `coco`. */
export async function parseDatasetSource(
  format: DatasetFormat,
  src: string,
  options: ParseSourceOptions = {},
): Promise<SourceDataset> {
  switch (format) {
    case 'seed':
      return parseSeed(src, options);
    case 'rsna':
      return parseRsna(src);
    case 'coco':
      return parseCocoSource(src, options);
    case 'voc':
      return parseVoc(src, options);
    case 'yolo':
      return parseYolo(src, options);
    default:
      throw new FedcxrError(
        'usage',
        `unknown dataset format "${String(format)}" (one of ${DATASET_FORMATS.join(', ')})`,
      );
  }
}
