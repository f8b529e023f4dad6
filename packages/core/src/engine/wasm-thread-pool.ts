/**
 * fedcxr's own wasm kernels (./wasm-csr-module.ts, ./wasm-gemm-module.ts) on every thread of the wasm backend.
 * With tfjs' threaded build the heap is a shared memory: worker threads instantiate the same kernel module on
 * it, and a job is split into parts on disjoint outputs, one per thread; the calling thread runs the first part
 * and then waits for the others (Atomics), so a kernel stays synchronous like every tfjs kernel. Without a
 * shared heap (tfjs' single-threaded build) everything runs on the calling thread.
 */
import { Worker } from 'node:worker_threads';
import type { KernelBackend, TensorInfo } from '../tf.js';
import { assembleModule } from './wasm-assembler.js';
import { type CsrFunction, csrFunction } from './wasm-csr-module.js';
import { type GemmStrip, gemmFunctions, type PackPanels } from './wasm-gemm-module.js';

/** The parts of the WebAssembly JS API used here (this project's TypeScript libs do not declare it). */
interface WasmMemory {
  readonly buffer: ArrayBufferLike;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}
const WebAssemblyApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

export interface KernelExports {
  csr: CsrFunction;
  gemm4: GemmStrip;
  gemm1: GemmStrip;
  pack8: PackPanels;
  pack8t: PackPanels;
}

/** The wasm backend's heap as this module uses it. */
export interface WasmHeapBackend extends KernelBackend {
  makeOutput(shape: number[], dtype: TensorInfo['dtype']): TensorInfo;
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  wasm: { wasmMemory?: WasmMemory; asm?: { memory?: WasmMemory } };
}

/**
 * Rows [m0, m1) of C = A·B with B packed (see wasm-gemm-module.ts), blocked for the caches: k in blocks of 256
 * (a 4-row strip of A stays in L1), 32 panels (256 columns) of B at a time (256 KB of B in L2). `accumulateInto`
 * ≠ 0 adds to C. Self-contained: helper threads run its source text.
 */
export function gemmRows(
  ex: KernelExports,
  a: number,
  aRowStride: number,
  aKStride: number,
  packedB: number,
  depth: number,
  panels: number,
  c: number,
  ldc: number,
  m0: number,
  m1: number,
  accumulateInto = 0,
): void {
  const kBlock = 256;
  const panelBlock = 32;
  for (let k0 = 0; k0 < depth; k0 += kBlock) {
    const kc = Math.min(kBlock, depth - k0);
    const accumulate = k0 > 0 || accumulateInto ? 1 : 0;
    for (let p0 = 0; p0 < panels; p0 += panelBlock) {
      const count = Math.min(panelBlock, panels - p0);
      const b = packedB + (p0 * depth + k0) * 32;
      const column = c + p0 * 32;
      // 4-row strips, then single rows for the remainder.
      for (let m = m0; m < m1; ) {
        const strip = m + 4 <= m1 ? ex.gemm4 : ex.gemm1;
        strip(
          a + m * aRowStride + k0 * aKStride,
          aRowStride,
          aKStride,
          b,
          depth * 32,
          column + m * ldc,
          ldc,
          kc,
          count,
          accumulate,
        );
        m += m + 4 <= m1 ? 4 : 1;
      }
    }
  }
}

/**
 * Panels [p0, p1) of `matrices` B matrices ([k, n] row-major, or [n, k] when `transposed`), `matrixBytes` apart
 * in both source and target, into the micro-kernels' layout. Self-contained: helper threads run its source text.
 */
export function packMatrices(
  ex: KernelExports,
  source: number,
  target: number,
  k: number,
  n: number,
  transposed: number,
  matrices: number,
  matrixBytes: number,
  p0: number,
  p1: number,
): void {
  const pack = transposed ? ex.pack8t : ex.pack8;
  for (let i = 0; i < matrices; i++) pack(source + i * matrixBytes, target + i * matrixBytes, k, n, p0, p1);
}

/** Job codes a helper understands. */
const CSR_JOB = 0;
const GEMM_JOB = 1;
const CONV_JOB = 2;
const PACK_JOB = 3;

/**
 * Output rows [r0, r1) (r = image · outHeight + output row) of a convolution, NHWC: for each row and filter tap,
 * one strided product of the (zero-padded) input row the tap reads with the tap's packed [Ci, Co] filter,
 * accumulated into the row of the output. No im2col: the tap's input row is A read with a stride of
 * strideWidth · Ci. Self-contained (helper threads run its source text); `gemm` is gemmRows.
 */
export function convRows(
  ex: KernelExports,
  gemm: typeof gemmRows,
  input: number,
  paddedHeight: number,
  paddedWidth: number,
  inChannels: number,
  packedFilter: number,
  filterHeight: number,
  filterWidth: number,
  strideHeight: number,
  strideWidth: number,
  out: number,
  outHeight: number,
  outWidth: number,
  outChannels: number,
  r0: number,
  r1: number,
): void {
  const tapBytes = inChannels * outChannels * 4;
  for (let r = r0; r < r1; r++) {
    const image = Math.floor(r / outHeight);
    const row = r - image * outHeight;
    const c = out + r * outWidth * outChannels * 4;
    for (let i = 0; i < filterHeight; i++) {
      const inputRow = (image * paddedHeight + row * strideHeight + i) * paddedWidth;
      for (let j = 0; j < filterWidth; j++) {
        const tap = i * filterWidth + j;
        gemm(
          ex,
          input + (inputRow + j) * inChannels * 4,
          strideWidth * inChannels * 4,
          4,
          packedFilter + tap * tapBytes,
          inChannels,
          outChannels / 8,
          c,
          outChannels * 4,
          0,
          outWidth,
          tap > 0 ? 1 : 0,
        );
      }
    }
  }
}
/** Control words of a helper: [sequence, finished sequence, job, arguments…]. */
const HEADER = 3;
const MAX_ARGUMENTS = 16;

const helperSource = `
const { workerData } = require('node:worker_threads');
const { module, memory, control } = workerData;
const ex = new WebAssembly.Instance(module, { env: { memory } }).exports;
const gemmRows = ${gemmRows.toString()};
const convRows = ${convRows.toString()};
const packMatrices = ${packMatrices.toString()};
const words = new Int32Array(control);
let seen = 0;
for (;;) {
  Atomics.wait(words, 0, seen);
  seen = Atomics.load(words, 0);
  const a = Array.from(words.subarray(${HEADER}));
  if (words[2] === ${CSR_JOB}) ex.csr(...a.slice(0, 8));
  else if (words[2] === ${GEMM_JOB}) gemmRows(ex, ...a.slice(0, 10));
  else if (words[2] === ${PACK_JOB}) packMatrices(ex, ...a.slice(0, 9));
  else convRows(ex, gemmRows, ...a.slice(0, 15));
  Atomics.store(words, 1, seen);
  Atomics.notify(words, 1);
}
`;

interface Helper {
  worker: Worker;
  control: Int32Array;
}

export class WasmKernelPool {
  readonly local: KernelExports;
  readonly memory: WasmMemory;
  private readonly helpers: Helper[] = [];
  private sequence = 0;

  constructor(memory: WasmMemory, threads: number) {
    this.memory = memory;
    const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
    const module = new WebAssemblyApi.Module(assembleModule([csrFunction, ...gemmFunctions], shared));
    this.local = new WebAssemblyApi.Instance(module, { env: { memory } }).exports as unknown as KernelExports;
    if (!shared) return;
    for (let i = 1; i < threads; i++) {
      const control = new SharedArrayBuffer(4 * (HEADER + MAX_ARGUMENTS));
      const worker = new Worker(helperSource, { eval: true, workerData: { module, memory, control } });
      // An idle helper must not keep a CLI run or a test alive.
      worker.unref();
      this.helpers.push({ worker, control: new Int32Array(control) });
    }
  }

  get threads(): number {
    return this.helpers.length + 1;
  }

  /** sparse · dense rows [bounds[t], bounds[t + 1]) on thread t (see wasm-csr-module.ts for the arguments). */
  csr(pointers: [number, number, number, number, number], bounds: number[], channels: number): void {
    this.dispatch(
      CSR_JOB,
      bounds.slice(0, -1).map((begin, t) => [...pointers, begin, bounds[t + 1], channels]),
      (args) => this.local.csr(...(args as Parameters<CsrFunction>)),
    );
  }

  /** gemmRows(…, bounds[t], bounds[t + 1]) on thread t. */
  gemm(args: [number, number, number, number, number, number, number, number], bounds: number[]): void {
    this.dispatch(
      GEMM_JOB,
      bounds.slice(0, -1).map((begin, t) => [...args, begin, bounds[t + 1]]),
      (part) =>
        gemmRows(
          this.local,
          ...(part as [number, number, number, number, number, number, number, number, number, number]),
        ),
    );
  }

  /** convRows(…, bounds[t], bounds[t + 1]) on thread t; `args` are convRows' arguments from `input` to `outChannels`. */
  conv(args: number[], bounds: number[]): void {
    this.dispatch(
      CONV_JOB,
      bounds.slice(0, -1).map((begin, t) => [...args, begin, bounds[t + 1]]),
      (part) => (convRows as (...a: unknown[]) => void)(this.local, gemmRows, ...part),
    );
  }

  /**
   * Packs `matrices` B matrices (byte pointers; [k, n], or [n, k] when `transposed`) into 8-column panels
   * (see wasm-gemm-module.ts), the panels split across the threads.
   */
  pack(source: number, target: number, k: number, n: number, transposed: boolean, matrices = 1): void {
    const panels = n / 8;
    const bounds = evenBounds(panels, Math.min(this.threads, Math.max(1, Math.floor((panels * k * matrices) / 4096))));
    const args = [source, target, k, n, transposed ? 1 : 0, matrices, k * n * 4];
    this.dispatch(
      PACK_JOB,
      bounds.slice(0, -1).map((begin, t) => [...args, begin, bounds[t + 1]]),
      (part) =>
        packMatrices(this.local, ...(part as [number, number, number, number, number, number, number, number, number])),
    );
  }

  private dispatch(job: number, parts: number[][], runLocal: (args: number[]) => void): void {
    const remote = parts.slice(1, this.helpers.length + 1);
    const sequence = ++this.sequence;
    remote.forEach((args, h) => {
      const { control } = this.helpers[h];
      control[2] = job;
      control.set(args, HEADER);
      Atomics.store(control, 0, sequence);
      Atomics.notify(control, 0);
    });
    runLocal(parts[0]);
    for (let h = 0; h < remote.length; h++) {
      const { control } = this.helpers[h];
      for (let done = Atomics.load(control, 1); done !== sequence; done = Atomics.load(control, 1)) {
        Atomics.wait(control, 1, done);
      }
    }
  }
}

let pool: WasmKernelPool | undefined;
let poolThreads = 1;

/** Threads the pool uses (the wasm backend's); set when the backend is loaded, before the first kernel. */
export function setWasmKernelThreads(threads: number): void {
  poolThreads = Math.max(1, threads);
}

/** The pool on `backend`'s heap (created on first use). */
export function kernelPool(backend: WasmHeapBackend): WasmKernelPool {
  if (!pool) {
    const memory = backend.wasm.wasmMemory ?? backend.wasm.asm?.memory;
    if (!memory) throw new Error('the wasm backend does not expose its memory');
    pool = new WasmKernelPool(memory, poolThreads);
  }
  return pool;
}

/** Byte offset of a tensor's data on the wasm heap. */
export function heapPointer(backend: WasmHeapBackend, info: TensorInfo): number {
  const entry = backend.dataIdMap.get(info.dataId);
  if (!entry) throw new Error('a kernel input is not on the wasm heap');
  return entry.memoryOffset;
}

/** [0, rows) in `parts` about equal ranges, each boundary a multiple of `align` (except the end). */
export function evenBounds(rows: number, parts: number, align = 1): number[] {
  const bounds = [0];
  for (let p = 1; p < parts; p++) bounds.push(Math.min(rows, Math.round((rows * p) / parts / align) * align));
  bounds.push(rows);
  return bounds;
}

/** Splits [0, rows) into `parts` ranges of about equal work, given cumulative work per row (length rows + 1). */
export function balancedBounds(cumulative: ArrayLike<number>, parts: number, align = 1): number[] {
  const rows = cumulative.length - 1;
  const total = cumulative[rows];
  const bounds = [0];
  for (let p = 1; p < parts; p++) {
    const target = (total * p) / parts;
    let low = bounds[p - 1];
    let high = rows;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (cumulative[mid] < target) low = mid + 1;
      else high = mid;
    }
    bounds.push(Math.min(rows, Math.round(low / align) * align));
  }
  bounds.push(rows);
  return bounds;
}
