/**
 * Augmentations that move boxes with the pixels (MONAI's idea: each transform is small and testable;
 * the random ones draw their parameters from a seeded Rng, so a run is reproducible and resumable).
 * Images are DetectorImage (values in [0, 1], HWC); boxes are x1, y1, x2, y2 in continuous pixel
 * coordinates (pixel i covers [i, i+1)). A geometric transform maps each box to the enclosing box of its
 * moved corners, clipped to the image; boxes left thinner than `minBoxSize` pixels are dropped.
 */

import type { Rng } from '@fedcxr/base';
import type { DetectorImage, DetectorTarget } from '../model.js';
import type { AugmentationConfig } from '../train/config.js';

export interface Sample {
  image: DetectorImage;
  target: DetectorTarget;
}

/** A 2×3 affine map from input to output coordinates: [x', y'] = [a·x + b·y + c, d·x + e·y + f]. */
export type Affine = [number, number, number, number, number, number];

export interface WarpOptions {
  /** Value of pixels that come from outside the input image. */
  fill?: number;
  minBoxSize?: number;
}

/** Rotation by `degrees` about the image center; positive turns the picture counter-clockwise on screen. */
export function rotationAbout(degrees: number, cx: number, cy: number): Affine {
  const t = (degrees * Math.PI) / 180;
  const cos = Math.cos(t);
  const sin = Math.sin(t);
  // y points down in images, so counter-clockwise on screen is [[cos, sin], [-sin, cos]].
  return [cos, sin, cx - cos * cx - sin * cy, -sin, cos, cy + sin * cx - cos * cy];
}

export function scalingAbout(factor: number, cx: number, cy: number): Affine {
  return [factor, 0, cx - factor * cx, 0, factor, cy - factor * cy];
}

/** `second ∘ first`: apply `first`, then `second`. */
export function composeAffine(second: Affine, first: Affine): Affine {
  const [a2, b2, c2, d2, e2, f2] = second;
  const [a1, b1, c1, d1, e1, f1] = first;
  return [
    a2 * a1 + b2 * d1,
    a2 * b1 + b2 * e1,
    a2 * c1 + b2 * f1 + c2,
    d2 * a1 + e2 * d1,
    d2 * b1 + e2 * e1,
    d2 * c1 + e2 * f1 + f2,
  ];
}

function invertAffine([a, b, c, d, e, f]: Affine): Affine {
  const det = a * e - b * d;
  return [e / det, -b / det, (b * f - c * e) / det, -d / det, a / det, (c * d - a * f) / det];
}

/** Warps the image (bilinear, same canvas size) and its boxes by the affine map `m`. */
export function warpAffine(sample: Sample, m: Affine, options: WarpOptions = {}): Sample {
  const { pixels, width, height, channels } = sample.image;
  const fill = options.fill ?? 0;
  const [a, b, c, d, e, f] = invertAffine(m);
  const out = new Float32Array(pixels.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      // Pixel centers sit at +0.5; sample the input at the inverse-mapped center.
      const ox = x + 0.5;
      const oy = y + 0.5;
      const sx = a * ox + b * oy + c - 0.5;
      const sy = d * ox + e * oy + f - 0.5;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      for (let ch = 0; ch < channels; ch++) {
        const at = (xi: number, yi: number) =>
          xi >= 0 && xi < width && yi >= 0 && yi < height ? pixels[(yi * width + xi) * channels + ch] : fill;
        const top = at(x0, y0) * (1 - fx) + at(x0 + 1, y0) * fx;
        const bottom = at(x0, y0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1) * fx;
        out[(y * width + x) * channels + ch] = top * (1 - fy) + bottom * fy;
      }
    }
  }
  return {
    image: { ...sample.image, pixels: out },
    target: transformBoxes(sample.target, m, width, height, options.minBoxSize ?? 1),
  };
}

/** Each box → the enclosing box of its four mapped corners, clipped to [0, width] × [0, height]. */
export function transformBoxes(
  target: DetectorTarget,
  [a, b, c, d, e, f]: Affine,
  width: number,
  height: number,
  minBoxSize = 1,
): DetectorTarget {
  const boxes: number[] = [];
  const labels: number[] = [];
  for (let i = 0; i < target.labels.length; i++) {
    const [x1, y1, x2, y2] = target.boxes.subarray(i * 4, i * 4 + 4);
    const xs: number[] = [];
    const ys: number[] = [];
    for (const [px, py] of [
      [x1, y1],
      [x2, y1],
      [x1, y2],
      [x2, y2],
    ]) {
      xs.push(a * px + b * py + c);
      ys.push(d * px + e * py + f);
    }
    const nx1 = clamp(Math.min(...xs), 0, width);
    const ny1 = clamp(Math.min(...ys), 0, height);
    const nx2 = clamp(Math.max(...xs), 0, width);
    const ny2 = clamp(Math.max(...ys), 0, height);
    if (nx2 - nx1 < minBoxSize || ny2 - ny1 < minBoxSize) continue; // moved off the image
    boxes.push(nx1, ny1, nx2, ny2);
    labels.push(target.labels[i]);
  }
  return { boxes: Float32Array.from(boxes), labels: Int32Array.from(labels) };
}

/** Mirror left–right (pixels and boxes). Not used by default: chest X-rays have laterality. */
export function flipHorizontal(sample: Sample): Sample {
  const { pixels, width, height, channels } = sample.image;
  const out = new Float32Array(pixels.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let ch = 0; ch < channels; ch++) {
        out[(y * width + x) * channels + ch] = pixels[(y * width + (width - 1 - x)) * channels + ch];
      }
    }
  }
  const boxes = new Float32Array(sample.target.boxes.length);
  for (let i = 0; i < boxes.length; i += 4) {
    boxes[i] = width - sample.target.boxes[i + 2];
    boxes[i + 1] = sample.target.boxes[i + 1];
    boxes[i + 2] = width - sample.target.boxes[i];
    boxes[i + 3] = sample.target.boxes[i + 3];
  }
  return { image: { ...sample.image, pixels: out }, target: { boxes, labels: sample.target.labels.slice() } };
}

/**
 * torchvision's ColorJitter semantics: brightness multiplies by `brightness`; contrast blends with the
 * image's mean grey by `contrast` (1 = unchanged); results clipped to [0, 1]. Boxes do not move.
 */
export function adjustIntensity(sample: Sample, brightness: number, contrast: number): Sample {
  const { pixels } = sample.image;
  const out = new Float32Array(pixels.length);
  let mean = 0;
  for (let i = 0; i < pixels.length; i++) mean += pixels[i] * brightness;
  mean /= Math.max(1, pixels.length);
  for (let i = 0; i < pixels.length; i++) {
    out[i] = clamp(contrast * pixels[i] * brightness + (1 - contrast) * mean, 0, 1);
  }
  return { image: { ...sample.image, pixels: out }, target: sample.target };
}

export type RandomTransform = (sample: Sample, rng: Rng) => Sample;

/**
 * The training augmentation from config. Rotation and scale are combined into ONE affine resample (two
 * bilinear passes would blur twice). Parameters are always drawn in the same order, so the stream of
 * random numbers does not depend on the image.
 */
export function buildAugmentation(config: AugmentationConfig, options: WarpOptions = {}): RandomTransform {
  return (sample, rng) => {
    const { width, height } = sample.image;
    const degrees = config.rotationDegrees > 0 ? rng.uniform(-config.rotationDegrees, config.rotationDegrees) : 0;
    const factor = config.scale ? rng.uniform(config.scale[0], config.scale[1]) : 1;
    const flip = config.horizontalFlip ? rng.next() < 0.5 : false;
    const brightness = config.brightness > 0 ? rng.uniform(1 - config.brightness, 1 + config.brightness) : 1;
    const contrast = config.contrast > 0 ? rng.uniform(1 - config.contrast, 1 + config.contrast) : 1;
    let out = sample;
    if (degrees !== 0 || factor !== 1) {
      const m = composeAffine(
        scalingAbout(factor, width / 2, height / 2),
        rotationAbout(degrees, width / 2, height / 2),
      );
      out = warpAffine(out, m, options);
    }
    if (flip) out = flipHorizontal(out);
    if (brightness !== 1 || contrast !== 1) out = adjustIntensity(out, brightness, contrast);
    return out;
  };
}

function clamp(value: number, low: number, high: number): number {
  return Math.max(low, Math.min(value, high));
}
