/**
 * BatchMatMul for the wasm backend on fedcxr's FMA micro-kernels (./wasm-gemm-module.ts), on every thread:
 * B is packed into 8-column panels once per product, then the rows of A are split across the threads (each
 * writes its own rows of C). Transposed operands cost nothing extra: A is read through strides, and a
 * transposed B is packed from its rows. Products too small to repay the packing, broadcast batches and
 * column counts not divisible by 8 stay on XNNPACK (the kernel this one wraps).
 */
import { type KernelFunc, type TensorInfo, tf } from '../tf.js';
import { evenBounds, heapPointer, kernelPool, type WasmHeapBackend } from './wasm-thread-pool.js';

interface MatMulArgs {
  inputs: { a: TensorInfo; b: TensorInfo };
  attrs: { transposeA: boolean; transposeB: boolean };
  backend: WasmHeapBackend;
}

/** Multiply-adds below which XNNPACK's kernel is as fast (no packing, no thread wake-up). */
const MIN_WORK = 1 << 21;

/** BatchMatMul that runs on the micro-kernels when it can and on `original` otherwise. */
export function fastBatchMatMul(original: KernelFunc): KernelFunc {
  return ((args: MatMulArgs) => {
    const { a, b } = args.inputs;
    const { transposeA, transposeB } = args.attrs;
    const rank = a.shape.length;
    if (a.dtype !== 'float32' || b.dtype !== 'float32') return original(args as never);
    const outer = a.shape.slice(0, -2);
    if (!onMicroKernels(a.shape, b.shape, transposeA, transposeB)) return onXnnpack(original, args);
    const m = transposeA ? a.shape[rank - 1] : a.shape[rank - 2];
    const k = transposeA ? a.shape[rank - 2] : a.shape[rank - 1];
    const n = transposeB ? b.shape[rank - 2] : b.shape[rank - 1];
    return product(args.backend, a, b, transposeA, transposeB, outer, m, n, k);
  }) as unknown as KernelFunc;
}

/**
 * The product on XNNPACK, with transposed operands transposed first: XNNPACK's wasm build runs a transposed
 * product as a scalar loop (0.5–2 GFLOP/s against ~30 for a plain one), its Transpose at memory speed.
 */
function onXnnpack(original: KernelFunc, args: MatMulArgs): TensorInfo {
  const { a, b } = args.inputs;
  const { transposeA, transposeB } = args.attrs;
  if (!transposeA && !transposeB) return original(args as never) as TensorInfo;
  const transposeKernel = tf.getKernel('Transpose', 'wasm')?.kernelFunc;
  if (!transposeKernel) return original(args as never) as TensorInfo;
  const swapLast = (x: TensorInfo) => {
    const perm = x.shape.map((_, i) => i);
    perm.splice(-2, 2, perm.length - 1, perm.length - 2);
    return transposeKernel({ inputs: { x }, attrs: { perm }, backend: args.backend }) as TensorInfo;
  };
  const copies: TensorInfo[] = [];
  const left = transposeA ? swapLast(a) : a;
  const right = transposeB ? swapLast(b) : b;
  if (transposeA) copies.push(left);
  if (transposeB) copies.push(right);
  try {
    return original({
      inputs: { a: left, b: right },
      attrs: { transposeA: false, transposeB: false },
      backend: args.backend,
    } as never) as TensorInfo;
  } finally {
    for (const copy of copies) args.backend.disposeData(copy.dataId);
  }
}

/** Whether a float32 product of these shapes runs on the micro-kernels (else on XNNPACK). */
export function onMicroKernels(aShape: number[], bShape: number[], transposeA: boolean, transposeB: boolean): boolean {
  const rank = aShape.length;
  if (bShape.length !== rank || aShape.slice(0, -2).some((d, i) => d !== bShape[i])) return false;
  const m = transposeA ? aShape[rank - 1] : aShape[rank - 2];
  const k = transposeA ? aShape[rank - 2] : aShape[rank - 1];
  const n = transposeB ? bShape[rank - 2] : bShape[rank - 1];
  return n % 8 === 0 && m >= 4 && m * n * k >= MIN_WORK;
}

function product(
  backend: WasmHeapBackend,
  a: TensorInfo,
  b: TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
  outer: number[],
  m: number,
  n: number,
  k: number,
): TensorInfo {
  const out = backend.makeOutput([...outer, m, n], 'float32');
  const packed = backend.makeOutput([n * k], 'float32');
  try {
    const pool = kernelPool(backend);
    const batches = outer.reduce((x, y) => x * y, 1);
    // Row ranges per thread in whole 4-row strips.
    const bounds = evenBounds(m, pool.threads, 4);
    for (let batch = 0; batch < batches; batch++) {
      pool.pack(heapPointer(backend, b) + batch * k * n * 4, heapPointer(backend, packed), k, n, transposeB);
      pool.gemm(
        [
          heapPointer(backend, a) + batch * m * k * 4,
          transposeA ? 4 : k * 4,
          transposeA ? m * 4 : 4,
          heapPointer(backend, packed),
          k,
          n / 8,
          heapPointer(backend, out) + batch * m * n * 4,
          n * 4,
        ],
        bounds,
      );
    }
  } finally {
    backend.disposeData(packed.dataId);
  }
  return out;
}
