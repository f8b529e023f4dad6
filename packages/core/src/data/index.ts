/** Datasets: formats in, COCO out, masks to boxes, patient-level splits, statistics and checks (masks to boxes and
 * the seed classes live in `@fedcxr/base`, re-exported here). */
export {
  boxIou,
  DEFAULT_MASK_MIN_AREA,
  DEFAULT_MASK_THRESHOLD,
  type MaskBoxOptions,
  type MaskComponent,
  maskToBoxes,
  SEED_FINDING_CLASSES,
  SEED_NORMAL_CLASS,
  type SeedFindingClass,
} from '@fedcxr/base';
export { type CheckResult, checkDataset } from './check.js';
export { type CocoValidation, cocoErrors, readCocoFile, validateCoco } from './coco-validate.js';
export {
  type BoxColumns,
  COLUMN_ROLES,
  type ColumnRole,
  type LabelColumns,
  normalizeColumnName,
  parseColumnOverrides,
  resolveLabelColumns,
  rowBox,
} from './columns.js';
export { type CsvOptions, type CsvRow, type CsvTable, csvNumber, labelError, parseCsv } from './csv.js';
export { fileStem, isImageFile, listFiles, patientFromName } from './files.js';
export { type CocoParseOptions, parseCocoSource } from './formats/coco.js';
export { DATASET_FORMATS, type ParseSourceOptions, parseDatasetSource } from './formats/index.js';
export { NIH_BOX_FILE, NIH_ENTRY_FILE, NIH_NO_FINDING, type NihParseOptions, parseNih } from './formats/nih.js';
export { parseRsna, RSNA_CATEGORY, RSNA_CLASS_INFO_FILE, RSNA_LABELS_FILE } from './formats/rsna.js';
export { parseSeed, readSeedCsv, type SeedParseOptions } from './formats/seed.js';
export {
  parseVindr,
  readVindrCsv,
  VINDR_DEFAULT_FUSION_IOU,
  VINDR_NO_FINDING,
  type VindrParseOptions,
} from './formats/vindr.js';
export { parseVoc, parseVocXml, type VocParseOptions } from './formats/voc.js';
export { parseYolo, parseYoloLabels, type YoloParseOptions } from './formats/yolo.js';
export { type FusedBox, type FusionInput, weightedBoxesFusion } from './fusion.js';
export {
  cappedIssues,
  type DatasetFormat,
  type DatasetIssue,
  formatIssue,
  type IssueSeverity,
  issueAt,
  type SourceBox,
  type SourceDataset,
  type SourceItem,
} from './source.js';
export {
  countSplit,
  type DatasetSplit,
  patientOf,
  type SplitCounts,
  type SplitOptions,
  seededRandom,
  splitByPatient,
} from './split.js';
export {
  type DatasetStats,
  type Distribution,
  datasetStats,
  describeDistribution,
  type Histogram,
  statsHtml,
} from './stats.js';
