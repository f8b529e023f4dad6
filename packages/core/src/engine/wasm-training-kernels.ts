/**
 * Completes tfjs' wasm backend for training. tfjs-backend-wasm 4.22 has no Conv2DBackpropFilter (so no
 * convolution trains), a Conv2DBackpropInput that is a plain scalar loop (~1.5 GFLOP/s, 20× slower than its
 * forward convolution) and a transposed-A matrix product that runs at ~0.3 GFLOP/s. Registered here:
 *
 * - Conv2DBackpropFilter: an im2col product. The filter gradient of tap (i, j) is xᵢⱼᵀ·dy where xᵢⱼ is the
 *   (padded, strided) input window the tap sees, so the whole gradient is im2colᵀ·dy, one XNNPACK product
 *   [kh·kw·Ci, rows]·[rows, Co] that lands in the filter's own layout (details at each function).
 * - Conv2DBackpropInput (replaces the slow one): the input gradient is a stride-1 convolution of dy by the
 *   spatially flipped filter with in/out channels swapped, on XNNPACK's convolution; for stride > 1 one such
 *   convolution per output phase (sub-pixel decomposition), interleaved.
 * - Tile (replaces wasm's, ~100× slower than a copy): block copies that double in place. The gradients of
 *   mean/sum/moments (every batch norm) broadcast through Tile, so it sits on the training hot path.
 * - CSR_MATMUL (RoIAlign and its gradient as one sparse product, ./wasm-csr.ts): a SIMD loop on the wasm heap,
 *   on every thread of the backend.
 * - BatchMatMul (./wasm-gemm.ts): fused multiply-add micro-kernels on every thread, ~2.5× XNNPACK's wasm
 *   build (SIMD128 multiply and add only) on the box head's products; small products stay on XNNPACK.
 * - Conv2D and FusedConv2D (./wasm-conv.ts): the same micro-kernels, one strided product per filter tap and
 *   output row (no im2col), on every thread.
 * - Sum and Mean over leading axes (replace wasm's for that case only): wasm transposes the whole input to
 *   make the reduced axes innermost first; batch norm's statistics and gradients all reduce over [0, 1, 2].
 *   Summed here row by row into float64 accumulators, straight from the wasm heap.
 * - Every other kernel the cpu backend has and wasm lacks (UnsortedSegmentSum, the depthwise backprops, …):
 *   runs the cpu backend's kernel on a copy of the inputs. Correct, not fast; none is on a ResNet's hot path.
 *
 * NCHW data or dilated convolutions fall back to the cpu kernels as well.
 */

import { type DataId, type KernelBackend, type KernelFunc, type NamedAttrMap, type TensorInfo, tf } from '../tf.js';
import { CSR_MATMUL } from './kernel-names.js';
import { fixCpuKernels } from './resize-tables.js';
import { fastConv2D, fastFusedConv2D } from './wasm-conv.js';
import { wasmCsrMatMul } from './wasm-csr.js';
import { fastBatchMatMul, onMicroKernels } from './wasm-gemm.js';
import { evenBounds, heapPointer, kernelPool, type WasmHeapBackend } from './wasm-thread-pool.js';

type Inputs = Record<string, TensorInfo> | TensorInfo[];

/** The wasm backend's heap (wasm-thread-pool.ts) and its typed views. */
interface WasmBackendLike extends WasmHeapBackend {
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array | Uint8Array;
}

export interface RegisteredKernel {
  kernelName: string;
  /** `wasm`: built from the wasm backend's own fast kernels; `cpu-fallback`: the cpu kernel on copied data. */
  via: 'wasm' | 'cpu-fallback';
}

/** Kernels whose tensors the wasm backend cannot hold (complex numbers, strings); never bridged. */
const unbridgeable = new Set(['Complex', 'ComplexAbs', 'Real', 'Imag', 'FFT', 'IFFT', 'Draw', 'StaticRegexReplace']);

let registered: RegisteredKernel[] | undefined;

/** Registers the kernels above for `wasm` (once per process). Returns what was registered, for doctor/tests. */
export function registerWasmTrainingKernels(): RegisteredKernel[] {
  if (registered) return registered;
  fixCpuKernels();
  const list: RegisteredKernel[] = [];
  const fast: Record<string, KernelFunc> = {
    Conv2DBackpropFilter: conv2dBackpropFilter as unknown as KernelFunc,
    Conv2DBackpropInput: conv2dBackpropInput as unknown as KernelFunc,
    Tile: tile as unknown as KernelFunc,
    [CSR_MATMUL]: wasmCsrMatMul as unknown as KernelFunc,
  };
  const matMul = tf.getKernel('BatchMatMul', 'wasm')?.kernelFunc;
  if (matMul) fast.BatchMatMul = fastBatchMatMul(matMul);
  const conv = tf.getKernel('Conv2D', 'wasm')?.kernelFunc;
  if (conv) fast.Conv2D = fastConv2D(conv);
  const fusedConv = tf.getKernel('FusedConv2D', 'wasm')?.kernelFunc;
  if (fusedConv) fast.FusedConv2D = fastFusedConv2D(fusedConv);
  for (const kernelName of ['Sum', 'Mean'] as const) {
    const original = tf.getKernel(kernelName, 'wasm')?.kernelFunc;
    if (original) fast[kernelName] = leadingAxesReduction(kernelName, original);
  }
  for (const [kernelName, kernelFunc] of Object.entries(fast)) {
    if (tf.getKernel(kernelName, 'wasm')) tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc });
    list.push({ kernelName, via: 'wasm' });
  }
  const onWasm = new Set(tf.getKernelsForBackend('wasm').map((k) => k.kernelName));
  for (const { kernelName } of tf.getKernelsForBackend('cpu')) {
    if (onWasm.has(kernelName) || unbridgeable.has(kernelName)) continue;
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: cpuFallback(kernelName) });
    list.push({ kernelName, via: 'cpu-fallback' });
  }
  registered = list;
  return list;
}

/** Runs kernels of one backend directly (no engine, no tape) and frees every intermediate at the end. */
class KernelScope {
  private readonly temporaries: TensorInfo[] = [];
  readonly backend: KernelBackend;
  /** Column blocks cut from a b operand, by its data (see narrowProduct). */
  readonly blocksOf = new Map<DataId, TensorInfo[]>();
  private readonly backendName: string;

  constructor(backend: KernelBackend, backendName: string) {
    this.backend = backend;
    this.backendName = backendName;
  }

  run(kernelName: string, inputs: Inputs, attrs: object = {}): TensorInfo {
    const kernel = tf.getKernel(kernelName, this.backendName);
    if (!kernel) throw new Error(`kernel ${kernelName} is not registered for ${this.backendName}`);
    const out = kernel.kernelFunc({
      inputs: inputs as Record<string, TensorInfo>,
      attrs: attrs as NamedAttrMap,
      backend: this.backend,
    });
    const info = Array.isArray(out) ? out[0] : out;
    this.temporaries.push(info);
    return info;
  }

  /** Frees `info` with the other intermediates. */
  track(info: TensorInfo): TensorInfo {
    this.temporaries.push(info);
    return info;
  }

  /** Hands `info` to the caller: it survives dispose(). */
  keep(info: TensorInfo): TensorInfo {
    const index = this.temporaries.lastIndexOf(info);
    if (index >= 0) this.temporaries.splice(index, 1);
    return info;
  }

  dispose(): void {
    for (const info of this.temporaries) this.backend.disposeData(info.dataId);
    this.temporaries.length = 0;
  }
}

interface ConvGradArgs<I> {
  inputs: I;
  backend: KernelBackend;
  attrs: {
    strides: number | [number, number];
    pad: 'valid' | 'same' | number | [[number, number], [number, number], [number, number], [number, number]];
    dataFormat: 'NHWC' | 'NCHW';
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
    filterShape?: [number, number, number, number];
    inputShape?: [number, number, number, number];
  };
}

function convInfoOf(
  xShape: [number, number, number, number],
  filterShape: [number, number, number, number],
  attrs: ConvGradArgs<unknown>['attrs'],
) {
  const pad = attrs.pad as Parameters<typeof tf.backend_util.computeConv2DInfo>[4];
  return tf.backend_util.computeConv2DInfo(
    xShape,
    filterShape,
    attrs.strides,
    1,
    pad,
    attrs.dimRoundingMode,
    false,
    tf.backend_util.convertConv2DDataFormat(attrs.dataFormat),
  );
}

function conv2dBackpropFilter(args: ConvGradArgs<{ x: TensorInfo; dy: TensorInfo }>): TensorInfo | TensorInfo[] {
  const { inputs, backend, attrs } = args;
  const { x, dy } = inputs;
  const filterShape = attrs.filterShape as [number, number, number, number];
  const info = convInfoOf(x.shape as [number, number, number, number], filterShape, attrs);
  if (info.dataFormat !== 'channelsLast') return cpuFallback('Conv2DBackpropFilter')(args as never);
  const { batchSize, inChannels, outChannels, outHeight, outWidth, filterHeight, filterWidth } = info;
  const { strideHeight, strideWidth, padInfo, inHeight, inWidth } = info;
  const rows = batchSize * outHeight * outWidth;
  const scope = new KernelScope(backend, 'wasm');
  const matMul = (a: TensorInfo, b: TensorInfo) => narrowProduct(scope, a, b);
  try {
    const dyMatrix = scope.run('Reshape', { x: dy }, { shape: [rows, outChannels] });
    const unpadded = padInfo.top === 0 && padInfo.bottom === 0 && padInfo.left === 0 && padInfo.right === 0;
    const pointwise = filterHeight === 1 && filterWidth === 1 && strideHeight === 1 && strideWidth === 1 && unpadded;
    if (pointwise) {
      // dW = xᵀ·dy. XNNPACK wants neither operand transposed, so one is: the wider one; the narrower is the
      // packed b (packing cost grows faster than linearly with b's width).
      const xMatrix = scope.run('Reshape', { x }, { shape: [rows, inChannels] });
      if (outChannels <= inChannels) {
        const xT = scope.run('Transpose', { x: xMatrix }, { perm: [1, 0] }); // [Ci, rows]
        return scope.keep(scope.run('Reshape', { x: matMul(xT, dyMatrix) }, { shape: filterShape }));
      }
      const dyT = scope.run('Transpose', { x: dyMatrix }, { perm: [1, 0] }); // [Co, rows]
      const dw = scope.run('Transpose', { x: matMul(dyT, xMatrix) }, { perm: [1, 0] }); // [Co, Ci] → [Ci, Co]
      return scope.keep(scope.run('Reshape', { x: dw }, { shape: filterShape }));
    }
    if (strideHeight === 1 && strideWidth === 1) {
      return scope.keep(scope.run('Reshape', { x: shiftedGridProduct(scope, x, dy, info) }, { shape: filterShape }));
    }
    // Pad so every tap's strided window lies inside; extra rows/columns past the last window are never read.
    const spanHeight = (outHeight - 1) * strideHeight + filterHeight;
    const spanWidth = (outWidth - 1) * strideWidth + filterWidth;
    const bottom = Math.max(0, spanHeight - inHeight - padInfo.top);
    const right = Math.max(0, spanWidth - inWidth - padInfo.left);
    let padded = x;
    if (padInfo.top || padInfo.left || bottom || right) {
      padded = scope.run(
        'PadV2',
        { x },
        {
          paddings: [
            [0, 0],
            [padInfo.top, bottom],
            [padInfo.left, right],
            [0, 0],
          ],
          constantValue: 0,
        },
      );
    }
    const channelsFirst = scope.run('Transpose', { x: padded }, { perm: [3, 0, 1, 2] }); // [Ci, N, Hp, Wp]
    // im2colᵀ [kh·kw·Ci, rows] gathered with the stride, then one product for all taps.
    const wasm = backend as WasmBackendLike;
    const columns = scope.track(wasm.makeOutput([filterHeight * filterWidth * inChannels, rows], 'float32'));
    const target = wasm.typedArrayFromHeap(columns);
    const source = wasm.typedArrayFromHeap(channelsFirst);
    const [, , paddedHeight, paddedWidth] = channelsFirst.shape;
    let at = 0;
    for (let i = 0; i < filterHeight; i++) {
      for (let j = 0; j < filterWidth; j++) {
        for (let c = 0; c < inChannels; c++) {
          for (let n = 0; n < batchSize; n++) {
            const image = (c * batchSize + n) * paddedHeight;
            for (let h = 0; h < outHeight; h++) {
              let from = (image + i + h * strideHeight) * paddedWidth + j;
              for (let w = 0; w < outWidth; w++, from += strideWidth) target[at++] = source[from];
            }
          }
        }
      }
    }
    return scope.keep(scope.run('Reshape', { x: narrowProduct(scope, columns, dyMatrix) }, { shape: filterShape }));
  } finally {
    scope.dispose();
  }
}

/**
 * Stride-1 filter-gradient taps without gathering windows: on the padded grid flattened to rows
 * [N·Hp·Wp, C], tap (i, j)'s window is the contiguous row range shifted by i·Wp + j, provided dy is laid on
 * the same grid with zeros outside its Ho×Wo corner (those zeros also cancel every shift that crosses into the
 * next row or image). With x channels-first, each tap is (x's columns shifted by the tap)·dy: one copy per
 * channel and one XNNPACK product whose b (dy) is the same tensor for every tap, so it is packed once.
 */
function shiftedGridProduct(
  scope: KernelScope,
  x: TensorInfo,
  dy: TensorInfo,
  info: ReturnType<typeof convInfoOf>,
): TensorInfo {
  const { batchSize, inChannels, outChannels, outHeight, outWidth, filterHeight, filterWidth, padInfo } = info;
  const gridHeight = outHeight + filterHeight - 1;
  const gridWidth = outWidth + filterWidth - 1;
  const bottom = gridHeight - info.inHeight - padInfo.top;
  const right = gridWidth - info.inWidth - padInfo.left;
  let grid = x;
  if (padInfo.top || padInfo.left || bottom || right) {
    if (bottom < 0 || right < 0) {
      grid = scope.run(
        'Slice',
        { x },
        {
          begin: [0, 0, 0, 0],
          size: [batchSize, info.inHeight + Math.min(0, bottom), info.inWidth + Math.min(0, right), inChannels],
        },
      );
    }
    grid = scope.run(
      'PadV2',
      { x: grid },
      {
        paddings: [
          [0, 0],
          [padInfo.top, Math.max(0, bottom)],
          [padInfo.left, Math.max(0, right)],
          [0, 0],
        ],
        constantValue: 0,
      },
    );
  }
  const cells = batchSize * gridHeight * gridWidth;
  // dy is zero on the last (kh−1)·Wp + kw−1 cells of the grid, so rows past `span` are never needed.
  const maxShift = (filterHeight - 1) * gridWidth + (filterWidth - 1);
  const span = cells - maxShift;
  // dy on the grid, zero outside its Ho×Wo corner.
  const dyGrid = scope.run(
    'PadV2',
    { x: dy },
    {
      paddings: [
        [0, 0],
        [0, gridHeight - outHeight],
        [0, gridWidth - outWidth],
        [0, 0],
      ],
      constantValue: 0,
    },
  );
  if (onMicroKernels([inChannels, span], [span, outChannels], false, false)) {
    return shiftedTapProducts(scope, grid, dyGrid, info, gridWidth, span);
  }
  const xT = scope.run(
    'Transpose',
    { x: scope.run('Reshape', { x: grid }, { shape: [cells, inChannels] }) },
    {
      perm: [1, 0],
    },
  ); // [Ci, cells]
  // The same b for every tap: XNNPACK packs it once (its operator cache is keyed on b's tensor).
  const dyRows = scope.run(
    'Slice',
    { x: scope.run('Reshape', { x: dyGrid }, { shape: [cells, outChannels] }) },
    {
      begin: [0, 0],
      size: [span, outChannels],
    },
  );
  // im2colᵀ [kh·kw·Ci, span]: row (tap, ci) is x's channel ci shifted by the tap; one product for all taps.
  const backend = scope.backend as WasmBackendLike;
  const columns = backend.makeOutput([filterHeight * filterWidth * inChannels, span], 'float32');
  scope.track(columns);
  const target = backend.typedArrayFromHeap(columns);
  const source = backend.typedArrayFromHeap(xT);
  let row = 0;
  for (let i = 0; i < filterHeight; i++) {
    for (let j = 0; j < filterWidth; j++) {
      const shift = i * gridWidth + j;
      for (let c = 0; c < inChannels; c++, row++) {
        const from = c * cells + shift;
        target.set(source.subarray(from, from + span), row * span);
      }
    }
  }
  return narrowProduct(scope, columns, dyRows); // [kh·kw·Ci, Co]
}

/**
 * Sum/Mean that reduce the leading axes of a float32 tensor (e.g. [0, 1, 2] of NHWC) without a transpose:
 * rows are added into float64 accumulators. Any other case goes to wasm's own kernel.
 */
function leadingAxesReduction(kind: 'Sum' | 'Mean', original: KernelFunc): KernelFunc {
  return (args) => {
    const { inputs, attrs } = args;
    const backend = args.backend as WasmBackendLike;
    const x = (inputs as { x: TensorInfo }).x;
    const { axis, keepDims } = attrs as { axis: number | number[]; keepDims: boolean };
    const rank = x.shape.length;
    const axes = [...new Set((Array.isArray(axis) ? axis : [axis]).map((a) => (a < 0 ? a + rank : a)))].sort(
      (a, b) => a - b,
    );
    const leading = axes.length > 0 && axes.length < rank && axes.every((a, i) => a === i);
    if (x.dtype !== 'float32' || !leading) return original(args);
    const rows = x.shape.slice(0, axes.length).reduce((a, b) => a * b, 1);
    const columns = x.shape.slice(axes.length).reduce((a, b) => a * b, 1);
    const outShape = keepDims ? x.shape.map((d, i) => (i < axes.length ? 1 : d)) : x.shape.slice(axes.length);
    const out = backend.makeOutput(outShape, 'float32');
    const target = backend.typedArrayFromHeap(out);
    const source = backend.typedArrayFromHeap(x);
    const totals = new Float64Array(columns);
    for (let r = 0, offset = 0; r < rows; r++, offset += columns) {
      for (let c = 0; c < columns; c++) totals[c] += source[offset + c];
    }
    const scale = kind === 'Mean' ? 1 / rows : 1;
    for (let c = 0; c < columns; c++) target[c] = totals[c] * scale;
    return out;
  };
}

/**
 * shiftedGridProduct on the micro-kernels, without im2col: tap (i, j)'s gradient [Ci, Co] is (the grid's rows
 * shifted by i·Wp + j)ᵀ · dy-on-the-grid, a product whose A is the grid itself read through strides (transposed:
 * channels 4 bytes apart, rows Ci·4). dy is packed once for all taps; each product writes its tap's block of
 * the filter gradient in place. Memory: one packed copy of dy (im2col would hold kh·kw copies of x).
 */
function shiftedTapProducts(
  scope: KernelScope,
  grid: TensorInfo,
  dyGrid: TensorInfo,
  info: ReturnType<typeof convInfoOf>,
  gridWidth: number,
  span: number,
): TensorInfo {
  const { inChannels, outChannels, filterHeight, filterWidth } = info;
  const backend = scope.backend as WasmBackendLike;
  const packed = scope.track(backend.makeOutput([span * outChannels], 'float32'));
  const gradient = scope.track(backend.makeOutput([filterHeight * filterWidth * inChannels, outChannels], 'float32'));
  const pool = kernelPool(backend);
  pool.pack(heapPointer(backend, dyGrid), heapPointer(backend, packed), span, outChannels, false);
  const bounds = evenBounds(inChannels, pool.threads, 4);
  for (let i = 0; i < filterHeight; i++) {
    for (let j = 0; j < filterWidth; j++) {
      const shift = i * gridWidth + j;
      const tap = i * filterWidth + j;
      pool.gemm(
        [
          heapPointer(backend, grid) + shift * inChannels * 4,
          4,
          inChannels * 4,
          heapPointer(backend, packed),
          span,
          outChannels / 8,
          heapPointer(backend, gradient) + tap * inChannels * outChannels * 4,
          outChannels * 4,
        ],
        bounds,
      );
    }
  }
  return gradient;
}

/** Widest b XNNPACK packs quickly (products the micro-kernels take are not split): packing [K, N] costs far more than K·N copies once N grows past ~64. */
const packedColumns = 64;

/**
 * a·b on XNNPACK with b split into ≤64-column blocks. The blocks are cut once per b and kept in the scope,
 * so repeated products with the same b (the taps of one filter gradient) reuse XNNPACK's packed weights.
 */
function narrowProduct(scope: KernelScope, a: TensorInfo, b: TensorInfo): TensorInfo {
  const product = (left: TensorInfo, right: TensorInfo) =>
    scope.run('BatchMatMul', { a: left, b: right }, { transposeA: false, transposeB: false });
  const columns = b.shape[1];
  // The micro-kernels pack b themselves, cheaply: blocks would only re-read a once per block.
  if (columns <= packedColumns || onMicroKernels(a.shape, b.shape, false, false)) return product(a, b);
  let blocks = scope.blocksOf.get(b.dataId);
  if (!blocks) {
    blocks = [];
    for (let begin = 0; begin < columns; begin += packedColumns) {
      const width = Math.min(packedColumns, columns - begin);
      blocks.push(scope.track(columnRange(scope.backend as WasmBackendLike, b, begin, width)));
    }
    scope.blocksOf.set(b.dataId, blocks);
  }
  return scope.run(
    'Concat',
    blocks.map((block) => product(a, block)),
    { axis: 1 },
  );
}

/** Columns [begin, begin + width) of a row-major [rows, columns] float tensor: one copy per row. */
function columnRange(backend: WasmBackendLike, matrix: TensorInfo, begin: number, width: number): TensorInfo {
  const [rows, columns] = matrix.shape;
  const out = backend.makeOutput([rows, width], matrix.dtype);
  // Views after makeOutput: allocating may grow (and so detach) the wasm heap.
  const target = backend.typedArrayFromHeap(out);
  const source = backend.typedArrayFromHeap(matrix);
  for (let r = 0; r < rows; r++) {
    const from = r * columns + begin;
    target.set(source.subarray(from, from + width), r * width);
  }
  return out;
}

interface TileArgs {
  inputs: { x: TensorInfo };
  backend: WasmBackendLike;
  attrs: { reps: number[] };
}

/**
 * Tile by copies: place x's rows at their output positions, then, innermost axis first, replicate each filled
 * block along its axis by doubling copies (copyWithin). Memory-bound, like a memcpy of the output.
 */
function tile({ inputs, backend, attrs }: TileArgs): TensorInfo {
  const { x } = inputs;
  const { reps } = attrs;
  if (x.dtype === 'string') return cpuFallback('Tile')({ inputs, backend, attrs } as never) as TensorInfo;
  const rank = x.shape.length;
  const outShape = x.shape.map((d, i) => d * reps[i]);
  const out = backend.makeOutput(outShape, x.dtype);
  const target = backend.typedArrayFromHeap(out);
  if (target.length === 0) return out;
  const source = backend.typedArrayFromHeap(x);
  if (rank === 0) {
    target.set(source);
    return out;
  }
  const outStrides = new Array<number>(rank);
  outStrides[rank - 1] = 1;
  for (let i = rank - 2; i >= 0; i--) outStrides[i] = outStrides[i + 1] * outShape[i + 1];
  // 1. x's rows (last axis) to their positions in the output.
  const rowLength = x.shape[rank - 1];
  const index = new Array<number>(rank).fill(0);
  for (let offset = 0; offset < source.length; offset += rowLength) {
    let position = 0;
    for (let axis = 0; axis < rank - 1; axis++) position += index[axis] * outStrides[axis];
    target.set(source.subarray(offset, offset + rowLength), position);
    for (let axis = rank - 2; axis >= 0; axis--) {
      if (++index[axis] < x.shape[axis]) break;
      index[axis] = 0;
    }
  }
  // 2. From the innermost axis out: every block filled so far is replicated along its axis.
  for (let axis = rank - 1; axis >= 0; axis--) {
    if (reps[axis] === 1) continue;
    const block = x.shape[axis] * outStrides[axis];
    const full = outShape[axis] * outStrides[axis];
    // Outer positions: original extents on axes before `axis` (the only ones filled yet).
    const outer = x.shape.slice(0, axis);
    const count = outer.reduce((a, b) => a * b, 1);
    const at = new Array<number>(axis).fill(0);
    for (let n = 0; n < count; n++) {
      let base = 0;
      for (let k = 0; k < axis; k++) base += at[k] * outStrides[k];
      for (let filled = block; filled < full; filled *= 2) {
        target.copyWithin(base + filled, base, base + Math.min(filled, full - filled));
      }
      for (let k = axis - 1; k >= 0; k--) {
        if (++at[k] < outer[k]) break;
        at[k] = 0;
      }
    }
  }
  return out;
}

function conv2dBackpropInput(args: ConvGradArgs<{ dy: TensorInfo; filter: TensorInfo }>): TensorInfo | TensorInfo[] {
  const { inputs, backend, attrs } = args;
  const { dy, filter } = inputs;
  const inputShape = attrs.inputShape as [number, number, number, number];
  const info = convInfoOf(inputShape, filter.shape as [number, number, number, number], attrs);
  if (info.dataFormat !== 'channelsLast') return cpuFallback('Conv2DBackpropInput')(args as never);
  const { batchSize, outHeight, outWidth, filterHeight, filterWidth } = info;
  const { strideHeight, strideWidth, padInfo, inHeight, inWidth } = info;
  const top = filterHeight - 1 - padInfo.top;
  const left = filterWidth - 1 - padInfo.left;
  const scope = new KernelScope(backend, 'wasm');
  try {
    const strided = strideHeight > 1 || strideWidth > 1;
    if (strided && filterHeight === 1 && filterWidth === 1 && padInfo.top === 0 && padInfo.left === 0) {
      // A strided 1×1 convolution (ResNet's downsampling shortcut): dx is dy·Wᵀ at the sampled positions and
      // zero elsewhere, so compute the product at Ho×Wo and spread it, instead of convolving inserted zeros.
      const { inChannels } = info;
      const swapped = scope.run('Transpose', { x: filter }, { perm: [0, 1, 3, 2] });
      const product = scope.run(
        'Conv2D',
        { x: dy, filter: swapped },
        { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [1, 1] },
      );
      const spread = scope.run(
        'Reshape',
        { x: product },
        { shape: [batchSize, outHeight, 1, outWidth, 1, inChannels] },
      );
      const zeroed = scope.run(
        'PadV2',
        { x: spread },
        {
          paddings: [
            [0, 0],
            [0, 0],
            [0, strideHeight - 1],
            [0, 0],
            [0, strideWidth - 1],
            [0, 0],
          ],
          constantValue: 0,
        },
      );
      const height = outHeight * strideHeight;
      const width = outWidth * strideWidth;
      let dx = scope.run('Reshape', { x: zeroed }, { shape: [batchSize, height, width, inChannels] });
      if (height > inHeight || width > inWidth) {
        dx = scope.run(
          'Slice',
          { x: dx },
          { begin: [0, 0, 0, 0], size: [batchSize, Math.min(height, inHeight), Math.min(width, inWidth), inChannels] },
        );
      }
      if (height < inHeight || width < inWidth) {
        dx = scope.run(
          'PadV2',
          { x: dx },
          {
            paddings: [
              [0, 0],
              [0, Math.max(0, inHeight - height)],
              [0, Math.max(0, inWidth - width)],
              [0, 0],
            ],
            constantValue: 0,
          },
        );
      }
      return scope.keep(dx);
    }
    if (strided) return scope.keep(stridedInputGradient(scope, dy, filter, info));
    return scope.keep(
      flippedConvolution(
        scope,
        dy,
        filter,
        [top, inHeight + filterHeight - 1 - outHeight - top],
        [left, inWidth + filterWidth - 1 - outWidth - left],
      ),
    );
  } finally {
    scope.dispose();
  }
}

/**
 * Σ over taps of dy shifted by the tap times the filter's transposed tap: a stride-1 convolution of dy by the
 * spatially flipped filter with in/out channels swapped. Negative padding crops dy (rows no output reads).
 */
function flippedConvolution(
  scope: KernelScope,
  dy: TensorInfo,
  filter: TensorInfo,
  [top, bottom]: [number, number],
  [left, right]: [number, number],
  rowTaps: number[] = taps(0, filter.shape[0], 1),
  columnTaps: number[] = taps(0, filter.shape[1], 1),
): TensorInfo {
  let source = dy;
  const [batch, height, width, channels] = dy.shape;
  if (top < 0 || bottom < 0 || left < 0 || right < 0) {
    const cropTop = Math.max(0, -top);
    const cropLeft = Math.max(0, -left);
    source = scope.run(
      'Slice',
      { x: dy },
      {
        begin: [0, cropTop, cropLeft, 0],
        size: [batch, height - cropTop - Math.max(0, -bottom), width - cropLeft - Math.max(0, -right), channels],
      },
    );
  }
  const flipped = filterTaps(scope, filter, rowTaps.slice().reverse(), columnTaps.slice().reverse());
  const swapped = scope.run('Transpose', { x: flipped }, { perm: [0, 1, 3, 2] }); // [kh, kw, Co, Ci]
  return scope.run(
    'Conv2D',
    { x: source, filter: swapped },
    {
      strides: [1, 1],
      pad: [
        [0, 0],
        [Math.max(0, top), Math.max(0, bottom)],
        [Math.max(0, left), Math.max(0, right)],
        [0, 0],
      ],
      dataFormat: 'NHWC',
      dilations: [1, 1],
    },
  );
}

/** first, first + step, … (count of them). */
function taps(first: number, count: number, step: number): number[] {
  return Array.from({ length: count }, (_, k) => first + k * step);
}

/**
 * filter[rows[i], columns[j], :, :] as a new [rows.length, columns.length, Ci, Co] filter: one block copy per
 * tap (wasm's Reverse and StridedSlice walk element by element, ~100 ms for a 3×3×512×512 filter).
 */
function filterTaps(scope: KernelScope, filter: TensorInfo, rows: number[], columns: number[]): TensorInfo {
  const [, kernelWidth, inChannels, outChannels] = filter.shape;
  const backend = scope.backend as WasmBackendLike;
  const out = scope.track(backend.makeOutput([rows.length, columns.length, inChannels, outChannels], 'float32'));
  const block = inChannels * outChannels;
  const target = backend.typedArrayFromHeap(out);
  const source = backend.typedArrayFromHeap(filter);
  rows.forEach((row, i) => {
    columns.forEach((column, j) => {
      const from = (row * kernelWidth + column) * block;
      target.set(source.subarray(from, from + block), (i * columns.length + j) * block);
    });
  });
  return out;
}

/** One output phase r of a strided input gradient along one axis (see stridedInputGradient). */
interface AxisPhase {
  /** First filter tap feeding this phase; the phase uses taps first, first + stride, … */
  first: number;
  taps: number;
  /** Output positions r, r + stride, … below the input size. */
  count: number;
  /** dy padding (negative: crop) for the stride-1 convolution that computes the phase. */
  before: number;
  after: number;
}

function axisPhases(inSize: number, outSize: number, kernel: number, stride: number, pad: number): AxisPhase[] {
  const phases: AxisPhase[] = [];
  for (let r = 0; r < stride; r++) {
    const first = (((r + pad) % stride) + stride) % stride;
    const taps = first < kernel ? Math.ceil((kernel - first) / stride) : 0;
    const count = r < inSize ? Math.ceil((inSize - r) / stride) : 0;
    const offset = (r + pad - first) / stride;
    const before = taps - 1 - offset;
    phases.push({ first, taps, count, before, after: count - outSize - before + taps - 1 });
  }
  return phases;
}

/**
 * dx of a strided convolution by phases (sub-pixel decomposition): the input positions h ≡ r (mod stride)
 * only receive filter taps i ≡ r + pad (mod stride), so each of the stride² phases is a stride-1 convolution
 * of dy by that subset of taps; the phases are then interleaved into dx. No multiply touches an inserted zero.
 */
function stridedInputGradient(
  scope: KernelScope,
  dy: TensorInfo,
  filter: TensorInfo,
  info: ReturnType<typeof convInfoOf>,
): TensorInfo {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, strideHeight, strideWidth } = info;
  const rows = axisPhases(inHeight, outHeight, info.filterHeight, strideHeight, info.padInfo.top);
  const columns = axisPhases(inWidth, outWidth, info.filterWidth, strideWidth, info.padInfo.left);
  const backend = scope.backend as WasmBackendLike;
  const dx = backend.makeOutput([batchSize, inHeight, inWidth, inChannels], 'float32');
  const parts: { part: TensorInfo; rowPhase: number; columnPhase: number }[] = [];
  for (let rh = 0; rh < strideHeight; rh++) {
    for (let rw = 0; rw < strideWidth; rw++) {
      const row = rows[rh];
      const column = columns[rw];
      if (row.taps === 0 || column.taps === 0 || row.count === 0 || column.count === 0) continue;
      if (outHeight - Math.max(0, -row.before) - Math.max(0, -row.after) <= 0) continue;
      if (outWidth - Math.max(0, -column.before) - Math.max(0, -column.after) <= 0) continue;
      const part = flippedConvolution(
        scope,
        dy,
        filter,
        [row.before, row.after],
        [column.before, column.after],
        taps(row.first, row.taps, strideHeight),
        taps(column.first, column.taps, strideWidth),
      );
      parts.push({ part, rowPhase: rh, columnPhase: rw });
    }
  }
  // Views after every allocation above (growing the heap detaches older views).
  const target = backend.typedArrayFromHeap(dx);
  target.fill(0);
  for (const { part, rowPhase, columnPhase } of parts) {
    const source = backend.typedArrayFromHeap(part);
    const [, partHeight, partWidth] = part.shape;
    let from = 0;
    for (let n = 0; n < batchSize; n++) {
      for (let q = 0; q < partHeight; q++) {
        const h = q * strideHeight + rowPhase;
        for (let p = 0; p < partWidth; p++) {
          let to = ((n * inHeight + h) * inWidth + p * strideWidth + columnPhase) * inChannels;
          for (let c = 0; c < inChannels; c++) target[to++] = source[from++];
        }
      }
    }
  }
  return dx;
}

/** A wasm kernel that runs the cpu backend's kernel of the same name on copies of its inputs. */
function cpuFallback(kernelName: string): KernelFunc {
  return ({ inputs, attrs, backend }) => {
    const wasm = backend as WasmBackendLike;
    const cpu = tf.engine().findBackend('cpu');
    const kernel = tf.getKernel(kernelName, 'cpu');
    if (!cpu || !kernel) throw new Error(`kernel ${kernelName}: no cpu implementation to fall back to`);
    const created: TensorInfo[] = [];
    const copy = (info: TensorInfo): TensorInfo => {
      const values = wasm.readSync(info.dataId) as Float32Array | Int32Array | Uint8Array;
      const moved = { dataId: cpu.write(values, info.shape, info.dtype), shape: info.shape, dtype: info.dtype };
      created.push(moved);
      return moved;
    };
    const cpuInputs: Inputs = Array.isArray(inputs)
      ? (inputs as TensorInfo[]).map(copy)
      : Object.fromEntries(Object.entries(inputs).map(([name, info]) => [name, copy(info as TensorInfo)]));
    try {
      const out = kernel.kernelFunc({ inputs: cpuInputs as Record<string, TensorInfo>, attrs, backend: cpu });
      const outputs = Array.isArray(out) ? out : [out];
      created.push(...outputs);
      const results = outputs.map((result) => {
        if (result.dtype === 'string' || result.dtype === 'complex64') {
          throw new Error(`kernel ${kernelName}: ${result.dtype} outputs cannot live on the wasm backend`);
        }
        const target = wasm.makeOutput(result.shape, result.dtype);
        wasm.typedArrayFromHeap(target).set(cpu.readSync(result.dataId) as Float32Array | Int32Array | Uint8Array);
        return target;
      });
      return Array.isArray(out) ? results : results[0];
    } finally {
      for (const info of created) cpu.disposeData(info.dataId);
    }
  };
}
