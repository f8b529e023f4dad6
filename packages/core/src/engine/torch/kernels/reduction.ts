/** Reductions, scans, softmax and top-k. tfjs axes may be negative or a single number; ATen takes lists. */
import type { DataType, KernelConfig, TensorInfo } from '../../../tf.js';
import type { TorchHandle } from '../addon.js';
import type { TorchBackend } from '../backend.js';
import { asDtype, axesOf, input, torchKernel } from './common.js';

function identityOf(b: TorchBackend, x: TensorInfo): TensorInfo {
  return b.output(b.alias(b.handle(x)), x.dtype);
}

/** tfjs reductions over no axis return the input; ATen's would reduce every axis. */
function reduction(
  kernelName: string,
  reduce: (b: TorchBackend, x: TorchHandle, axes: number[], keepDims: boolean, dtype: DataType) => TorchHandle,
  outDtype: (x: TensorInfo) => DataType,
): KernelConfig {
  return torchKernel(kernelName, (b, inputs, attrs) => {
    const x = input(inputs, 'x');
    const axes = axesOf((attrs.axis ?? attrs.reductionIndices) as number | number[], x.shape.length);
    const keepDims = Boolean(attrs.keepDims);
    if (axes.length === 0) return identityOf(b, x);
    const dtype = outDtype(x);
    return asDtype(b, reduce(b, b.handle(x), axes, keepDims, dtype), dtype);
  });
}

const integerKeeping = (x: TensorInfo): DataType => (x.dtype === 'bool' ? 'int32' : x.dtype);

export const reductionKernels: KernelConfig[] = [
  reduction(
    'Sum',
    (b, x, axes, keep, dtype) => b.call('aten::sum', 'dim_IntList', [x, axes, keep], { dtype }),
    integerKeeping,
  ),
  reduction(
    'Prod',
    (b, x, axes, keep, dtype) => {
      let h = x;
      for (const axis of [...axes].sort((p, q) => q - p)) {
        const next = b.call('aten::prod', 'dim_int', [h, axis, keep], { dtype });
        if (h !== x) b.free(h);
        h = next;
      }
      return h;
    },
    integerKeeping,
  ),
  reduction(
    'Mean',
    (b, x, axes, keep) => b.call('aten::mean', 'dim', [x, axes, keep]),
    () => 'float32',
  ),
  reduction(
    'Max',
    (b, x, axes, keep) => b.call('aten::amax', '', [x, axes, keep]),
    (x) => x.dtype,
  ),
  reduction(
    'Min',
    (b, x, axes, keep) => b.call('aten::amin', '', [x, axes, keep]),
    (x) => x.dtype,
  ),
  reduction(
    'All',
    (b, x, axes, keep) => b.call('aten::all', 'dims', [x, axes, keep]),
    () => 'bool',
  ),
  reduction(
    'Any',
    (b, x, axes, keep) => b.call('aten::any', 'dims', [x, axes, keep]),
    () => 'bool',
  ),
  ...(['ArgMax', 'ArgMin'] as const).map((name) =>
    torchKernel(name, (b, inputs, attrs) => {
      const x = input(inputs, 'x');
      const axis = axesOf(attrs.axis as number, x.shape.length)[0];
      return asDtype(
        b,
        b.call(name === 'ArgMax' ? 'aten::argmax' : 'aten::argmin', '', [b.handle(x), axis, false]),
        'int32',
      );
    }),
  ),
  torchKernel('Cumsum', (b, inputs, attrs, s) => {
    const x = input(inputs, 'x');
    const axis = axesOf(attrs.axis as number, x.shape.length)[0];
    const dtype = integerKeeping(x);
    let h = b.handle(x);
    if (attrs.reverse) h = s.call('aten::flip', '', [h, [axis]]);
    let sum = s.call('aten::cumsum', '', [h, axis], { dtype });
    if (attrs.exclusive) sum = s.call('aten::sub', 'Tensor', [sum, h]);
    if (attrs.reverse) sum = s.call('aten::flip', '', [sum, [axis]]);
    return asDtype(b, b.alias(sum), dtype);
  }),
  torchKernel('Softmax', (b, inputs, attrs) => {
    const x = input(inputs, 'logits');
    const dim = axesOf(attrs.dim as number, x.shape.length)[0];
    return b.output(b.call('aten::_softmax', '', [b.handle(x), dim, false]), x.dtype);
  }),
  torchKernel('TopK', (b, inputs, attrs) => {
    const x = input(inputs, 'x');
    const [values, indices] = b.op('aten::topk', '')([b.handle(x), attrs.k as number, -1, true, true]) as [
      TorchHandle,
      TorchHandle,
    ];
    return [b.output(values, x.dtype), asDtype(b, indices, 'int32')];
  }),
];
