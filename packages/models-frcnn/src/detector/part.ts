/**
 * What the detector's parts share (torchvision's nn.Module, reduced to what a detector needs): a part owns
 * its parameters, named by torchvision state_dict key relative to the part (`conv.0.0.weight`); a composite
 * prefixes its children's names (`rpn.` + `head.` + …). The one way to read and write weights is the
 * named state dict: `stateDict(parameters)` and `loadStateDict(parameters, weights)`, which convert
 * layouts through ops/layout.ts, so checkpoints keep torchvision's key names and layouts.
 */
import { type Backbone, FedcxrError, type NamedTensors, tf } from '@fedcxr/core';
import { type Parameter, ParamStore } from '../backbones/params.js';
import { tfjsToTorch, torchShape, torchToTfjs, type WeightLayout } from '../ops/layout.js';

export type { Parameter } from '../backbones/params.js';

/** Parameters by state_dict key, in state_dict order. */
export type NamedParameters = Map<string, Parameter>;

/** A network part that owns its parameters (torchvision's nn.Module). */
export interface Part {
  /** Every parameter (trainable or frozen) with its key relative to this part, in state_dict order. */
  parameters(): NamedParameters;
  /** Disposes the part's variables. */
  dispose(): void;
}

/** A part that holds its own weights in one store (a head, a predictor): `parameters` and `dispose` from it. */
export abstract class LeafPart implements Part {
  protected readonly params = new ParamStore('');

  parameters(): NamedParameters {
    return this.params.parameters();
  }

  dispose(): void {
    this.params.dispose();
  }
}

/** `params` with `prefix` in front of every key (a child's keys as its parent names them). */
export function prefixed(prefix: string, params: NamedParameters): NamedParameters {
  return new Map([...params].map(([key, parameter]) => [prefix + key, parameter]));
}

/** Several parts' parameters under their prefixes, in the order given. */
export function joinParameters(...groups: [prefix: string, part: Pick<Part, 'parameters'>][]): NamedParameters {
  const out: NamedParameters = new Map();
  for (const [prefix, part] of groups) for (const [key, p] of prefixed(prefix, part.parameters())) out.set(key, p);
  return out;
}

/**
 * Where a backbone says how each weight is laid out (needed where rank does not tell, e.g. Swin's 2-D
 * relative-position tables, which are not linear weights): a `layoutOf` method, or the ParamStore the
 * zoo's backbones keep in `params`.
 */
interface BackboneWithLayouts extends Backbone {
  params?: { layoutOf?(name: string): WeightLayout | undefined };
}

/**
 * A core Backbone as a part: its variables under `backbone.` (kept when the backbone already uses it, as
 * the zoo's do), each with its layout (the backbone's word, else by rank: 4 = conv, 2 = linear).
 */
export function backboneParameters(backbone: Backbone): NamedParameters {
  const out: NamedParameters = new Map();
  const withLayouts = backbone as BackboneWithLayouts;
  for (const [name, variable] of backbone.variables()) {
    const layout =
      withLayouts.layoutOf?.(name) ??
      withLayouts.params?.layoutOf?.(name) ??
      (variable.rank === 4 ? 'conv' : variable.rank === 2 ? 'linear' : 'plain');
    out.set(name.startsWith('backbone.') ? name : `backbone.${name}`, { variable, layout });
  }
  return out;
}

/** The named state dict: every parameter in torchvision's layout, by key. */
export function stateDict(params: NamedParameters): NamedTensors {
  const out: NamedTensors = new Map();
  for (const [name, { variable, layout }] of params) out.set(name, tfjsToTorch(variable, layout));
  return out;
}

/**
 * Sets parameters from a named state dict (torchvision layouts). strict (default): every parameter must be
 * given and no other key (num_batches_tracked aside); shapes are always checked, and nothing is assigned
 * unless everything fits. `owner` names the model in the error.
 */
export function loadStateDict(
  params: NamedParameters,
  weights: NamedTensors,
  options: { strict?: boolean; owner?: string } = {},
): void {
  const strict = options.strict ?? true;
  const problems: string[] = [];
  if (strict) {
    for (const name of params.keys()) if (!weights.has(name)) problems.push(`missing ${name}`);
    for (const name of weights.keys()) {
      if (!params.has(name) && !name.endsWith('num_batches_tracked')) problems.push(`unexpected ${name}`);
    }
  }
  for (const [name, { variable, layout }] of params) {
    const host = weights.get(name);
    if (!host) continue;
    const expected = torchShape(variable.shape, layout);
    if (host.shape.join(',') !== expected.join(',')) {
      problems.push(`${name}: shape [${host.shape.join(', ')}] but the model has [${expected.join(', ')}]`);
    }
  }
  if (problems.length > 0) {
    const shown = problems.slice(0, 8).join('; ');
    throw new FedcxrError(
      'weights_mismatch',
      `${options.owner ?? 'model'}: ${shown}${problems.length > 8 ? `; and ${problems.length - 8} more` : ''}`,
    );
  }
  for (const [name, { variable, layout }] of params) {
    const host = weights.get(name);
    if (!host) continue;
    const value = torchToTfjs(name, host, layout);
    variable.assign(value);
    value.dispose();
  }
}

/** Disposes every variable of `params`. */
export function disposeParameters(params: NamedParameters): void {
  for (const { variable } of params.values()) variable.dispose();
}

/** torchvision's RPNHead initialization: N(0, 0.01), drawn from `seed`. */
export function normal001(shape: number[], seed: number): tf.Tensor {
  return tf.randomNormal(shape, 0, 0.01, 'float32', seed);
}

/** nn.Linear's default initialization (weight and bias): U(±1/√fan_in), drawn from `seed`. */
export function linearUniform(shape: number[], fanIn: number, seed: number): tf.Tensor {
  return tf.randomUniform(shape, -1 / Math.sqrt(fanIn), 1 / Math.sqrt(fanIn), 'float32', seed);
}
