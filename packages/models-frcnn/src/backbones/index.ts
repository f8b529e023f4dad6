/**
 * The backbone zoo: importing @fedcxr/models-frcnn registers these names in core's `backbones` registry,
 * so a config line (`backbone: resnet101_fpn`) swaps one for another. Each entry carries its options
 * schema, its known ImageNet weights, its preprocessing and torchvision's detector name as an alias.
 */
import { type BackboneOptions, backbones, TORCHVISION_PREPROCESSING } from '@fedcxr/core';
import { z } from 'zod';
import { BACKBONE_WEIGHTS } from '../weights/known.js';
import { withInitSeed, withoutRandomInit } from './params.js';
import { RESNET_SPECS, ResNetFpnBackbone, type ResNetFpnOptions } from './resnet.js';
import { SwinTFpnBackbone, type SwinTFpnOptions } from './swin.js';

export { applyFpn, defineFpn, FPN_CHANNELS, fpnOutputs } from './fpn.js';
export { isIgnoredBuffer, ParamStore, withInitSeed, withoutRandomInit } from './params.js';
export { FROZEN_BN_EPS, RESNET_SPECS, ResNetFpnBackbone, type ResNetFpnOptions, type ResNetSpec } from './resnet.js';
export { SWIN_T, SwinTFpnBackbone, type SwinTFpnOptions } from './swin.js';

/**
 * `randomInit: false` (for weights loaded right after) builds with zeros instead of random draws; a numeric
 * `seed` makes the random initial values reproducible.
 */
function build<T>(options: BackboneOptions, make: () => T): T {
  if (options.randomInit === false) return withoutRandomInit(make);
  return typeof options.seed === 'number' ? withInitSeed(options.seed, make) : make();
}

/** Options every zoo backbone takes (BackboneOptions); other settings pass through. */
export const fpnBackboneOptionsSchema = z.looseObject({
  /** torchvision's trainable_layers: 0–5 (ResNet: layer4 … conv1; Swin-T: stages from the last). */
  trainableLayers: z.number().int().min(0).max(5).optional(),
  /** Key prefix of every variable (default 'backbone.'). */
  prefix: z.string().optional(),
  /** false: zeros instead of random initial values (weights are loaded right after). */
  randomInit: z.boolean().optional(),
  /** Makes the random initial values reproducible. */
  seed: z.number().optional(),
});

/** Swin-T-FPN's options: the common ones and stochastic depth. */
export const swinTFpnOptionsSchema = fpnBackboneOptionsSchema.extend({
  /** Drop-path probability of the last block (linear in depth; training only; default 0.2). */
  stochasticDepthProb: z.number().min(0).max(1).optional(),
});

const resnets: [string, string, string][] = [
  ['resnet18_fpn', 'resnet18', 'ResNet-18 + FPN (small: trains at a useful speed on CPUs at reduced input size)'],
  ['resnet50_fpn', 'resnet50', "ResNet-50 + FPN (torchvision's fasterrcnn_resnet50_fpn backbone)"],
  ['resnet101_fpn', 'resnet101', 'ResNet-101 + FPN (torchvision layout)'],
];

for (const [name, resnet, description] of resnets) {
  if (!backbones.has(name)) {
    backbones.register(
      name,
      (options) => build(options, () => new ResNetFpnBackbone(name, RESNET_SPECS[resnet], options as ResNetFpnOptions)),
      {
        description,
        options: fpnBackboneOptionsSchema,
        weights: BACKBONE_WEIGHTS[name],
        preprocessing: TORCHVISION_PREPROCESSING,
        aliases: [`fasterrcnn_${name}`],
      },
    );
  }
}
if (!backbones.has('swin_t_fpn')) {
  backbones.register(
    'swin_t_fpn',
    (options) => build(options, () => new SwinTFpnBackbone('swin_t_fpn', options as SwinTFpnOptions)),
    {
      description: "Swin-T (torchvision's swin_t layout) + FPN on its 4 stages",
      options: swinTFpnOptionsSchema,
      weights: BACKBONE_WEIGHTS.swin_t_fpn,
      preprocessing: TORCHVISION_PREPROCESSING,
      aliases: ['fasterrcnn_swin_t_fpn'],
    },
  );
}
