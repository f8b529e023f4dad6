export const VERSION = '0.1.0';
// The model directory format lives in core (training writes it too); re-exported for this package's users.
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
} from '@fedcxr/core';
// Backbones (importing the package registers resnet18_fpn, resnet50_fpn, resnet101_fpn, swin_t_fpn).
export * from './backbones/index.js';
// Faster R-CNN (importing the package registers the 'faster_rcnn' detector).
export * from './detector/index.js';
export { ABLATION_VALUE, ablationCam, type BoxScoreTarget, boxScore } from './explain/ablation-cam.js';
export { concatenateLevels, eigenCam, firstComponentProjection, scaleCam } from './explain/eigencam.js';
export { type OcclusionOptions, type OcclusionResult, occlusionSensitivity } from './explain/occlusion.js';
export {
  CAM_GRIDS,
  CAM_METHODS,
  type CamGrid,
  type CamMethod,
  type ExplainOptions,
  type Explanation,
  explainDetections,
  renormalizeCamInBoxes,
} from './explain/pipeline.js';
export { type LoadedDetector, loadDetector } from './load.js';
export { type ExportedGraphs, exportFasterRcnnToOnnx, FPN_LEVELS, type ResnetFpnArchitecture } from './onnx/export.js';
export {
  type BatchMeta,
  boxHeadPath,
  type NetworkOutputs,
  ONNX_CARD_KEY,
  ONNX_SETTINGS_KEY,
  OnnxFasterRcnn,
  type OnnxLoadOptions,
  readOnnxMetadata,
  rpnHeadPath,
} from './onnx/runtime.js';
export { exportableDepth, writeOnnxExport } from './onnx/write.js';
export { BoxCoder, batchedNms, boxIou, nms } from './ops/boxes.js';
export { type Permutation, randomPermutation } from './ops/matcher.js';
export { multiScaleRoiAlign, type RoiAlignOptions, roiAlign } from './ops/roi-align.js';
export {
  type DownloadOptions,
  type DownloadResult,
  downloadOfficialWeights,
  type OfficialWeights,
  officialWeights,
  weightsForFile,
} from './weights/download.js';
export {
  archAliases,
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
export { BACKBONE_WEIGHTS, FASTER_RCNN_WEIGHTS } from './weights/known.js';
export { findStateDict, PickledObject, parsePth, readPth } from './weights/pth.js';
