import { registerFasterRcnn } from './faster-rcnn.js';

export {
  COMPACT_HEADS,
  FasterRcnn,
  type FasterRcnnOptions,
  type FasterRcnnSettings,
  fasterRcnnSettings,
  registerFasterRcnn,
} from './faster-rcnn.js';
export { reversedPermutation } from './parity.js';
export { batchImages, IMAGENET_MEAN, IMAGENET_STD, type ImageBatch, resizeBoxes, resizedSize } from './transform.js';

// Importing the package registers the detector, as the backbones register themselves.
registerFasterRcnn();
