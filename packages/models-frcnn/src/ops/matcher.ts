/**
 * torchvision's det_utils.Matcher and BalancedPositiveNegativeSampler, on the host.
 */
import { Rng } from '@fedcxr/core';

/** Matched index meaning "below the low threshold" (background). */
export const BELOW_LOW_THRESHOLD = -1;
/** Matched index meaning "between the thresholds" (ignored). */
export const BETWEEN_THRESHOLDS = -2;

export class Matcher {
  private readonly high: number;
  private readonly low: number;

  constructor(
    highThreshold: number,
    lowThreshold: number,
    readonly allowLowQualityMatches = false,
  ) {
    // torch compares a float32 tensor with a Python float in float32.
    this.high = Math.fround(highThreshold);
    this.low = Math.fround(lowThreshold);
  }

  /**
   * quality: [numGt, numPred] IoU matrix (row-major). Returns for each prediction the matched ground-truth
   * index, or BELOW_LOW_THRESHOLD / BETWEEN_THRESHOLDS.
   */
  match(quality: Float32Array, numGt: number, numPred: number): Int32Array {
    const matches = new Int32Array(numPred);
    const bestValue = new Float32Array(numPred);
    for (let p = 0; p < numPred; p++) {
      let best = quality[p];
      let bestIndex = 0;
      for (let g = 1; g < numGt; g++) {
        const v = quality[g * numPred + p];
        if (v > best) {
          best = v;
          bestIndex = g;
        }
      }
      bestValue[p] = best;
      matches[p] = bestIndex;
    }
    const allMatches = this.allowLowQualityMatches ? matches.slice() : undefined;
    for (let p = 0; p < numPred; p++) {
      if (bestValue[p] < this.low) matches[p] = BELOW_LOW_THRESHOLD;
      else if (bestValue[p] < this.high) matches[p] = BETWEEN_THRESHOLDS;
    }
    if (allMatches) {
      // Each ground truth keeps every prediction that ties for its best IoU (even a low one).
      for (let g = 0; g < numGt; g++) {
        let best = Number.NEGATIVE_INFINITY;
        for (let p = 0; p < numPred; p++) best = Math.max(best, quality[g * numPred + p]);
        for (let p = 0; p < numPred; p++) if (quality[g * numPred + p] === best) matches[p] = allMatches[p];
      }
    }
    return matches;
  }
}

/** A random permutation of 0..n-1 (torch.randperm's role); injectable so tests can match PyTorch's draws. */
export type Permutation = (n: number) => Int32Array;

/** Permutations from core's Rng (training passes its reseeded step stream; alone, a fixed-seed one). */
export function randomPermutation(rng: Rng = new Rng(0)): Permutation {
  return (n) => rng.permutation(n);
}

/**
 * BalancedPositiveNegativeSampler: per image, up to batchSize × positiveFraction positives (label ≥ 1)
 * and the rest negatives (label 0), each drawn by a permutation. Returns boolean masks.
 */
export class BalancedSampler {
  constructor(
    readonly batchSizePerImage: number,
    readonly positiveFraction: number,
    readonly permutation: Permutation = randomPermutation(),
  ) {}

  sample(labels: Int32Array): { positive: Uint8Array; negative: Uint8Array } {
    const positives: number[] = [];
    const negatives: number[] = [];
    labels.forEach((label, i) => {
      if (label >= 1) positives.push(i);
      else if (label === 0) negatives.push(i);
    });
    const numPos = Math.min(positives.length, Math.trunc(this.batchSizePerImage * this.positiveFraction));
    const numNeg = Math.min(negatives.length, this.batchSizePerImage - numPos);
    const positive = new Uint8Array(labels.length);
    const negative = new Uint8Array(labels.length);
    const permPos = this.permutation(positives.length);
    for (let k = 0; k < numPos; k++) positive[positives[permPos[k]]] = 1;
    const permNeg = this.permutation(negatives.length);
    for (let k = 0; k < numNeg; k++) negative[negatives[permNeg[k]]] = 1;
    return { positive, negative };
  }
}
