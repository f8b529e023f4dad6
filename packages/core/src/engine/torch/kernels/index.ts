/** Every kernel the torch backend registers, by family. */
import type { KernelConfig } from '../../../tf.js';
import { convKernels } from './conv.js';
import { elementwiseKernels } from './elementwise.js';
import { extraKernels } from './extra.js';
import { imageKernels } from './image.js';
import { matmulKernels } from './matmul.js';
import { reductionKernels } from './reduction.js';
import { shapeKernels } from './shape.js';
import { sparseKernels } from './sparse.js';

export { CSR_MATMUL } from './sparse.js';

export const torchKernels: KernelConfig[] = [
  ...elementwiseKernels,
  ...shapeKernels,
  ...reductionKernels,
  ...convKernels,
  ...matmulKernels,
  ...imageKernels,
  ...sparseKernels,
  ...extraKernels,
];
