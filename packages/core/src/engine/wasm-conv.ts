/**
 * Conv2D and FusedConv2D (bias, relu) for the wasm backend on the FMA micro-kernels of ./wasm-gemm-module.ts,
 * on every thread: the input is zero-padded once, the filter packed once into 8-column panels per tap, and each
 * output row is the sum over taps of a strided product (./wasm-thread-pool.ts convRows), rows split across the
 * threads. Dilated, NCHW, grouped-like (Co not divisible by 8) or tiny convolutions stay on XNNPACK.
 */
import { type KernelFunc, type TensorInfo, tf } from '../tf.js';
import { evenBounds, heapPointer, kernelPool, type WasmHeapBackend } from './wasm-thread-pool.js';

type Pad = 'valid' | 'same' | number | [[number, number], [number, number], [number, number], [number, number]];

interface ConvArgs {
  inputs: { x: TensorInfo; filter: TensorInfo; bias?: TensorInfo; preluActivationWeights?: TensorInfo };
  attrs: {
    strides: number | [number, number];
    pad: Pad;
    dataFormat: 'NHWC' | 'NCHW';
    dilations: number | [number, number];
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
    activation?: string;
  };
  backend: WasmHeapBackend;
}

/** Multiply-adds below which XNNPACK's convolution is as fast. */
const MIN_WORK = 1 << 22;

type ConvInfo = ReturnType<typeof tf.backend_util.computeConv2DInfo>;

/** The convolution's geometry when the micro-kernels take it, else undefined. */
export function microKernelConv(
  xShape: number[],
  filterShape: number[],
  attrs: Pick<ConvArgs['attrs'], 'strides' | 'pad' | 'dataFormat' | 'dilations' | 'dimRoundingMode'>,
): ConvInfo | undefined {
  if (attrs.dataFormat !== 'NHWC' || xShape.length !== 4) return undefined;
  const dilations = typeof attrs.dilations === 'number' ? [attrs.dilations, attrs.dilations] : attrs.dilations;
  if (dilations[0] !== 1 || dilations[1] !== 1) return undefined;
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad as Parameters<typeof tf.backend_util.computeConv2DInfo>[4],
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
  const work =
    info.batchSize *
    info.outHeight *
    info.outWidth *
    info.outChannels *
    info.inChannels *
    info.filterHeight *
    info.filterWidth;
  if (info.outChannels % 8 !== 0 || info.outWidth < 1 || info.outHeight < 1 || work < MIN_WORK) return undefined;
  if (info.padInfo.top < 0 || info.padInfo.left < 0 || info.padInfo.bottom < 0 || info.padInfo.right < 0)
    return undefined;
  return info;
}

/** Conv2D that runs on the micro-kernels when it can and on `original` otherwise. */
export function fastConv2D(original: KernelFunc): KernelFunc {
  return ((args: ConvArgs) => {
    const { x, filter } = args.inputs;
    const info = x.dtype === 'float32' ? microKernelConv(x.shape, filter.shape, args.attrs) : undefined;
    if (!info) return original(args as never);
    return convolve(args.backend, x, filter, info);
  }) as unknown as KernelFunc;
}

/** FusedConv2D (bias and relu or none) on the micro-kernels; other activations and shapes on `original`. */
export function fastFusedConv2D(original: KernelFunc): KernelFunc {
  return ((args: ConvArgs) => {
    const { x, filter, bias, preluActivationWeights } = args.inputs;
    const activation = args.attrs.activation ?? 'linear';
    const supported = (activation === 'linear' || activation === 'relu') && !preluActivationWeights;
    const info = supported && x.dtype === 'float32' ? microKernelConv(x.shape, filter.shape, args.attrs) : undefined;
    if (!info) return original(args as never);
    const { backend } = args;
    let out = convolve(backend, x, filter, info);
    const apply = (kernelName: string, inputs: Record<string, TensorInfo>) => {
      const kernel = tf.getKernel(kernelName, 'wasm');
      if (!kernel) throw new Error(`wasm has no ${kernelName} kernel`);
      const next = kernel.kernelFunc({ inputs, attrs: {}, backend }) as TensorInfo;
      backend.disposeData(out.dataId);
      out = next;
    };
    if (bias) apply('Add', { a: out, b: bias });
    if (activation === 'relu') apply('Relu', { x: out });
    return out;
  }) as unknown as KernelFunc;
}

function convolve(backend: WasmHeapBackend, x: TensorInfo, filter: TensorInfo, info: ConvInfo): TensorInfo {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const { filterHeight, filterWidth, strideHeight, strideWidth, padInfo } = info;
  const out = backend.makeOutput([batchSize, outHeight, outWidth, outChannels], 'float32');
  const pool = kernelPool(backend);
  const padded = padInfo.top + padInfo.bottom + padInfo.left + padInfo.right > 0;
  // A 1×1 stride-1 convolution is one product over every pixel.
  const pointwise = filterHeight === 1 && filterWidth === 1 && strideHeight === 1 && strideWidth === 1 && !padded;
  const paddedHeight = inHeight + padInfo.top + padInfo.bottom;
  const paddedWidth = inWidth + padInfo.left + padInfo.right;
  const copy = padded ? backend.makeOutput([batchSize, paddedHeight, paddedWidth, inChannels], 'float32') : undefined;
  const packed = backend.makeOutput([filterHeight * filterWidth * inChannels * outChannels], 'float32');
  try {
    // Views after every allocation (a grown heap detaches older ones).
    const heap = new Float32Array(pool.memory.buffer);
    // Each tap's [Ci, Co] filter into its own panels.
    const taps = filterHeight * filterWidth;
    pool.pack(heapPointer(backend, filter), heapPointer(backend, packed), inChannels, outChannels, false, taps);
    if (copy)
      padInto(heap, heapPointer(backend, x) / 4, heapPointer(backend, copy) / 4, info, paddedHeight, paddedWidth);
    const input = heapPointer(backend, copy ?? x);
    if (pointwise) {
      // One product over every pixel: its rows split across the threads.
      const pixels = batchSize * outHeight * outWidth;
      pool.gemm(
        [
          input,
          inChannels * 4,
          4,
          heapPointer(backend, packed),
          inChannels,
          outChannels / 8,
          heapPointer(backend, out),
          outChannels * 4,
        ],
        evenBounds(pixels, pool.threads, 4),
      );
    } else {
      pool.conv(
        [
          input,
          paddedHeight,
          paddedWidth,
          inChannels,
          heapPointer(backend, packed),
          filterHeight,
          filterWidth,
          strideHeight,
          strideWidth,
          heapPointer(backend, out),
          outHeight,
          outWidth,
          outChannels,
        ],
        evenBounds(batchSize * outHeight, pool.threads),
      );
    }
  } finally {
    if (copy) backend.disposeData(copy.dataId);
    backend.disposeData(packed.dataId);
  }
  return out;
}

/** x [N, H, W, C] into the middle of a zeroed [N, H + top + bottom, W + left + right, C]. */
function padInto(
  heap: Float32Array,
  source: number,
  target: number,
  info: ConvInfo,
  height: number,
  width: number,
): void {
  const { batchSize, inHeight, inWidth, inChannels, padInfo } = info;
  heap.fill(0, target, target + batchSize * height * width * inChannels);
  const rowLength = inWidth * inChannels;
  for (let n = 0; n < batchSize; n++) {
    for (let h = 0; h < inHeight; h++) {
      const from = source + (n * inHeight + h) * rowLength;
      const to = target + ((n * height + h + padInfo.top) * width + padInfo.left) * inChannels;
      heap.copyWithin(to, from, from + rowLength);
    }
  }
}
