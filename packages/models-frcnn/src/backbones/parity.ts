/**
 * Compares a backbone's outputs with a torchvision fixture written by
 * tools/reference/backbone_make_fixtures.py (per-level shape, sum, mean, std and sampled values).
 */
import { readFileSync } from 'node:fs';
import type { Backbone, NamedTensors } from '@fedcxr/core';
import { tf } from '@fedcxr/core';
import { tfjsToTorch } from '../ops/layout.js';
import { backboneFixtures, syntheticImages } from './testing.js';

export interface LevelFixture {
  name: string;
  shape_nchw: [number, number, number, number];
  sum: number;
  mean: number;
  std: number;
  max_abs: number;
  samples: { index_nchw: [number, number, number, number][]; values: number[] };
}

export interface BackboneFixture {
  arch: string;
  weights_checksum: number;
  num_tensors: number;
  cases: { input: [number, number, number, number]; levels: LevelFixture[] }[];
  /** loss = Σ_levels mean(map²) in eval mode; torch autograd gradients of some parameters (torch layouts). */
  gradients?: { input: [number, number, number, number]; loss: number; params: LevelFixture[] };
}

export function readBackboneFixture(arch: string): BackboneFixture {
  return JSON.parse(readFileSync(`${backboneFixtures}/${arch}.json`, 'utf8')) as BackboneFixture;
}

/** Σ|w| over floating tensors (float64), as the fixture script computes it. */
export function weightsChecksum(weights: NamedTensors): number {
  let sum = 0;
  for (const tensor of weights.values()) {
    if (tensor.dtype !== 'float32' && tensor.dtype !== 'float16') continue;
    for (const v of tensor.data) sum += Math.abs(v);
  }
  return sum;
}

export interface LevelComparison {
  name: string;
  shapeOk: boolean;
  /** Largest |ts − torch| / max(|torch|, level std) over the sampled values. */
  worstSampleError: number;
  /** |std_ts − std_torch| / std_torch. */
  stdError: number;
  /** |mean_ts − mean_torch| / std_torch. */
  meanError: number;
}

/** Runs every fixture case through the backbone (eval mode) and measures the errors per level. */
export function compareWithFixture(backbone: Backbone, fixture: BackboneFixture): LevelComparison[][] {
  return fixture.cases.map((testCase) => {
    const [batch, , height, width] = testCase.input;
    const images = syntheticImages(batch, height, width);
    const outputs = backbone.apply(images, false);
    images.dispose();
    const result = testCase.levels.map((level) => {
      const map = outputs.get(level.name);
      if (!map) throw new Error(`backbone has no output ${level.name}`);
      const [n, c, h, w] = level.shape_nchw;
      const shapeOk = map.shape[0] === n && map.shape[1] === h && map.shape[2] === w && map.shape[3] === c;
      const data = map.dataSync();
      let sum = 0;
      for (const v of data) sum += v;
      const mean = sum / data.length;
      let squares = 0;
      for (const v of data) squares += (v - mean) ** 2;
      const std = Math.sqrt(squares / data.length);
      let worstSampleError = 0;
      level.samples.index_nchw.forEach(([ni, ci, yi, xi], k) => {
        const got = data[((ni * h + yi) * w + xi) * c + ci];
        const want = level.samples.values[k];
        worstSampleError = Math.max(worstSampleError, Math.abs(got - want) / Math.max(Math.abs(want), level.std));
      });
      return {
        name: level.name,
        shapeOk,
        worstSampleError,
        stdError: Math.abs(std - level.std) / level.std,
        meanError: Math.abs(mean - level.mean) / level.std,
      };
    });
    for (const map of outputs.values()) map.dispose();
    return result;
  });
}

export interface GradientComparison {
  name: string;
  shapeOk: boolean;
  worstSampleError: number;
  stdError: number;
}

/** tf.variableGrads of the fixture's loss; gradients brought back to torch layout and compared. */
export function compareGradients(
  backbone: Backbone,
  fixture: BackboneFixture,
): { loss: number; lossError: number; params: GradientComparison[] } {
  const spec = fixture.gradients;
  if (!spec) throw new Error(`fixture ${fixture.arch} has no gradients`);
  const [batch, , height, width] = spec.input;
  const images = syntheticImages(batch, height, width);
  const variables = backbone.variables();
  const chosen = spec.params.map((p) => {
    const variable = variables.get(p.name);
    if (!variable) throw new Error(`backbone has no variable ${p.name}`);
    return variable;
  });
  const { value, grads } = tf.variableGrads(() => {
    const outputs = backbone.apply(images, false);
    return tf.addN([...outputs.values()].map((map) => tf.mean(tf.square(map)))) as tf.Scalar;
  }, chosen);
  const loss = value.dataSync()[0];
  const params = spec.params.map((p, i) => {
    const grad = grads[chosen[i].name];
    const torchGrad = tfjsToTorch(grad, backbone.layoutOf?.(p.name) ?? 'plain');
    const shapeOk = torchGrad.shape.join() === p.shape_nchw.join();
    const data = torchGrad.data;
    const strides = p.shape_nchw.map((_, d) => p.shape_nchw.slice(d + 1).reduce((a, b) => a * b, 1));
    let worstSampleError = 0;
    p.samples.index_nchw.forEach((index, k) => {
      const flat = index.reduce((sum, v, d) => sum + v * strides[d], 0);
      const want = p.samples.values[k];
      worstSampleError = Math.max(worstSampleError, Math.abs(data[flat] - want) / Math.max(Math.abs(want), p.std));
    });
    let sum = 0;
    for (const v of data) sum += v;
    const mean = sum / data.length;
    let squares = 0;
    for (const v of data) squares += (v - mean) ** 2;
    const stdError = Math.abs(Math.sqrt(squares / data.length) - p.std) / p.std;
    return { name: p.name, shapeOk, worstSampleError, stdError };
  });
  tf.dispose([images, value, ...Object.values(grads)]);
  return { loss, lossError: Math.abs(loss - spec.loss) / Math.abs(spec.loss), params };
}

export { tf };
