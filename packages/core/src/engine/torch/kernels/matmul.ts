/** Matrix products (batched, broadcasting) and tfjs' fused product with bias and activation. */
import type { KernelConfig } from '../../../tf.js';
import type { TorchHandle } from '../addon.js';
import { input, type Scratch, torchKernel } from './common.js';
import { activate } from './conv.js';

function transposed(s: Scratch, h: TorchHandle, transpose: unknown): TorchHandle {
  return transpose ? s.call('aten::transpose', 'int', [h, -2, -1]) : h;
}

export const matmulKernels: KernelConfig[] = [
  torchKernel('BatchMatMul', (b, inputs, attrs, s) => {
    const a = transposed(s, b.handle(input(inputs, 'a')), attrs.transposeA);
    const bb = transposed(s, b.handle(input(inputs, 'b')), attrs.transposeB);
    return b.output(b.call('aten::matmul', '', [a, bb]), 'float32');
  }),
  torchKernel('_FusedMatMul', (b, inputs, attrs, s) => {
    const a = transposed(s, b.handle(input(inputs, 'a')), attrs.transposeA);
    const bb = transposed(s, b.handle(input(inputs, 'b')), attrs.transposeB);
    let out = s.call('aten::matmul', '', [a, bb]);
    if (inputs.bias) out = s.call('aten::add', 'Tensor', [out, b.handle(inputs.bias)]);
    out = activate(b, s, out, attrs.activation as string | undefined, attrs, inputs.preluActivationWeights);
    return b.output(b.alias(out), 'float32');
  }),
];
