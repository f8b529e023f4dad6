export const VERSION = '0.1.0';

export { writeFileAtomic, writeJsonAtomic } from './atomic.js';
export type { CocoAnnotation, CocoCategory, CocoDataset, CocoImage, CocoResult } from './coco.js';
export { type ConfigIssue, parseConfig } from './config.js';
export { asFedcxrError, FedcxrError } from './errors.js';
export { Registry } from './registry.js';
export { elementCount, type HostDType, type HostTensor, type NamedTensors } from './tensors.js';
