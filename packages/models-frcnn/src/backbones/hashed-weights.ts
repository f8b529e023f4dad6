/**
 * Deterministic weights from an integer hash of (tensor name, element index), bit-identical to
 * `hashed_value` in tools/reference/backbone_make_fixtures.py: parity fixtures for these need no
 * checkpoint file and no Python, so they run everywhere (CI included).
 */
import type { Backbone, NamedTensors } from '@fedcxr/core';
import { torchShape } from '../ops/layout.js';

function fnv1a(name: string): number {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(name)) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return h;
}

/** u in [0, 1) per element: murmur3-style finalizer of (index · golden + fnv1a(name)) mod 2³². */
export function hashedUniform(name: string, count: number): Float64Array {
  const seed = fnv1a(name);
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    let h = (Math.imul(i, 0x9e3779b1) + seed) >>> 0;
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b) >>> 0;
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35) >>> 0;
    h ^= h >>> 16;
    out[i] = (h >>> 0) / 4294967296;
  }
  return out;
}

/** The value rule: a uniform draw scaled by the tensor's role (torch layout shape). */
export function hashedValues(name: string, shape: readonly number[]): Float32Array {
  const count = shape.reduce((a, b) => a * b, 1);
  const u = hashedUniform(name, count);
  const leaf = name.slice(name.lastIndexOf('.') + 1);
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const centered = (2 * u[i] - 1) * Math.sqrt(3);
    let v: number;
    if (leaf === 'running_var') v = 0.5 + 1.5 * u[i];
    else if (leaf === 'running_mean') v = 0.1 * centered;
    else if (leaf === 'relative_position_bias_table') v = 0.5 * centered;
    else if (leaf === 'bias') v = 0.05 * centered;
    else if (leaf === 'weight' && shape.length === 1) v = 1 + 0.2 * centered;
    else v = centered / Math.sqrt(fanIn);
    out[i] = v;
  }
  return out;
}

/** Hashed weights for every variable of a backbone, in torchvision layout (ready for loadWeights). */
export function hashedWeights(backbone: Backbone): NamedTensors {
  const weights: NamedTensors = new Map();
  for (const [key, variable] of backbone.variables()) {
    const shape = torchShape(variable.shape, backbone.layoutOf?.(key) ?? 'plain');
    weights.set(key, { dtype: 'float32', shape, data: hashedValues(key, shape) });
  }
  return weights;
}
