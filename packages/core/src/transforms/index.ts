export {
  type Affine,
  adjustIntensity,
  buildAugmentation,
  composeAffine,
  flipHorizontal,
  type RandomTransform,
  rotationAbout,
  type Sample,
  scalingAbout,
  transformBoxes,
  type WarpOptions,
  warpAffine,
} from './transforms.js';
