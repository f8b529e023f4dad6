export const VERSION = '0.1.0';
export { preloadCodecs } from './codecs.js';
export {
  type BatchOptions,
  type ConvertFailure,
  type ConvertJob,
  type ConvertManifest,
  type ConvertOptions,
  type ConvertSuccess,
  convertBatch,
  convertOne,
  encodeGrey,
  OUTPUT_FORMATS,
  type OutputFormat,
  planConversion,
} from './convert.js';
export {
  type DicomJson,
  DicomwebClient,
  type DicomwebClientOptions,
  DicomwebError,
  type DicomwebErrorCode,
  isDicomDate,
  jsonString,
  jsonStrings,
  nonImageSopClass,
  referencedInstances,
  type StoreResult,
  type StudySearch,
  TAGS as DICOM_JSON_TAGS,
} from './dicomweb/index.js';
export { DicomError, type DicomErrorCode } from './errors.js';
export { GSPS_SOP_CLASS, type GspsSourceImage, writeDetectionGsps } from './gsps.js';
export { type DicomInfo, type DicomInfoFailure, dicomInfo, isInfoFailure, type LutSummary } from './info.js';
export {
  isPresetName,
  minMax,
  modalityLut,
  type NormalizedImage,
  type NormalizeOptions,
  normalize,
  normalizeResized,
  PRESETS,
  type PresetName,
  seedTransform,
  simplestColorBalance,
  windowTransform,
} from './normalize.js';
export type { DicomHeader, DicomLut } from './parse.js';
export {
  generateChestPhantom,
  PHANTOM_BITS_STORED,
  PHANTOM_CLASSES,
  type PhantomFindingStyle,
  type PhantomImage,
  type PhantomOptions,
  type PhantomSummary,
} from './phantom.js';
export {
  type DicomFrame,
  type DicomImage,
  type ReadDicomOptions,
  readDicom,
  readDicomHeader,
  type StoredValues,
} from './read.js';
export {
  type Box,
  boxToOriginal,
  boxToResized,
  pointToOriginal,
  type ResizedImage,
  type ResizeOptions,
  type ResizeTransform,
  resizeKeepAspect,
  resizeLookup,
  resizeRows,
  resizeTransform,
} from './resize.js';
export {
  COMPREHENSIVE_SR_SOP_CLASS,
  newUid,
  SR_SERIES_DESCRIPTION,
  type SrFinding,
  type SrOptions,
  type SrSourceImage,
  writeDetectionSr,
} from './sr.js';
export { type PixelStats, pixelStats } from './stats.js';
export { type PixelEncoding, type TransferSyntax, transferSyntax } from './transfer-syntax.js';
export {
  CR_IMAGE_STORAGE,
  type DicomImageToWrite,
  EXPLICIT_VR_LITTLE_ENDIAN,
  encodeDicom,
  FEDCXR_IMPLEMENTATION_UID,
  uidFromText,
  writeDicom,
} from './write.js';
