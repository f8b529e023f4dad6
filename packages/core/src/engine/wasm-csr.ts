/**
 * CSR_MATMUL (sparse · dense, the RoIAlign product and its gradient) for the wasm backend: the SIMD function of
 * ./wasm-csr-module.ts run straight on tfjs' wasm heap, on every thread the backend has. With tfjs' threaded
 * build the heap is a shared memory, so worker threads instantiate the same function on it and each writes a
 * disjoint range of output rows; the calling thread takes a range too and then waits for the others
 * (Atomics), so the kernel stays synchronous like every tfjs kernel.
 */
import { Worker } from 'node:worker_threads';
import type { KernelBackend, TensorInfo } from '../tf.js';
import { type CsrFunction, csrModuleBytes } from './wasm-csr-module.js';

/** The parts of the WebAssembly JS API used here (this project's TypeScript libs do not declare it). */
interface WasmMemory {
  readonly buffer: ArrayBufferLike;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}
const WebAssemblyApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface HeapEntry {
  memoryOffset: number;
}
interface WasmBackendHeap extends KernelBackend {
  makeOutput(shape: number[], dtype: TensorInfo['dtype']): TensorInfo;
  dataIdMap: { get(dataId: object): HeapEntry | undefined };
  wasm: { wasmMemory?: WasmMemory; asm?: { memory?: WasmMemory } };
}

/** One helper thread: its control words are [sequence, finished sequence, 8 arguments]. */
interface Helper {
  worker: Worker;
  control: Int32Array;
}

const ARGUMENTS = 2;

const helperSource = `
const { workerData } = require('node:worker_threads');
const { module, memory, control } = workerData;
const csr = new WebAssembly.Instance(module, { env: { memory } }).exports.csr;
const words = new Int32Array(control);
let seen = 0;
for (;;) {
  Atomics.wait(words, 0, seen);
  seen = Atomics.load(words, 0);
  csr(words[2], words[3], words[4], words[5], words[6], words[7], words[8], words[9]);
  Atomics.store(words, 1, seen);
  Atomics.notify(words, 1);
}
`;

class CsrRunner {
  private readonly local: CsrFunction;
  private readonly helpers: Helper[] = [];
  private sequence = 0;

  constructor(memory: WasmMemory, threads: number) {
    const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
    const module = new WebAssemblyApi.Module(csrModuleBytes(shared));
    this.local = new WebAssemblyApi.Instance(module, { env: { memory } }).exports.csr as CsrFunction;
    if (!shared) return;
    for (let i = 1; i < threads; i++) {
      const control = new SharedArrayBuffer(4 * (ARGUMENTS + 8));
      const worker = new Worker(helperSource, { eval: true, workerData: { module, memory, control } });
      // An idle helper must not keep a CLI run or a test alive.
      worker.unref();
      this.helpers.push({ worker, control: new Int32Array(control) });
    }
  }

  /** rows of the product, split across the threads by entries (the work), not by rows. */
  run(pointers: [number, number, number, number, number], rowOffsets: Int32Array, channels: number): void {
    const rows = rowOffsets.length - 1;
    const parts = this.helpers.length + 1;
    const total = rowOffsets[rows];
    if (parts === 1 || total < 1 << 14) {
      this.local(...pointers, 0, rows, channels);
      return;
    }
    const bounds = [0];
    for (let p = 1; p < parts; p++) bounds.push(firstRowAtOrAbove(rowOffsets, (total * p) / parts, bounds[p - 1]));
    bounds.push(rows);
    const sequence = ++this.sequence;
    this.helpers.forEach((helper, h) => {
      helper.control.set([...pointers, bounds[h + 1], bounds[h + 2], channels], ARGUMENTS);
      Atomics.store(helper.control, 0, sequence);
      Atomics.notify(helper.control, 0);
    });
    this.local(...pointers, bounds[0], bounds[1], channels);
    for (const helper of this.helpers) {
      for (let done = Atomics.load(helper.control, 1); done !== sequence; done = Atomics.load(helper.control, 1)) {
        Atomics.wait(helper.control, 1, done);
      }
    }
  }
}

function firstRowAtOrAbove(rowOffsets: Int32Array, entries: number, from: number): number {
  let low = from;
  let high = rowOffsets.length - 1;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (rowOffsets[mid] < entries) low = mid + 1;
    else high = mid;
  }
  return low;
}

let runner: CsrRunner | undefined;
let runnerThreads = 1;

/** Threads the kernel uses (the wasm backend's); set when the backend is loaded. */
export function setWasmCsrThreads(threads: number): void {
  runnerThreads = Math.max(1, threads);
}

interface CsrArgs {
  inputs: { rowOffsets: TensorInfo; columns: TensorInfo; values: TensorInfo; dense: TensorInfo };
  backend: KernelBackend;
}

/** The kernel function registered as CSR_MATMUL for wasm. */
export function wasmCsrMatMul({ inputs, backend }: CsrArgs): TensorInfo {
  const heap = backend as WasmBackendHeap;
  const { rowOffsets, columns, values, dense } = inputs;
  const rows = rowOffsets.shape[0] - 1;
  const channels = dense.shape[1];
  const out = heap.makeOutput([rows, channels], 'float32');
  if (rows === 0 || channels === 0) return out;
  const memory = heap.wasm.wasmMemory ?? heap.wasm.asm?.memory;
  if (!memory) throw new Error('the wasm backend does not expose its memory');
  runner ??= new CsrRunner(memory, runnerThreads);
  const pointer = (info: TensorInfo) => {
    const entry = heap.dataIdMap.get(info.dataId);
    if (!entry) throw new Error('CSR_MATMUL: an input is not on the wasm heap');
    return entry.memoryOffset;
  };
  // Read after makeOutput: allocating may have grown (and so replaced) the heap's buffer.
  const offsets = new Int32Array(memory.buffer, pointer(rowOffsets), rows + 1);
  if (channels % 4 === 0) {
    runner.run(
      [pointer(rowOffsets), pointer(columns), pointer(values), pointer(dense), pointer(out)],
      offsets,
      channels,
    );
    return out;
  }
  // Channel counts the lanes do not divide: the same sums, scalar.
  const buffer = memory.buffer;
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
