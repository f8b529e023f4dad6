import { registerFasterRcnn } from './faster-rcnn.js';

export {
  COMPACT_HEADS,
  classNamesFor,
  FasterRcnn,
  type FasterRcnnOptions,
  type FasterRcnnParts,
  type FasterRcnnSettings,
  fasterRcnnOptionsSchema,
  fasterRcnnSettings,
  type ReplaceableParts,
  registerFasterRcnn,
} from './faster-rcnn.js';
export {
  backboneParameters,
  loadStateDict,
  type NamedParameters,
  type Parameter,
  type Part,
  stateDict,
} from './part.js';
export {
  type BoxHead,
  type BoxPredictor,
  FastRcnnPredictor,
  MultiScaleRoIAlign,
  predictorNumClasses,
  RoIHeads,
  type RoiHeadParts,
  type RoiSettings,
  TwoMlpHead,
} from './roi-heads.js';
export {
  AnchorGenerator,
  RegionProposalNetwork,
  RpnHead,
  type RpnHeadOutput,
  type RpnHeadPart,
  type RpnSettings,
} from './rpn.js';
export {
  batchImages,
  GeneralizedRcnnTransform,
  IMAGENET_MEAN,
  IMAGENET_STD,
  type ImageBatch,
  resizeBoxes,
  resizedSize,
  type TransformOptions,
} from './transform.js';

// Importing the package registers the detector, as the backbones register themselves.
registerFasterRcnn();
