/**
 * CSR_MATMUL (sparse · dense: RoIAlign's product and its gradient) for the wasm backend: the SIMD kernel of
 * ./wasm-csr-module.ts straight on tfjs' wasm heap, its rows split across the backend's threads by entries
 * (the work), not by rows.
 */
import type { KernelBackend, TensorInfo } from '../tf.js';
import { balancedBounds, heapPointer, kernelPool, type WasmHeapBackend } from './wasm-thread-pool.js';

interface CsrArgs {
  inputs: { rowOffsets: TensorInfo; columns: TensorInfo; values: TensorInfo; dense: TensorInfo };
  backend: KernelBackend;
}

/** Below this many entries one thread does it all (waking a helper costs more). */
const THREADED_ENTRIES = 1 << 14;

/** The kernel function registered as CSR_MATMUL for wasm. */
export function wasmCsrMatMul({ inputs, backend }: CsrArgs): TensorInfo {
  const heap = backend as WasmHeapBackend;
  const { rowOffsets, columns, values, dense } = inputs;
  const rows = rowOffsets.shape[0] - 1;
  const channels = dense.shape[1];
  const out = heap.makeOutput([rows, channels], 'float32');
  if (rows === 0 || channels === 0) return out;
  const pool = kernelPool(heap);
  const pointer = (info: TensorInfo) => heapPointer(heap, info);
  // Views after makeOutput: allocating may have grown (and so replaced) the heap's buffer.
  const buffer = pool.memory.buffer;
  const offsets = new Int32Array(buffer, pointer(rowOffsets), rows + 1);
  if (channels % 4 === 0) {
    const parts = offsets[rows] < THREADED_ENTRIES ? 1 : pool.threads;
    pool.csr(
      [pointer(rowOffsets), pointer(columns), pointer(values), pointer(dense), pointer(out)],
      balancedBounds(offsets, parts),
      channels,
    );
    return out;
  }
  // Channel counts the lanes do not divide: the same sums, scalar.
  const columnData = new Int32Array(buffer, pointer(columns), offsets[rows]);
  const valueData = new Float32Array(buffer, pointer(values), offsets[rows]);
  const denseData = new Float32Array(buffer, pointer(dense), dense.shape[0] * channels);
  const outData = new Float32Array(buffer, pointer(out), rows * channels);
  outData.fill(0);
  for (let r = 0; r < rows; r++) {
    const o = r * channels;
    for (let e = offsets[r]; e < offsets[r + 1]; e++) {
      const s = columnData[e] * channels;
      const w = valueData[e];
      for (let c = 0; c < channels; c++)
        outData[o + c] = Math.fround(outData[o + c] + Math.fround(w * denseData[s + c]));
    }
  }
  return out;
}
