export const VERSION = '0.1.0';

// Every name of @fedcxr/base (errors, rasters, atomic writes, Rng, masks to boxes, the seed classes), so code that
// imports them from core keeps working; VERSION stays core's own (a local export wins over a star export).
export * from '@fedcxr/base';
export type { CocoAnnotation, CocoCategory, CocoDataset, CocoImage, CocoResult } from './coco.js';
export { type ConfigIssue, parseConfig } from './config.js';
export * from './data/index.js';
export * from './engine/index.js';
export * from './eval/index.js';
export {
  type Backbone,
  type BackboneOptions,
  backbones,
  type Detection,
  type Detector,
  type DetectorImage,
  type DetectorOptions,
  type DetectorTarget,
  detectors,
  type FeatureSpec,
  type PretrainedWeights,
  type WeightLoadReport,
} from './model.js';
export {
  IMAGENET_MEAN,
  IMAGENET_STD,
  loadModelDir,
  MODEL_CARD_FILE,
  MODEL_CARD_FORMAT,
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
export {
  CLASS_COLORS,
  drawBoxes,
  drawBoxesForDisplay,
  encodeRgbPng,
  greyToRgb,
  heatmapOverlay,
  jet,
  type OverlayBox,
  type RgbImage,
} from './overlay.js';
export { Registry, type RegistryEntry, type RegistryEntryInfo } from './registry.js';
export * from './report/index.js';
export {
  decodeElements,
  decodeSafetensors,
  encodeSafetensors,
  float16BitsToNumber,
  numberToFloat16Bits,
  readSafetensors,
  type SafetensorsContent,
  writeSafetensors,
} from './safetensors.js';
export { elementCount, type HostDType, type HostTensor, type NamedTensors } from './tensors.js';
export type { Rank, Scalar, Tensor, Tensor1D, Tensor2D, Tensor3D, Tensor4D, Variable } from './tf.js';
export { tf } from './tf.js';
export * from './train/index.js';
export * from './transforms/index.js';
