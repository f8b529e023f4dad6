export const VERSION = '0.1.0';
// Backbones (importing the package registers resnet18_fpn, resnet50_fpn, resnet101_fpn, swin_t_fpn).
export * from './backbones/index.js';
export { findStateDict, PickledObject, parsePth, readPth } from './weights/pth.js';
