/**
 * torchvision's RoIHeads for boxes: proposal sampling for training (gt boxes added, Matcher 0.5/0.5,
 * 512 per image with 25 % positives), Fast R-CNN losses, and detection postprocessing (softmax, decode
 * with weights 10/10/5/5, clip, score > 0.05, remove small, per-class NMS 0.5, top 100).
 */
import { tf } from '@fedcxr/core';
import { BoxCoder, batchedNms, boxIou, clipBoxesInPlace, removeSmallBoxes, selectBoxes } from '../ops/boxes.js';
import { type BalancedSampler, BELOW_LOW_THRESHOLD, BETWEEN_THRESHOLDS, type Matcher } from '../ops/matcher.js';
import { crossEntropy, smoothL1Elements } from './losses.js';

const f = Math.fround;

export const ROI_BOX_CODER = new BoxCoder([10, 10, 5, 5]);

export interface RoiHeadOptions {
  scoreThresh: number;
  nmsThresh: number;
  detectionsPerImage: number;
}

export interface SampledProposals {
  /** Sampled proposals per image (in image order, by index as torchvision's where(pos | neg)). */
  proposals: Float32Array[];
  /** Class label per sampled proposal, all images concatenated (0 background). */
  labels: Int32Array;
  /** Box regression targets per sampled proposal, all images concatenated. */
  targets: Float32Array;
}

/** torchvision's RoIHeads.select_training_samples. */
export function selectTrainingSamples(
  proposals: readonly Float32Array[],
  gtBoxes: readonly Float32Array[],
  gtLabels: readonly Int32Array[],
  matcher: Matcher,
  sampler: BalancedSampler,
): SampledProposals {
  const sampledProposals: Float32Array[] = [];
  const labels: number[] = [];
  const targets: Float32Array[] = [];
  proposals.forEach((props, image) => {
    const gt = gtBoxes[image];
    const withGt = new Float32Array(props.length + gt.length);
    withGt.set(props);
    withGt.set(gt, props.length);
    const count = withGt.length / 4;
    const numGt = gt.length / 4;
    let matches: Int32Array;
    const imageLabels = new Int32Array(count);
    if (numGt === 0) {
      matches = new Int32Array(count);
    } else {
      matches = matcher.match(boxIou(gt, withGt), numGt, count);
      for (let i = 0; i < count; i++) {
        const m = matches[i];
        imageLabels[i] = m === BELOW_LOW_THRESHOLD ? 0 : m === BETWEEN_THRESHOLDS ? -1 : gtLabels[image][m];
        matches[i] = Math.max(m, 0);
      }
    }
    const { positive, negative } = sampler.sample(imageLabels);
    const keep: number[] = [];
    for (let i = 0; i < count; i++) if (positive[i] || negative[i]) keep.push(i);
    const kept = selectBoxes(withGt, keep);
    const gtOrZero = numGt === 0 ? new Float32Array(4) : gt;
    const matchedGt = selectBoxes(
      gtOrZero,
      keep.map((i) => matches[i]),
    );
    sampledProposals.push(kept);
    for (const i of keep) labels.push(imageLabels[i]);
    targets.push(ROI_BOX_CODER.encode(matchedGt, kept));
  });
  const allTargets = new Float32Array(targets.reduce((n, t) => n + t.length, 0));
  let offset = 0;
  for (const t of targets) {
    allTargets.set(t, offset);
    offset += t.length;
  }
  return { proposals: sampledProposals, labels: Int32Array.from(labels), targets: allTargets };
}

/** torchvision's fastrcnn_loss: cross entropy, and smooth-L1 (β = 1/9) on the true class's deltas / N. */
export function fastRcnnLoss(
  classLogits: tf.Tensor2D,
  boxRegression: tf.Tensor2D,
  labels: Int32Array,
  targets: Float32Array,
): { lossClassifier: tf.Scalar; lossBoxReg: tf.Scalar } {
  return tf.tidy(() => {
    const lossClassifier = crossEntropy(classLogits, labels);
    const [rows, numClasses] = classLogits.shape;
    // Only the true class's four deltas of each positive proposal count.
    const mask = new Float32Array(rows * numClasses * 4);
    const wanted = new Float32Array(rows * numClasses * 4);
    labels.forEach((label, i) => {
      if (label <= 0) return;
      for (let c = 0; c < 4; c++) {
        mask[(i * numClasses + label) * 4 + c] = 1;
        wanted[(i * numClasses + label) * 4 + c] = targets[i * 4 + c];
      }
    });
    const terms = smoothL1Elements(boxRegression, tf.tensor2d(wanted, [rows, numClasses * 4]), 1 / 9);
    const masked = tf.mul(terms, tf.tensor2d(mask, [rows, numClasses * 4]));
    const lossBoxReg = tf.div(tf.sum(masked), labels.length) as tf.Scalar;
    return { lossClassifier, lossBoxReg };
  });
}

export interface ImageDetections {
  boxes: Float32Array;
  scores: Float32Array;
  labels: Int32Array;
}

/** torchvision's RoIHeads.postprocess_detections for one image (host arrays). */
export function postprocessDetections(
  probabilities: Float32Array,
  boxRegression: Float32Array,
  proposals: Float32Array,
  numClasses: number,
  imageSize: readonly [number, number],
  options: RoiHeadOptions,
): ImageDetections {
  const count = proposals.length / 4;
  const decoded = clipBoxesInPlace(
    ROI_BOX_CODER.decode(boxRegression, proposals, numClasses),
    imageSize[0],
    imageSize[1],
  );
  const threshold = f(options.scoreThresh);
  const candidates: number[] = [];
  for (let i = 0; i < count; i++) {
    for (let c = 1; c < numClasses; c++) {
      if (probabilities[i * numClasses + c] > threshold) candidates.push(i * numClasses + c);
    }
  }
  let boxes = selectBoxes(decoded, candidates);
  let scores = Float32Array.from(candidates, (k) => probabilities[k]);
  let labels = Int32Array.from(candidates, (k) => k % numClasses);
  const big = removeSmallBoxes(boxes, 1e-2);
  boxes = selectBoxes(boxes, big);
  scores = Float32Array.from(big, (k) => scores[k]);
  labels = Int32Array.from(big, (k) => labels[k]);
  const keep = batchedNms(boxes, scores, labels, options.nmsThresh).slice(0, options.detectionsPerImage);
  return {
    boxes: selectBoxes(boxes, keep),
    scores: Float32Array.from(keep, (k) => scores[k]),
    labels: Int32Array.from(keep, (k) => labels[k]),
  };
}
