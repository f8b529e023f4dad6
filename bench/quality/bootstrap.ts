/**
 * How sure is a ratio measured on 90 test images? A paired bootstrap over the test images (Efron; the usual
 * way detection papers put an interval on a test-set AP): draw the images with replacement, score both sides'
 * saved predictions on the same draw with the COCO evaluator (identical to pycocotools, proven in core/eval), and
 * take the ratio of the seeds' mean AP. The 2.5th and 97.5th percentiles of 2000 draws bound the ratio; the share
 * of draws at or above a goal says how often the test split alone would have reported the goal met.
 */
import { Rng } from '@fedcxr/base';
// The evaluator's module alone (no TensorFlow.js), as report.ts imports its charts: the GPU bundle stays small.
import type { CocoDataset, CocoResult } from '../../packages/core/src/coco.js';
import { evaluateCoco } from '../../packages/core/src/eval/coco-eval.js';

export interface BootstrapSeed {
  seed: number;
  torchvision: readonly CocoResult[];
  ours: readonly CocoResult[];
}

export interface RatioInterval {
  /** The ratio on the test split itself (the seeds' mean ours / the seeds' mean torchvision). */
  observed: number;
  low: number;
  high: number;
  /** Share of draws whose ratio is at least `goal`. */
  atLeastGoal: number;
}

export interface BootstrapResult {
  /** The seeds whose predictions were drawn (a kept seed's may live in another clone's cache). */
  seeds: number[];
  /** Seeds left out, and why. */
  missing: string[];
  resamples: number;
  images: number;
  goal: number;
  /** Keyed by metric: AP, AP50, AP75, AR100. */
  ratio: Record<string, RatioInterval>;
}

const METRICS = { AP: 0, AP50: 1, AP75: 2, AR100: 8 } as const;

function byImage<T extends { image_id: number }>(items: readonly T[]): Map<number, T[]> {
  const map = new Map<number, T[]>();
  for (const item of items) {
    const list = map.get(item.image_id);
    if (list) list.push(item);
    else map.set(item.image_id, [item]);
  }
  return map;
}

/** The test set drawn with replacement: each drawn copy of an image becomes an image of its own. */
function resample(
  test: CocoDataset,
  draw: readonly number[],
  annotations: Map<number, CocoDataset['annotations']>,
  results: readonly Map<number, CocoResult[]>[],
): { gt: CocoDataset; dts: CocoResult[][] } {
  const gt: CocoDataset = { ...test, images: [], annotations: [] };
  const dts: CocoResult[][] = results.map(() => []);
  let annotationId = 1;
  draw.forEach((index, copy) => {
    const image = test.images[index];
    const id = copy + 1;
    gt.images.push({ ...image, id });
    for (const a of annotations.get(image.id) ?? []) gt.annotations.push({ ...a, id: annotationId++, image_id: id });
    results.forEach((side, s) => {
      for (const r of side.get(image.id) ?? []) dts[s].push({ ...r, image_id: id });
    });
  });
  return { gt, dts };
}

function percentile(sorted: readonly number[], q: number): number {
  const position = q * (sorted.length - 1);
  const low = Math.floor(position);
  const high = Math.ceil(position);
  return sorted[low] + (sorted[high] - sorted[low]) * (position - low);
}

export function pairedBootstrap(
  test: CocoDataset,
  seeds: readonly BootstrapSeed[],
  options: {
    resamples?: number;
    seed?: number;
    goal?: number;
    missing?: string[];
    onProgress?: (done: number, total: number) => void;
  } = {},
): BootstrapResult {
  const resamples = options.resamples ?? 2000;
  const goal = options.goal ?? 0.95;
  const rng = new Rng(options.seed ?? 0);
  const n = test.images.length;
  const annotations = byImage(test.annotations);
  const results = seeds.flatMap((s) => [byImage(s.torchvision), byImage(s.ours)]);
  /** Per metric, the ratio of the seeds' mean on one draw. */
  const ratioOn = (draw: readonly number[]): Record<string, number> => {
    const { gt, dts } = resample(test, draw, annotations, results);
    const stats = dts.map((dt) => evaluateCoco(gt, dt).stats);
    const out: Record<string, number> = {};
    for (const [name, index] of Object.entries(METRICS)) {
      let torchvision = 0;
      let ours = 0;
      for (let s = 0; s < seeds.length; s++) {
        torchvision += stats[2 * s][index];
        ours += stats[2 * s + 1][index];
      }
      out[name] = torchvision > 0 ? ours / torchvision : Number.NaN;
    }
    return out;
  };
  const observed = ratioOn(Array.from({ length: n }, (_, i) => i));
  const draws: Record<string, number[]> = Object.fromEntries(Object.keys(METRICS).map((m) => [m, []]));
  for (let r = 0; r < resamples; r++) {
    const ratios = ratioOn(Array.from({ length: n }, () => rng.int(n)));
    for (const [name, value] of Object.entries(ratios)) if (Number.isFinite(value)) draws[name].push(value);
    options.onProgress?.(r + 1, resamples);
  }
  const ratio: Record<string, RatioInterval> = {};
  for (const [name, values] of Object.entries(draws)) {
    const sorted = [...values].sort((a, b) => a - b);
    ratio[name] = {
      observed: observed[name],
      low: percentile(sorted, 0.025),
      high: percentile(sorted, 0.975),
      atLeastGoal: sorted.filter((v) => v >= goal).length / Math.max(1, sorted.length),
    };
  }
  return { seeds: seeds.map((s) => s.seed), missing: options.missing ?? [], resamples, images: n, goal, ratio };
}
