/**
 * torchvision's region proposal network: AnchorGenerator, RPNHead (3×3 conv + ReLU, 1×1 objectness and
 * box-delta convs), proposal selection (per-level pre-NMS top-n, decode, clip, remove small, score
 * threshold, per-level NMS, post-NMS top-n) and the RPN losses (sampled BCE + smooth-L1 β = 1/9).
 */
import { tf } from '@fedcxr/core';
import {
  argsortDescending,
  BoxCoder,
  batchedNms,
  boxIou,
  clipBoxesInPlace,
  removeSmallBoxes,
  selectBoxes,
} from '../ops/boxes.js';
import { type BalancedSampler, BETWEEN_THRESHOLDS, type Matcher } from '../ops/matcher.js';
import { smoothL1Elements, type Tensors } from './losses.js';

const f = Math.fround;

/** Anchors centred on 0 for one level: every aspect ratio × every size, rounded (torchvision's generate_anchors). */
export function baseAnchors(sizes: readonly number[], aspectRatios: readonly number[]): Float32Array {
  const out: number[] = [];
  for (const ratio of aspectRatios) {
    const hRatio = f(Math.sqrt(f(ratio)));
    const wRatio = f(1 / hRatio);
    for (const size of sizes) {
      const ws = f(wRatio * size);
      const hs = f(hRatio * size);
      out.push(
        roundHalfEven(f(-ws / 2)),
        roundHalfEven(f(-hs / 2)),
        roundHalfEven(f(ws / 2)),
        roundHalfEven(f(hs / 2)),
      );
    }
  }
  return Float32Array.from(out);
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Anchors for one feature map of [height, width] cells: (y, x, anchor) order, as torchvision's grid_anchors. */
export function gridAnchors(
  base: Float32Array,
  gridHeight: number,
  gridWidth: number,
  strideY: number,
  strideX: number,
): Float32Array {
  const perCell = base.length / 4;
  const out = new Float32Array(gridHeight * gridWidth * perCell * 4);
  let k = 0;
  for (let y = 0; y < gridHeight; y++) {
    for (let x = 0; x < gridWidth; x++) {
      const sx = x * strideX;
      const sy = y * strideY;
      for (let a = 0; a < perCell; a++) {
        out[k++] = f(sx + base[a * 4]);
        out[k++] = f(sy + base[a * 4 + 1]);
        out[k++] = f(sx + base[a * 4 + 2]);
        out[k++] = f(sy + base[a * 4 + 3]);
      }
    }
  }
  return out;
}

export interface RpnOptions {
  anchorSizes: readonly (readonly number[])[];
  aspectRatios: readonly (readonly number[])[];
  preNmsTopN: { training: number; testing: number };
  postNmsTopN: { training: number; testing: number };
  nmsThresh: number;
  scoreThresh: number;
  minSize: number;
}

/** Head outputs for a batch, flattened over levels in (level, y, x, anchor) order. */
export interface RpnHeadOutput {
  /** [N, totalAnchors] objectness logits. */
  objectness: tf.Tensor2D;
  /** [N, totalAnchors, 4] box deltas. */
  deltas: tf.Tensor3D;
  anchorsPerLevel: number[];
}

export const RPN_BOX_CODER = new BoxCoder([1, 1, 1, 1]);

/** Anchors for the padded batch: one array for all levels, and the count per level. */
export function anchorsForBatch(
  options: RpnOptions,
  batchSize: readonly [number, number],
  featureSizes: readonly (readonly [number, number])[],
): { anchors: Float32Array; perLevel: number[] } {
  const levels = featureSizes.map(([h, w], level) => {
    const base = baseAnchors(options.anchorSizes[level], options.aspectRatios[level]);
    return gridAnchors(base, h, w, Math.floor(batchSize[0] / h), Math.floor(batchSize[1] / w));
  });
  const anchors = new Float32Array(levels.reduce((n, a) => n + a.length, 0));
  let offset = 0;
  for (const level of levels) {
    anchors.set(level, offset);
    offset += level.length;
  }
  return { anchors, perLevel: levels.map((a) => a.length / 4) };
}

/**
 * torchvision's RegionProposalNetwork.filter_proposals for one batch, on the host. objectness: [N × A]
 * logits; deltas: [N × A × 4]. Returns the proposals per image (and their scores, for inspection).
 */
export function selectProposals(
  objectness: Float32Array,
  deltas: Float32Array,
  anchors: Float32Array,
  anchorsPerLevel: readonly number[],
  imageSizes: readonly (readonly [number, number])[],
  options: RpnOptions,
  training: boolean,
): { boxes: Float32Array; scores: Float32Array }[] {
  const total = anchors.length / 4;
  const preNms = training ? options.preNmsTopN.training : options.preNmsTopN.testing;
  const postNms = training ? options.postNmsTopN.training : options.postNmsTopN.testing;
  return imageSizes.map(([height, width], image) => {
    const logits = objectness.subarray(image * total, (image + 1) * total);
    const picked: number[] = [];
    const levelOf: number[] = [];
    let start = 0;
    anchorsPerLevel.forEach((count, level) => {
      const indices = Array.from({ length: count }, (_, i) => start + i);
      const top = argsortDescending(logits, indices).slice(0, Math.min(preNms, count));
      for (const index of top) {
        picked.push(index);
        levelOf.push(level);
      }
      start += count;
    });
    const pickedDeltas = new Float32Array(picked.length * 4);
    picked.forEach((index, k) => {
      pickedDeltas.set(deltas.subarray((image * total + index) * 4, (image * total + index + 1) * 4), k * 4);
    });
    const boxes = clipBoxesInPlace(RPN_BOX_CODER.decode(pickedDeltas, selectBoxes(anchors, picked)), height, width);
    const scores = Float32Array.from(picked, (index) => f(1 / (1 + Math.exp(-logits[index]))));
    const threshold = f(options.scoreThresh);
    const keep = removeSmallBoxes(boxes, options.minSize).filter((k) => scores[k] >= threshold);
    const keptBoxes = selectBoxes(boxes, keep);
    const keptScores = Float32Array.from(keep, (k) => scores[k]);
    const keptLevels = Int32Array.from(keep, (k) => levelOf[k]);
    const survivors = batchedNms(keptBoxes, keptScores, keptLevels, options.nmsThresh).slice(0, postNms);
    return { boxes: selectBoxes(keptBoxes, survivors), scores: Float32Array.from(survivors, (k) => keptScores[k]) };
  });
}

/**
 * RPN training targets for one image (assign_targets_to_anchors): label 1 foreground, 0 background,
 * -1 ignored; regression targets toward the matched ground-truth box.
 */
export function rpnTargets(
  anchors: Float32Array,
  gtBoxes: Float32Array,
  matcher: Matcher,
): { labels: Int32Array; targets: Float32Array } {
  const numAnchors = anchors.length / 4;
  const labels = new Int32Array(numAnchors);
  if (gtBoxes.length === 0) return { labels, targets: new Float32Array(numAnchors * 4) };
  const numGt = gtBoxes.length / 4;
  const matches = matcher.match(boxIou(gtBoxes, anchors), numGt, numAnchors);
  const matched = new Float32Array(numAnchors * 4);
  for (let i = 0; i < numAnchors; i++) {
    const m = Math.max(matches[i], 0);
    matched.set(gtBoxes.subarray(m * 4, m * 4 + 4), i * 4);
    labels[i] = matches[i] >= 0 ? 1 : matches[i] === BETWEEN_THRESHOLDS ? -1 : 0;
  }
  return { labels, targets: RPN_BOX_CODER.encode(matched, anchors) };
}

/** torchvision's RegionProposalNetwork.compute_loss. */
export function rpnLosses(
  head: RpnHeadOutput,
  anchors: Float32Array,
  gtBoxesPerImage: readonly Float32Array[],
  matcher: Matcher,
  sampler: BalancedSampler,
): { lossObjectness: tf.Scalar; lossRpnBoxReg: tf.Scalar } {
  const numAnchors = anchors.length / 4;
  const positive: number[] = [];
  const negative: number[] = [];
  const labelsAll = new Float32Array(gtBoxesPerImage.length * numAnchors);
  const targetsAll = new Float32Array(gtBoxesPerImage.length * numAnchors * 4);
  gtBoxesPerImage.forEach((gt, image) => {
    const { labels, targets } = rpnTargets(anchors, gt, matcher);
    const sampled = sampler.sample(labels);
    const offset = image * numAnchors;
    for (let i = 0; i < numAnchors; i++) {
      if (sampled.positive[i]) positive.push(offset + i);
      if (sampled.negative[i]) negative.push(offset + i);
      labelsAll[offset + i] = labels[i];
    }
    targetsAll.set(targets, offset * 4);
  });
  const sampledMask = new Float32Array(labelsAll.length);
  const positiveMask = new Float32Array(labelsAll.length);
  for (const i of positive) {
    sampledMask[i] = 1;
    positiveMask[i] = 1;
  }
  for (const i of negative) sampledMask[i] = 1;
  const numSampled = positive.length + negative.length;
  return tf.tidy(() => {
    const logits = tf.reshape(head.objectness, [-1]);
    const perAnchor = binaryCrossEntropyWithLogitsElements(logits, tf.tensor1d(labelsAll.map((l) => Math.max(l, 0))));
    const lossObjectness = tf.div(tf.sum(tf.mul(perAnchor, tf.tensor1d(sampledMask))), numSampled) as tf.Scalar;
    const boxTerms = smoothL1Elements(
      tf.reshape(head.deltas, [-1, 4]),
      tf.tensor2d(targetsAll, [labelsAll.length, 4]),
      1 / 9,
    );
    const masked = tf.mul(boxTerms, tf.tensor2d(positiveMask, [labelsAll.length, 1]));
    const lossRpnBoxReg = tf.div(tf.sum(masked), numSampled) as tf.Scalar;
    return { lossObjectness, lossRpnBoxReg } satisfies Tensors;
  });
}

/** F.binary_cross_entropy_with_logits per element, in its numerically stable form. */
export function binaryCrossEntropyWithLogitsElements(logits: tf.Tensor, labels: tf.Tensor): tf.Tensor {
  return tf.tidy(() =>
    tf.add(tf.sub(tf.relu(logits), tf.mul(logits, labels)), tf.log1p(tf.exp(tf.neg(tf.abs(logits))))),
  );
}
