/**
 * Which images an epoch visits, in which order. Class imbalance is handled as in LVIS / Detectron2's
 * RepeatFactorTrainingSampler: with f_c the fraction of training images that contain class c and t the
 * threshold, class c gets r_c = max(1, sqrt(t / f_c)); an image gets the largest r_c of its classes (1 for
 * an image without boxes), and each epoch repeats it floor(r) times plus once more with probability
 * frac(r) (stochastic rounding). Negatives (normal images, no boxes) stay in the epoch and train the
 * detector's background; `negativesRatio` caps them per epoch at ratio × positives, drawn at random.
 * Every draw comes from a stream derived from (seed, epoch): the sampler has no hidden state, so a
 * resumed run gets exactly the epoch the interrupted run was in.
 */

import { rngFor } from '@fedcxr/base';
import type { SamplerConfig } from './config.js';

export interface SamplerInput {
  /** For each training image, the classes of its boxes (empty for a negative image). */
  imageClasses: readonly (readonly number[])[];
}

export function repeatFactors(imageClasses: readonly (readonly number[])[], threshold: number): number[] {
  const imagesWithClass = new Map<number, number>();
  for (const classes of imageClasses) {
    for (const c of new Set(classes)) imagesWithClass.set(c, (imagesWithClass.get(c) ?? 0) + 1);
  }
  const n = Math.max(1, imageClasses.length);
  const classFactor = new Map<number, number>();
  for (const [c, count] of imagesWithClass) classFactor.set(c, Math.max(1, Math.sqrt(threshold / (count / n))));
  return imageClasses.map((classes) => classes.reduce((r, c) => Math.max(r, classFactor.get(c) ?? 1), 1));
}

export class EpochSampler {
  private readonly factors: number[] | null;

  constructor(
    private readonly input: SamplerInput,
    private readonly config: SamplerConfig,
    private readonly seed: number,
  ) {
    this.factors =
      config.repeatFactorThreshold === null ? null : repeatFactors(input.imageClasses, config.repeatFactorThreshold);
  }

  /** The image indices of epoch `epoch` (0-based), repeats included, in training order. */
  epochIndices(epoch: number): number[] {
    const rng = rngFor(this.seed, 'sampler', epoch);
    const positives: number[] = [];
    const negatives: number[] = [];
    this.input.imageClasses.forEach((classes, index) => {
      const r = this.factors ? this.factors[index] : 1;
      const whole = Math.floor(r);
      const copies = whole + (rng.next() < r - whole ? 1 : 0);
      const bucket = classes.length > 0 ? positives : negatives;
      for (let k = 0; k < copies; k++) bucket.push(index);
    });
    let keptNegatives = negatives;
    if (this.config.negativesRatio !== null) {
      const cap = Math.floor(this.config.negativesRatio * positives.length);
      keptNegatives = rng.shuffle([...negatives]).slice(0, cap);
      keptNegatives.sort((a, b) => a - b);
    }
    const indices = [...positives, ...keptNegatives];
    if (this.config.shuffle) rng.shuffle(indices);
    else indices.sort((a, b) => a - b);
    return indices;
  }
}
