/**
 * `@fedcxr/models-frcnn/testing`: helpers for the parity tests, never imported by production code
 * (tests/production-imports.test.ts): the permutation the Python reference substitutes for torch.randperm, and
 * readers of a fixture written by tools/reference/frcnn_make_fixtures.py (images, targets, expected
 * proposals/detections/losses).
 */
import { type DetectorImage, type DetectorTarget, type HostTensor, type NamedTensors, tf } from '@fedcxr/core';
import type { FasterRcnn } from './detector/faster-rcnn.js';
import { tfjsToTorch, type WeightLayout } from './ops/layout.js';
import type { Permutation } from './ops/matcher.js';

/** The permutation the Python reference substitutes for torch.randperm (a reversed arange). */
/**
 * The detector settings of the tiny test backbone's fixtures (tools/reference/frcnn_make_fixtures.py):
 * three FPN levels with one anchor size each, a 32-wide box head, 2 classes, torchvision's random sampling
 * replaced by the reversed permutation.
 */
export const TINY_TEST_DETECTOR = {
  backbone: 'tiny_test',
  numClasses: 2,
  rpn: {
    anchorSizes: [[32], [64], [128]],
    aspectRatios: [
      [0.5, 1, 2],
      [0.5, 1, 2],
      [0.5, 1, 2],
    ],
  },
  roi: { representationSize: 32 },
  permutation: (n: number) => Int32Array.from({ length: n }, (_, i) => n - 1 - i),
} as const;

export const reversedPermutation: Permutation = (n) => Int32Array.from({ length: n }, (_, i) => n - 1 - i);

export interface ParityImage {
  image: DetectorImage;
  target: DetectorTarget;
  proposals: Float32Array;
  proposalCount: number;
  boxes: Float32Array;
  scores: Float32Array;
  labels: Int32Array;
}

function need(tensors: NamedTensors, name: string): HostTensor {
  const t = tensors.get(name);
  if (!t) throw new Error(`parity fixture lacks ${name}`);
  return t;
}

function fixtureImage(tensors: NamedTensors, prefix: string): { image: DetectorImage; target: DetectorTarget } {
  const pixels = need(tensors, `${prefix}.pixels`);
  const [height, width, channels] = pixels.shape;
  return {
    // 8-bit samples; q / 255 in float32 as the reference computes it.
    image: { pixels: Float32Array.from(pixels.data, (q) => q / 255), height, width, channels: channels as 1 | 3 },
    target: {
      boxes: Float32Array.from(need(tensors, `${prefix}.target_boxes`).data),
      labels: Int32Array.from(need(tensors, `${prefix}.target_labels`).data),
    },
  };
}

/**
 * The batch the fixture's losses and gradients were computed on: its `train.image{i}` entries when it has
 * them (a batch that needs no padding), else the parity images themselves.
 */
export function trainingBatch(tensors: NamedTensors): { images: DetectorImage[]; targets: DetectorTarget[] } {
  const prefix = tensors.has('train.image0.pixels') ? 'train.image' : 'image';
  const batch = { images: [] as DetectorImage[], targets: [] as DetectorTarget[] };
  for (let i = 0; tensors.has(`${prefix}${i}.pixels`); i++) {
    const { image, target } = fixtureImage(tensors, `${prefix}${i}`);
    batch.images.push(image);
    batch.targets.push(target);
  }
  return batch;
}

export function parityImages(tensors: NamedTensors): ParityImage[] {
  const out: ParityImage[] = [];
  for (let i = 0; tensors.has(`image${i}.pixels`); i++) {
    out.push({
      ...fixtureImage(tensors, `image${i}`),
      proposals: Float32Array.from(need(tensors, `image${i}.proposals`).data),
      proposalCount: need(tensors, `image${i}.proposal_count`).data[0],
      boxes: Float32Array.from(need(tensors, `image${i}.boxes`).data),
      scores: Float32Array.from(need(tensors, `image${i}.scores`).data),
      labels: Int32Array.from(need(tensors, `image${i}.labels`).data),
    });
  }
  return out;
}

export function parityLosses(tensors: NamedTensors): Record<string, number> {
  const losses: Record<string, number> = {};
  for (const [name, t] of tensors) if (name.startsWith('loss.')) losses[name.slice(5)] = t.data[0];
  return losses;
}

/** The tensors under `prefix` with the prefix removed (e.g. 'weights.'). */
export function withoutPrefix(tensors: NamedTensors, prefix: string): NamedTensors {
  const out: NamedTensors = new Map();
  for (const [name, t] of tensors) if (name.startsWith(prefix)) out.set(name.slice(prefix.length), t);
  return out;
}

/**
 * The gradient of the summed training losses (what `cxr train` follows) for every trainable parameter, by
 * state_dict key and in torch layout, as the reference records `param.grad` after `sum(losses).backward()`.
 */
export function lossGradients(
  model: FasterRcnn,
  images: readonly DetectorImage[],
  targets: readonly DetectorTarget[],
): NamedTensors {
  const keyOf = new Map<string, { key: string; layout: WeightLayout }>();
  for (const [key, p] of model.parameters()) keyOf.set(p.variable.name, { key, layout: p.layout });
  const { value, grads } = tf.variableGrads(
    () => tf.addN(Object.values(model.losses(images, targets))) as tf.Scalar,
    model.trainableVariables(),
  );
  value.dispose();
  const out: NamedTensors = new Map();
  for (const [name, gradient] of Object.entries(grads)) {
    const param = keyOf.get(name);
    if (!param) throw new Error(`gradient of an unknown variable ${name}`);
    out.set(param.key, tfjsToTorch(gradient, param.layout));
    gradient.dispose();
  }
  return out;
}

/** Largest |a − b| over a tensor, and the largest |b| (the scale a tolerance is relative to). */
export function maxDifference(actual: ArrayLike<number>, expected: ArrayLike<number>): { diff: number; scale: number } {
  if (actual.length !== expected.length) throw new Error(`${actual.length} values against ${expected.length} expected`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return { diff, scale };
}
