/**
 * The TFJS-free foundation every fedcxr package stands on: errors, raster images, atomic writes, the seeded
 * random generator, masks to boxes and the seed study's class names. It imports no TensorFlow.js, so
 * `@fedcxr/dicom` (which needs only these) installs without it; `@fedcxr/core` re-exports every name here.
 */
export const VERSION = '0.1.0';

export * from './atomic.js';
export * from './errors.js';
export * from './iou.js';
export * from './mask.js';
export * from './raster.js';
export * from './rng.js';
export * from './seed-classes.js';
