export const VERSION = '0.1.0';
// Backbones (importing the package registers resnet18_fpn, resnet50_fpn, resnet101_fpn, swin_t_fpn).
export * from './backbones/index.js';
// Faster R-CNN (importing the package registers the 'faster_rcnn' detector).
export * from './detector/index.js';
export {
  loadModelDir,
  MODEL_CARD_FILE,
  MODEL_WEIGHTS_FILE,
  type ModelCard,
  type ModelCardInput,
  type ModelDir,
  type ModelProvenance,
  type Preprocessing,
  readModelCard,
  saveModelDir,
  TORCHVISION_PREPROCESSING,
  validateCard,
} from './model-dir.js';
export { BoxCoder, batchedNms, boxIou, nms } from './ops/boxes.js';
export { type Permutation, randomPermutation } from './ops/matcher.js';
export { multiScaleRoiAlign, type RoiAlignOptions, roiAlign } from './ops/roi-align.js';
export {
  type DownloadOptions,
  type DownloadResult,
  downloadOfficialWeights,
  OFFICIAL_WEIGHTS,
  type OfficialWeights,
} from './weights/download.js';
export {
  ARCH_ALIASES,
  backboneForArch,
  type CheckpointLayout,
  COCO_CLASSES,
  type ConvertedCheckpoint,
  convertCheckpoint,
  dropBoxPredictor,
  type ImportOptions,
  type ImportSummary,
  importCheckpoint,
  readCheckpoint,
} from './weights/import.js';
export { findStateDict, PickledObject, parsePth, readPth } from './weights/pth.js';
