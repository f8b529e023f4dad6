import { FedcxrError } from '@fedcxr/base';
import type { DatasetFormat, SourceDataset } from '../source.js';
import { type CocoParseOptions, parseCocoSource } from './coco.js';
import { type NihParseOptions, parseNih } from './nih.js';
import { parseRsna } from './rsna.js';
import { parseSeed, type SeedParseOptions } from './seed.js';
import { parseVindr, type VindrParseOptions } from './vindr.js';
import { parseVoc, type VocParseOptions } from './voc.js';
import { parseYolo, type YoloParseOptions } from './yolo.js';

export const DATASET_FORMATS: readonly DatasetFormat[] = ['seed', 'rsna', 'coco', 'voc', 'yolo', 'vindr', 'nih'];

export type ParseSourceOptions = SeedParseOptions &
  VocParseOptions &
  YoloParseOptions &
  CocoParseOptions &
  VindrParseOptions &
  NihParseOptions;

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
    case 'vindr':
      return parseVindr(src, options);
    case 'nih':
      return parseNih(src, options);
    default:
      throw new FedcxrError(
        'usage',
        `unknown dataset format "${String(format)}" (one of ${DATASET_FORMATS.join(', ')})`,
      );
  }
}
