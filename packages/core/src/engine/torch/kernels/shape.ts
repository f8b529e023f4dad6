/** Kernels that move, cut, join and create tensors: reshape, transpose, slices, concat, pads, gathers, fills. */
import type { DataType, KernelConfig, TensorInfo } from '../../../tf.js';
import { tf } from '../../../tf.js';
import type { TorchHandle } from '../addon.js';
import type { TorchBackend } from '../backend.js';
import { asDtype, axesOf, input, type Scratch, torchKernel } from './common.js';

/** Narrows `handle` to [begin, begin + size) on every axis where that is not the whole axis (views). */
function sliceView(
  s: Scratch,
  handle: TorchHandle,
  shape: readonly number[],
  begin: readonly number[],
  size: readonly number[],
): TorchHandle {
  let h = handle;
  for (let d = 0; d < shape.length; d++) {
    if (begin[d] === 0 && size[d] === shape[d]) continue;
    h = s.call('aten::slice', 'Tensor', [h, d, begin[d], begin[d] + size[d], 1]);
  }
  return h;
}

/** tfjs int32 indices as an index tensor on the backend's device. */
function indexTensor(b: TorchBackend, values: Int32Array): TorchHandle {
  return b.torch.fromBuffer(values, [values.length], 'int32', b.device);
}

/** A new handle with the values of `h` laid out densely in row-major order (a copy only when needed). */
function contiguous(b: TorchBackend, h: TorchHandle): TorchHandle {
  return b.call('aten::contiguous', '', [h]);
}

function identity(b: TorchBackend, x: TensorInfo): TensorInfo {
  b.incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}

export const shapeKernels: KernelConfig[] = [
  torchKernel('Identity', (b, inputs) => identity(b, input(inputs, 'x'))),
  torchKernel('Reshape', (b, inputs, attrs) => {
    const x = input(inputs, 'x');
    return b.output(b.call('aten::reshape', '', [b.handle(x), attrs.shape as number[]]), x.dtype);
  }),
  torchKernel('ExpandDims', (b, inputs, attrs) => {
    const x = input(inputs, 'input');
    const dim = attrs.dim as number;
    return b.output(b.call('aten::unsqueeze', '', [b.handle(x), dim < 0 ? dim + x.shape.length + 1 : dim]), x.dtype);
  }),
  // Transposes, slices and splits are copied out (as tfjs' own backends do) rather than kept as strided
  // views: a matrix product or convolution may sum in another order over another layout, and a weight
  // transposed in from a checkpoint must compute to the bit what the same weight trained in memory does.
  torchKernel('Transpose', (b, inputs, attrs, s) => {
    const x = input(inputs, 'x');
    return b.output(contiguous(b, s.call('aten::permute', '', [b.handle(x), attrs.perm as number[]])), x.dtype);
  }),
  torchKernel('Slice', (b, inputs, attrs, s) => {
    const x = input(inputs, 'x');
    const [begin, size] = tf.slice_util.parseSliceParams(
      x as unknown as tf.Tensor,
      attrs.begin as number[],
      attrs.size as number[],
    );
    const view = sliceView(s, b.handle(x), x.shape, begin, size);
    return b.output(contiguous(b, view), x.dtype);
  }),
  torchKernel('StridedSlice', (b, inputs, attrs, s) => {
    const x = input(inputs, 'x');
    const info = tf.slice_util.sliceInfo(
      x.shape,
      attrs.begin as number[],
      attrs.end as number[],
      attrs.strides as number[],
      attrs.beginMask as number,
      attrs.endMask as number,
      attrs.ellipsisMask as number,
      attrs.newAxisMask as number,
      attrs.shrinkAxisMask as number,
    );
    let h = b.handle(x);
    if (!info.isIdentity) {
      for (let d = 0; d < x.shape.length; d++) {
        const start = info.begin[d];
        const step = info.strides[d];
        const count = Math.max(0, Math.ceil((info.end[d] - start) / step));
        if (step > 0) {
          if (start === 0 && step === 1 && count === x.shape[d]) continue;
          h = s.call('aten::slice', 'Tensor', [
            h,
            d,
            start,
            count === 0 ? start : start + (count - 1) * step + 1,
            step,
          ]);
        } else {
          const picks = Int32Array.from({ length: count }, (_, k) => start + k * step);
          h = s.call('aten::index_select', '', [h, d, s.t(indexTensor(b, picks))]);
        }
      }
    }
    return b.output(b.call('aten::reshape', '', [h, info.finalShape]), x.dtype);
  }),
  torchKernel('Concat', (b, inputs, attrs) => {
    const list = Object.values(inputs) as TensorInfo[];
    const axis = axesOf(attrs.axis as number, list[0].shape.length)[0];
    const outShape = tf.backend_util.computeOutShape(
      list.map((t) => t.shape),
      axis,
    );
    const nonEmpty = list.filter((t) => t.shape.reduce((p, d) => p * d, 1) > 0);
    const dtype = list.map((t) => t.dtype).reduce((a, c) => tf.upcastType(a, c) as DataType);
    if (nonEmpty.length === 0) {
      return b.output(b.call('aten::zeros', '', [outShape], { dtype, device: b.device }), dtype);
    }
    return asDtype(b, b.call('aten::cat', '', [nonEmpty.map((t) => b.handle(t)), axis]), dtype);
  }),
  torchKernel('Pack', (b, inputs, attrs) => {
    const list = Object.values(inputs) as TensorInfo[];
    const axis = axesOf(attrs.axis as number, list[0].shape.length + 1)[0];
    return b.output(b.call('aten::stack', '', [list.map((t) => b.handle(t)), axis]), list[0].dtype);
  }),
  torchKernel('Unpack', (b, inputs, attrs, s) => {
    const x = input(inputs, 'value');
    const axis = axesOf(attrs.axis as number, x.shape.length)[0];
    const parts = b.op('aten::unbind', 'int')([b.handle(x), axis]) as TorchHandle[];
    return parts.map((h) => b.output(contiguous(b, s.t(h)), x.dtype));
  }),
  torchKernel('SplitV', (b, inputs, attrs, s) => {
    const x = input(inputs, 'x');
    const axis = axesOf(attrs.axis as number, x.shape.length)[0];
    const sizes = tf.backend_util.prepareSplitSize(
      x as unknown as tf.Tensor,
      attrs.numOrSizeSplits as number[] | number,
      axis,
    );
    const parts = b.op('aten::split_with_sizes', '')([b.handle(x), sizes, axis]) as TorchHandle[];
    return parts.map((h) => b.output(contiguous(b, s.t(h)), x.dtype));
  }),
  torchKernel('PadV2', (b, inputs, attrs) => {
    const x = input(inputs, 'x');
    const paddings = attrs.paddings as [number, number][];
    const pad: number[] = [];
    for (let d = paddings.length - 1; d >= 0; d--) pad.push(paddings[d][0], paddings[d][1]);
    return b.output(
      b.call('aten::constant_pad_nd', '', [b.handle(x), pad, (attrs.constantValue as number) ?? 0]),
      x.dtype,
    );
  }),
  torchKernel('Tile', (b, inputs, attrs) => {
    const x = input(inputs, 'x');
    return b.output(b.call('aten::repeat', '', [b.handle(x), attrs.reps as number[]]), x.dtype);
  }),
  torchKernel('BroadcastTo', (b, inputs, attrs) => {
    const x = input(inputs, 'x');
    const shape = attrs.shape as number[];
    const reshaped = b.call('aten::reshape', '', [
      b.handle(x),
      [...Array(shape.length - x.shape.length).fill(1), ...x.shape],
    ]);
    const out = b.call('aten::expand', '', [reshaped, shape]);
    b.free(reshaped);
    return b.output(out, x.dtype);
  }),
  torchKernel('Reverse', (b, inputs, attrs) => {
    const x = input(inputs, 'x');
    const dims = axesOf(attrs.dims as number | number[], x.shape.length);
    if (dims.length === 0) return identity(b, x);
    return b.output(b.call('aten::flip', '', [b.handle(x), dims]), x.dtype);
  }),
  torchKernel('GatherV2', (b, inputs, attrs, s) => {
    const x = input(inputs, 'x');
    const indices = input(inputs, 'indices');
    if (((attrs.batchDims as number) ?? 0) !== 0) throw new Error('torch backend: GatherV2 with batchDims > 0');
    const axis = axesOf(attrs.axis as number, x.shape.length)[0];
    const flat = s.call('aten::reshape', '', [b.handle(indices), [-1]]);
    const gathered = s.call('aten::index_select', '', [b.handle(x), axis, flat]);
    const outShape = [...x.shape.slice(0, axis), ...indices.shape, ...x.shape.slice(axis + 1)];
    return b.output(b.call('aten::reshape', '', [gathered, outShape]), x.dtype);
  }),
  torchKernel('GatherNd', (b, inputs, _attrs, s) => {
    const params = input(inputs, 'params');
    const indices = input(inputs, 'indices');
    const depth = indices.shape[indices.shape.length - 1];
    const strides = new Int32Array(depth);
    let stride = 1;
    for (let d = depth - 1; d >= 0; d--) {
      strides[d] = stride;
      stride *= params.shape[d];
    }
    const weights = s.t(indexTensor(b, strides));
    const linear = s.call(
      'aten::sum',
      'dim_IntList',
      [s.call('aten::mul', 'Tensor', [b.handle(indices), weights]), [-1], false],
      {
        dtype: 'int32',
      },
    );
    const rows = s.call('aten::reshape', '', [b.handle(params), [stride, -1]]);
    const picked = s.call('aten::index_select', '', [rows, 0, s.call('aten::reshape', '', [linear, [-1]])]);
    const outShape = [...indices.shape.slice(0, -1), ...params.shape.slice(depth)];
    return b.output(b.call('aten::reshape', '', [picked, outShape]), params.dtype);
  }),
  torchKernel('UnsortedSegmentSum', (b, inputs, attrs, s) => {
    const x = input(inputs, 'x');
    const ids = input(inputs, 'segmentIds');
    const rest = x.shape.slice(ids.shape.length);
    const rows = s.call('aten::reshape', '', [b.handle(x), [-1, ...rest]]);
    const flatIds = s.call('aten::reshape', '', [b.handle(ids), [-1]]);
    const zeros = s.call('aten::zeros', '', [[attrs.numSegments as number, ...rest]], {
      dtype: x.dtype,
      device: b.device,
    });
    return b.output(b.call('aten::index_add', '', [zeros, 0, flatIds, rows]), x.dtype);
  }),
  torchKernel('Fill', (b, _inputs, attrs) => {
    const dtype = (attrs.dtype as DataType) ?? 'float32';
    return b.output(
      b.call('aten::full', '', [attrs.shape as number[], attrs.value as number], { dtype, device: b.device }),
      dtype,
    );
  }),
  torchKernel('ZerosLike', (b, inputs) => {
    const x = input(inputs, 'x');
    return b.output(b.call('aten::zeros_like', '', [b.handle(x)]), x.dtype);
  }),
  torchKernel('OnesLike', (b, inputs) => {
    const x = input(inputs, 'x');
    return b.output(b.call('aten::ones_like', '', [b.handle(x)]), x.dtype);
  }),
  // The values are computed as tfjs' cpu kernel does (a running sum), so both backends agree to the bit.
  torchKernel('Range', (b, _inputs, attrs) => {
    const dtype = (attrs.dtype as DataType) ?? 'float32';
    const { start, stop, step } = attrs as unknown as { start: number; stop: number; step: number };
    const count = Math.max(Math.ceil((stop - start) / step), 0);
    const values = dtype === 'int32' ? new Int32Array(count) : new Float32Array(count);
    if (count > 0) values[0] = start;
    for (let i = 1; i < count; i++) values[i] = values[i - 1] + step;
    return b.output(b.torch.fromBuffer(values, [count], dtype, b.device), dtype);
  }),
  torchKernel('OneHot', (b, inputs, attrs, s) => {
    const indices = input(inputs, 'indices');
    const { depth, onValue, offValue } = attrs as unknown as { depth: number; onValue: number; offValue: number };
    const dtype = (attrs.dtype as DataType) ?? 'int32';
    const classes = s.call('aten::arange', '', [depth], { dtype: 'int32', device: b.device });
    const expanded = s.call('aten::unsqueeze', '', [b.handle(indices), -1]);
    const mask = s.call('aten::eq', 'Tensor', [expanded, classes]);
    const values = s.call('aten::where', 'Scalar', [mask, onValue, offValue]);
    return b.output(b.call('aten::_to_copy', '', [values], { dtype }), dtype);
  }),
];
