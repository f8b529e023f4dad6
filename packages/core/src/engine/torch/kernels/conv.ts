/**
 * Convolutions and pooling. tfjs lays images out NHWC and filters [kh, kw, in, out]; ATen wants NCHW and
 * [out, in, kh, kw]. Both are permuted as views: a convolution's NCHW output seen through the NHWC permutation
 * is handed to the next one with no copy. TensorFlow's SAME padding can be uneven (one more at the bottom and
 * right), which ATen's symmetric padding cannot say: such inputs are padded explicitly first.
 */
import type { KernelConfig, NamedAttrMap, TensorInfo } from '../../../tf.js';
import { tf } from '../../../tf.js';
import type { TorchHandle } from '../addon.js';
import type { TorchBackend } from '../backend.js';
import { input, type Scratch, torchKernel } from './common.js';

type ConvInfo = ReturnType<typeof tf.backend_util.computeConv2DInfo>;
type Pads = ConvInfo['padInfo'];

const NCHW = [0, 3, 1, 2];
const NHWC = [0, 2, 3, 1];

function channelsLast(attrs: NamedAttrMap): boolean {
  return ((attrs.dataFormat as string | undefined) ?? 'NHWC') === 'NHWC';
}

function toNchw(s: Scratch, h: TorchHandle, nhwc: boolean): TorchHandle {
  return nhwc ? s.call('aten::permute', '', [h, NCHW]) : h;
}

/** Applies pads that ATen cannot (uneven ones) to an NCHW tensor; returns the tensor and ATen's padding. */
function evenPadding(s: Scratch, h: TorchHandle, pads: Pads, value: number): [TorchHandle, [number, number]] {
  if (pads.top === pads.bottom && pads.left === pads.right) return [h, [pads.top, pads.left]];
  return [s.call('aten::constant_pad_nd', '', [h, [pads.left, pads.right, pads.top, pads.bottom], value]), [0, 0]];
}

/** Cuts the explicit padding of evenPadding back off an NCHW gradient. */
function unpad(s: Scratch, h: TorchHandle, pads: Pads, height: number, width: number): TorchHandle {
  if (pads.top === pads.bottom && pads.left === pads.right) return h;
  const rows = s.call('aten::slice', 'Tensor', [h, 2, pads.top, pads.top + height, 1]);
  return s.call('aten::slice', 'Tensor', [rows, 3, pads.left, pads.left + width, 1]);
}

function convInfo(xShape: number[], filterShape: number[], attrs: NamedAttrMap, depthwise = false): ConvInfo {
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides as [number, number],
    (attrs.dilations as [number, number] | undefined) ?? 1,
    attrs.pad as 'same',
    attrs.dimRoundingMode as 'floor' | undefined,
    depthwise,
    tf.backend_util.convertConv2DDataFormat(((attrs.dataFormat as string) ?? 'NHWC') as 'NHWC'),
  );
}

function empty(b: TorchBackend, s: Scratch, shape: number[]): TorchHandle {
  return s.call('aten::empty', 'memory_format', [shape], { dtype: 'float32', device: b.device });
}

/** The output of a kernel computed in NCHW, seen in the kernel's layout. */
function result(b: TorchBackend, h: TorchHandle, nhwc: boolean, scratchOwned: boolean): TensorInfo {
  if (nhwc) return b.output(b.call('aten::permute', '', [h, NHWC]), 'float32');
  return b.output(scratchOwned ? b.alias(h) : h, 'float32');
}

/** Activations of tfjs' fused kernels. */
export function activate(
  b: TorchBackend,
  s: Scratch,
  h: TorchHandle,
  activation: string | undefined,
  attrs: NamedAttrMap,
  prelu?: TensorInfo,
): TorchHandle {
  switch (activation ?? 'linear') {
    case 'linear':
      return h;
    case 'relu':
      return s.call('aten::relu', '', [h]);
    case 'relu6':
      return s.call('aten::clamp', '', [h, 0, 6]);
    case 'elu':
      return s.call('aten::elu', '', [h]);
    case 'sigmoid':
      return s.call('aten::sigmoid', '', [h]);
    case 'leakyrelu':
      return s.call('aten::leaky_relu', '', [h, (attrs.leakyreluAlpha as number) ?? 0.2]);
    case 'prelu': {
      if (!prelu) throw new Error('torch backend: prelu activation without its weights');
      const negative = s.call('aten::mul', 'Tensor', [h, b.handle(prelu)]);
      return s.call('aten::where', 'self', [s.call('aten::gt', 'Scalar', [h, 0]), h, negative]);
    }
    default:
      throw new Error(`torch backend: unknown fused activation ${activation}`);
  }
}

function conv2d(
  b: TorchBackend,
  s: Scratch,
  inputs: Record<string, TensorInfo | undefined>,
  attrs: NamedAttrMap,
  depthwise: boolean,
) {
  const x = inputs.x as TensorInfo;
  const filter = inputs.filter as TensorInfo;
  const info = convInfo(x.shape, filter.shape, attrs, depthwise);
  const nhwc = channelsLast(attrs);
  const [xin, padding] = evenPadding(s, toNchw(s, b.handle(x), nhwc), info.padInfo, 0);
  // [kh, kw, in, out] → [out, in, kh, kw]; depthwise [kh, kw, in, multiplier] → [in·multiplier, 1, kh, kw].
  const weight = depthwise
    ? s.call('aten::reshape', '', [
        s.call('aten::permute', '', [b.handle(filter), [2, 3, 0, 1]]),
        [filter.shape[2] * filter.shape[3], 1, filter.shape[0], filter.shape[1]],
      ])
    : s.call('aten::permute', '', [b.handle(filter), [3, 2, 0, 1]]);
  const bias = inputs.bias;
  const convBias = bias && bias.shape.length === 1 && bias.shape[0] === info.outChannels ? b.handle(bias) : null;
  let out = s.call('aten::convolution', '', [
    xin,
    weight,
    convBias,
    [info.strideHeight, info.strideWidth],
    padding,
    [info.dilationHeight, info.dilationWidth],
    false,
    [0, 0],
    depthwise ? filter.shape[2] : 1,
  ]);
  if (bias && convBias === null) {
    const biasNchw = nhwc
      ? s.call('aten::permute', '', [b.handle(bias), biasPermutation(bias.shape.length)])
      : b.handle(bias);
    out = s.call('aten::add', 'Tensor', [out, biasNchw]);
  }
  out = activate(b, s, out, attrs.activation as string | undefined, attrs, inputs.preluActivationWeights);
  return result(b, out, nhwc, true);
}

/** Permutes a broadcastable NHWC-shaped bias to NCHW (rank 4 only; lower ranks align to the channel axis). */
function biasPermutation(rank: number): number[] {
  if (rank !== 4) throw new Error('torch backend: fused bias must be 1-D or rank 4');
  return NCHW;
}

export const convKernels: KernelConfig[] = [
  torchKernel('Conv2D', (b, inputs, attrs, s) => conv2d(b, s, inputs, attrs, false)),
  torchKernel('FusedConv2D', (b, inputs, attrs, s) => conv2d(b, s, inputs, attrs, false)),
  torchKernel('DepthwiseConv2dNative', (b, inputs, attrs, s) => conv2d(b, s, inputs, attrs, true)),
  torchKernel('FusedDepthwiseConv2D', (b, inputs, attrs, s) => conv2d(b, s, inputs, attrs, true)),
  torchKernel('Conv2DBackpropInput', (b, inputs, attrs, s) => {
    const dy = input(inputs, 'dy');
    const filter = input(inputs, 'filter');
    const inputShape = attrs.inputShape as number[];
    const nhwc = channelsLast(attrs);
    const info = convInfo(inputShape, filter.shape, attrs);
    const [n, c, h, w] = nhwc ? [inputShape[0], inputShape[3], inputShape[1], inputShape[2]] : inputShape;
    const even = info.padInfo.top === info.padInfo.bottom && info.padInfo.left === info.padInfo.right;
    const padded = even
      ? [n, c, h, w]
      : [n, c, h + info.padInfo.top + info.padInfo.bottom, w + info.padInfo.left + info.padInfo.right];
    const weight = s.call('aten::permute', '', [b.handle(filter), [3, 2, 0, 1]]);
    const grads = b.op(
      'aten::convolution_backward',
      '',
    )([
      toNchw(s, b.handle(dy), nhwc),
      empty(b, s, padded),
      weight,
      null,
      [info.strideHeight, info.strideWidth],
      even ? [info.padInfo.top, info.padInfo.left] : [0, 0],
      [1, 1],
      false,
      [0, 0],
      1,
      [true, false, false],
    ]) as (TorchHandle | null)[];
    const dx = s.t(grads[0] as TorchHandle);
    return result(b, unpad(s, dx, info.padInfo, h, w), nhwc, true);
  }),
  torchKernel('Conv2DBackpropFilter', (b, inputs, attrs, s) => {
    const x = input(inputs, 'x');
    const dy = input(inputs, 'dy');
    const filterShape = attrs.filterShape as number[];
    const nhwc = channelsLast(attrs);
    const info = convInfo(x.shape, filterShape, attrs);
    const [xin, padding] = evenPadding(s, toNchw(s, b.handle(x), nhwc), info.padInfo, 0);
    const [kh, kw, ci, co] = filterShape;
    const grads = b.op(
      'aten::convolution_backward',
      '',
    )([
      toNchw(s, b.handle(dy), nhwc),
      xin,
      empty(b, s, [co, ci, kh, kw]),
      null,
      [info.strideHeight, info.strideWidth],
      padding,
      [1, 1],
      false,
      [0, 0],
      1,
      [false, true, false],
    ]) as (TorchHandle | null)[];
    const dw = s.t(grads[1] as TorchHandle);
    return b.output(b.call('aten::permute', '', [dw, [2, 3, 1, 0]]), 'float32');
  }),
  torchKernel('MaxPool', (b, inputs, attrs, s) => {
    const x = input(inputs, 'x');
    const info = poolInfo(x.shape, attrs);
    const [xin, padding] = evenPadding(s, toNchw(s, b.handle(x), true), info.padInfo, Number.NEGATIVE_INFINITY);
    const out = s.call('aten::max_pool2d', '', [
      xin,
      [info.filterHeight, info.filterWidth],
      [info.strideHeight, info.strideWidth],
      padding,
      [1, 1],
      false,
    ]);
    return result(b, out, true, true);
  }),
  torchKernel('MaxPoolGrad', (b, inputs, attrs, s) => {
    const dy = input(inputs, 'dy');
    const x = input(inputs, 'input');
    const info = poolInfo(x.shape, attrs);
    const [xin, padding] = evenPadding(s, toNchw(s, b.handle(x), true), info.padInfo, Number.NEGATIVE_INFINITY);
    const args = [[info.filterHeight, info.filterWidth], [info.strideHeight, info.strideWidth], padding, [1, 1], false];
    // The argmax positions are recomputed from the input (tfjs hands the gradient no indices).
    const pooled = b.op('aten::max_pool2d_with_indices', '')([xin, ...args]) as TorchHandle[];
    s.t(pooled[0]);
    const indices = s.t(pooled[1]);
    const dx = s.call('aten::max_pool2d_with_indices_backward', '', [
      toNchw(s, b.handle(dy), true),
      xin,
      ...args,
      indices,
    ]);
    return result(b, unpad(s, dx, info.padInfo, x.shape[1], x.shape[2]), true, true);
  }),
  // tfjs averages over the window's cells inside the image: the mean is sum-pool(x) / sum-pool(ones).
  torchKernel('AvgPool', (b, inputs, attrs, s) => {
    const x = input(inputs, 'x');
    const info = poolInfo(x.shape, attrs);
    const [xin, padding] = evenPadding(s, toNchw(s, b.handle(x), true), info.padInfo, 0);
    const counts = cellCounts(b, s, info, x.shape[1], x.shape[2]);
    const pooled = s.call('aten::avg_pool2d', '', [xin, ...avgArgs(info, padding)]);
    return result(b, s.call('aten::div', 'Tensor', [pooled, counts]), true, true);
  }),
  torchKernel('AvgPoolGrad', (b, inputs, attrs, s) => {
    const dy = input(inputs, 'dy');
    const x = input(inputs, 'input');
    const info = poolInfo(x.shape, attrs);
    const [xin, padding] = evenPadding(s, toNchw(s, b.handle(x), true), info.padInfo, 0);
    const counts = cellCounts(b, s, info, x.shape[1], x.shape[2]);
    const scaled = s.call('aten::div', 'Tensor', [toNchw(s, b.handle(dy), true), counts]);
    const dx = s.call('aten::avg_pool2d_backward', '', [scaled, xin, ...avgArgs(info, padding), null]);
    return result(b, unpad(s, dx, info.padInfo, x.shape[1], x.shape[2]), true, true);
  }),
];

function poolInfo(xShape: number[], attrs: NamedAttrMap): ConvInfo {
  return tf.backend_util.computePool2DInfo(
    xShape as [number, number, number, number],
    attrs.filterSize as [number, number],
    attrs.strides as [number, number],
    1,
    attrs.pad as 'same',
    attrs.dimRoundingMode as 'floor' | undefined,
  );
}

function avgArgs(info: ConvInfo, padding: [number, number]) {
  return [[info.filterHeight, info.filterWidth], [info.strideHeight, info.strideWidth], padding, false, true];
}

/** Window cell counts × (1 / window area): avg_pool2d of ones over the same padding, [1, 1, outH, outW]. */
function cellCounts(b: TorchBackend, s: Scratch, info: ConvInfo, height: number, width: number): TorchHandle {
  const ones = s.call('aten::ones', '', [[1, 1, height, width]], { dtype: 'float32', device: b.device });
  const [padded, padding] = evenPadding(s, ones, info.padInfo, 0);
  return s.call('aten::avg_pool2d', '', [padded, ...avgArgs(info, padding)]);
}
