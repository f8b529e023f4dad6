/**
 * `FedcxrCsrMatMul`: a sparse matrix in CSR form (rowOffsets, columns, values) times a dense [R, C] matrix,
 * giving [rows, C]. Faster R-CNN's RoIAlign is one such product (every output bin is a weighted sum of feature
 * rows, with weights fixed by the boxes) and so is its gradient (the transposed matrix times dy). On ATen it
 * is embedding_bag in sum mode with per-sample weights, which never materializes the gathered rows.
 */
import type { KernelConfig } from '../../../tf.js';
import { CSR_MATMUL } from '../../kernel-names.js';
import type { TorchHandle } from '../addon.js';
import { input, torchKernel } from './common.js';

export { CSR_MATMUL };

export const sparseKernels: KernelConfig[] = [
  torchKernel(CSR_MATMUL, (b, inputs) => {
    const dense = input(inputs, 'dense');
    const outputs = b.op(
      'aten::embedding_bag',
      '',
    )([
      b.handle(dense),
      b.handle(input(inputs, 'columns')),
      b.handle(input(inputs, 'rowOffsets')),
      false,
      0,
      false,
      b.handle(input(inputs, 'values')),
      true,
    ]) as TorchHandle[];
    b.freeAll(outputs.slice(1));
    return b.output(outputs[0], 'float32');
  }),
];
