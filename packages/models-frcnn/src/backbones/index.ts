/**
 * The backbone zoo: importing @fedcxr/models-frcnn registers these names in core's `backbones` registry,
 * so a config line (`backbone: resnet101_fpn`) swaps one for another.
 */
import { type BackboneOptions, backbones } from '@fedcxr/core';
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
      description,
    );
  }
}
if (!backbones.has('swin_t_fpn')) {
  backbones.register(
    'swin_t_fpn',
    (options) => build(options, () => new SwinTFpnBackbone('swin_t_fpn', options as SwinTFpnOptions)),
    "Swin-T (torchvision's swin_t layout) + FPN on its 4 stages",
  );
}
