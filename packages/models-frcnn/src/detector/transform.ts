/**
 * torchvision's GeneralizedRCNNTransform: ImageNet normalization, resize so the short side reaches
 * `minSize` without the long side passing `maxSize` (bilinear, align_corners=False — tfjs'
 * resizeBilinear with halfPixelCenters), zero padding of the batch to a multiple of 32, and mapping boxes
 * between original and resized pixels.
 *
 * Grey X-rays: a one-channel image is replicated to three channels before normalization, which is what
 * torchvision users do to feed ImageNet/COCO weights with grey input.
 */
import { type DetectorImage, FedcxrError, tf } from '@fedcxr/core';

// ImageNet's normalization lives in core (TORCHVISION_PREPROCESSING is made of it); re-exported here.
export { IMAGENET_MEAN, IMAGENET_STD } from '@fedcxr/core';

const f = Math.fround;

export interface TransformOptions {
  minSize: number;
  maxSize: number;
  imageMean: readonly [number, number, number];
  imageStd: readonly [number, number, number];
  sizeDivisible: number;
}

export interface ImageBatch {
  /** [N, H, W, 3], normalized, zero-padded to a multiple of sizeDivisible. */
  tensor: tf.Tensor4D;
  /** Resized (unpadded) [height, width] of each image. */
  imageSizes: [number, number][];
  /** Original [height, width] of each image. */
  originalSizes: [number, number][];
}

/** torchvision's scale rule; the output size is floor(size × scale) in double precision, as torch does. */
export function resizedSize(height: number, width: number, minSize: number, maxSize: number): [number, number] {
  const scale = Math.min(minSize / Math.min(height, width), maxSize / Math.max(height, width));
  return [Math.floor(height * scale), Math.floor(width * scale)];
}

export function checkImage(image: DetectorImage, index: number): void {
  const { height, width, channels, pixels } = image;
  if (!(height > 0 && width > 0) || (channels !== 1 && channels !== 3) || pixels.length !== height * width * channels) {
    throw new FedcxrError(
      'invalid_image',
      `image ${index}: expected ${height}x${width}x${channels} pixels with 1 or 3 channels, got ${pixels.length} values`,
    );
  }
}

/** Normalizes, resizes and pads a list of images into one batch tensor. */
export function batchImages(images: readonly DetectorImage[], options: TransformOptions): ImageBatch {
  if (images.length === 0) throw new FedcxrError('invalid_image', 'no images given');
  images.forEach(checkImage);
  const imageSizes = images.map((im) => resizedSize(im.height, im.width, options.minSize, options.maxSize));
  const stride = options.sizeDivisible;
  const batchHeight = Math.ceil(Math.max(...imageSizes.map((s) => s[0])) / stride) * stride;
  const batchWidth = Math.ceil(Math.max(...imageSizes.map((s) => s[1])) / stride) * stride;
  const tensor = tf.tidy(() => {
    const mean = tf.tensor1d([...options.imageMean]);
    const std = tf.tensor1d([...options.imageStd]);
    const padded = images.map((image, i) => {
      let pixels: tf.Tensor3D = tf.tensor3d(image.pixels, [image.height, image.width, image.channels]);
      if (image.channels === 1) pixels = tf.tile(pixels, [1, 1, 3]);
      const normalized = tf.div(tf.sub(pixels, mean), std) as tf.Tensor3D;
      const [h, w] = imageSizes[i];
      const resized =
        h === image.height && w === image.width ? normalized : tf.image.resizeBilinear(normalized, [h, w], false, true);
      return tf.pad(resized, [
        [0, batchHeight - h],
        [0, batchWidth - w],
        [0, 0],
      ]);
    });
    return tf.stack(padded) as tf.Tensor4D;
  });
  return { tensor, imageSizes, originalSizes: images.map((im) => [im.height, im.width]) };
}

/** torchvision's resize_boxes: scales x by the width ratio and y by the height ratio (float32). */
export function resizeBoxes(
  boxes: Float32Array,
  from: readonly [number, number],
  to: readonly [number, number],
): Float32Array {
  const ratioH = f(f(to[0]) / f(from[0]));
  const ratioW = f(f(to[1]) / f(from[1]));
  const out = new Float32Array(boxes.length);
  for (let i = 0; i < boxes.length; i += 4) {
    out[i] = f(boxes[i] * ratioW);
    out[i + 1] = f(boxes[i + 1] * ratioH);
    out[i + 2] = f(boxes[i + 2] * ratioW);
    out[i + 3] = f(boxes[i + 3] * ratioH);
  }
  return out;
}

/**
 * torchvision's GeneralizedRCNNTransform as a part (no parameters): batches images for the backbone, takes
 * ground-truth boxes into the resized images and detections back to the original pixels.
 */
export class GeneralizedRcnnTransform {
  constructor(readonly options: TransformOptions) {}

  /** Normalized, resized, padded batch. */
  batch(images: readonly DetectorImage[]): ImageBatch {
    return batchImages(images, this.options);
  }

  /** Boxes of image `index` in its original pixels → the resized image's pixels (targets). */
  toResized(boxes: Float32Array, batch: ImageBatch, index: number): Float32Array {
    return resizeBoxes(boxes, batch.originalSizes[index], batch.imageSizes[index]);
  }

  /** Boxes of image `index` in the resized image → its original pixels (torchvision's postprocess). */
  toOriginal(boxes: Float32Array, batch: ImageBatch, index: number): Float32Array {
    return resizeBoxes(boxes, batch.imageSizes[index], batch.originalSizes[index]);
  }
}
