/**
 * Loads tfjs' wasm backend (XNNPACK) in Node from node_modules, with its threaded SIMD build when more than
 * one thread is asked for. tfjs 4.22 refuses threads in Node (its feature flag says "no" there, its pthread
 * worker is handed to Node as a `blob:` URL Node cannot start, and its C++ init uses half the logical cores,
 * i.e. one thread on a 2-core machine). Each of the three is worked around here, only for the duration of the
 * initialization, so both cores work on every convolution and matrix product.
 */
import { createHash } from 'node:crypto';
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { tf } from '../tf.js';
import { currentBackend } from './optional-modules.js';
import { setWasmKernelThreads } from './wasm-thread-pool.js';

const require = createRequire(import.meta.url);

export interface WasmLoadInfo {
  /** Threads in XNNPACK's pool (1 = the main thread only). */
  threads: number;
  simd: boolean;
  /** Why fewer threads than asked for, if so. */
  note?: string;
}

interface EmscriptenWorker {
  unref(): void;
}
interface WasmModuleLike {
  PThread?: { runningWorkers: EmscriptenWorker[]; unusedWorkers: EmscriptenWorker[] };
  tfjs: { getThreadsCount(): number };
}

let loading: Promise<WasmLoadInfo> | undefined;

/** The wasm package's folder (holds the .wasm binaries and the pthread worker script). */
export function wasmPackageDir(): string {
  return path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
}

/**
 * Registers and initializes the `wasm` backend once per process (the wasm module can be created only once;
 * later calls return the first result whatever `threads` they ask for). Does not make it the active backend.
 */
export function loadWasmBackend(threads: number): Promise<WasmLoadInfo> {
  loading ??= initialize(threads);
  return loading;
}

async function initialize(threads: number): Promise<WasmLoadInfo> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
  const wantThreads = simd && threads > 1 && typeof SharedArrayBuffer !== 'undefined';
  const restore: (() => void)[] = [];
  if (wantThreads) {
    const workerFile = writeNodeWorkerScript();
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
    wasm.setThreadsCount(threads);
    // tfjs hands Emscripten the worker as a Blob URL; Node's Worker needs a file path.
    const createObjectURL = URL.createObjectURL;
    URL.createObjectURL = (blob: Blob) => (blob.type === 'application/javascript' ? workerFile : createObjectURL(blob));
    restore.push(() => {
      URL.createObjectURL = createObjectURL;
    });
    // The C++ init caps the pool at logical cores / 2 (it assumes hyper-threading); report twice the cores so
    // the cap becomes the real core count. Read synchronously during module instantiation only.
    const cpus = os.cpus;
    os.cpus = () => {
      const real = cpus();
      return [...real, ...real];
    };
    restore.push(() => {
      os.cpus = cpus;
    });
  }
  let ok: boolean;
  const previous = currentBackend();
  try {
    ok = await tf.setBackend('wasm');
  } finally {
    for (const undo of restore) undo();
  }
  if (!ok) throw new Error('the wasm backend failed to initialize (see the message above)');
  const backend = tf.engine().findBackend('wasm') as unknown as { wasm: WasmModuleLike };
  const actual = backend.wasm.tfjs.getThreadsCount();
  // Idle pool threads must not keep the process alive (a CLI run or a test would never exit).
  const pool = backend.wasm.PThread;
  if (pool) for (const worker of [...pool.runningWorkers, ...pool.unusedWorkers]) worker.unref();
  if (previous && previous !== 'wasm') await tf.setBackend(previous);
  const info: WasmLoadInfo = { threads: Math.max(1, actual), simd };
  setWasmKernelThreads(info.threads);
  if (threads > 1 && info.threads < threads) {
    info.note = !simd
      ? 'this runtime lacks WebAssembly SIMD, which the threaded build needs'
      : `XNNPACK started ${info.threads} of ${threads} threads`;
  }
  return info;
}

/**
 * Writes tfjs' pthread worker as a file Node can start. The worker would `importScripts` the main module from a
 * Blob, which Node's worker cannot read; it `require`s the same factory from node_modules instead.
 */
function writeNodeWorkerScript(): string {
  const dir = path.join(wasmPackageDir(), 'wasm-out');
  const factory = path.join(dir, 'tfjs-backend-wasm-threaded-simd.js');
  const { wasmWorkerContents } = require(path.join(dir, 'tfjs-backend-wasm-threaded-simd.worker.js')) as {
    wasmWorkerContents: string;
  };
  const blobImport =
    'var objectUrl=URL.createObjectURL(e.data.urlOrBlob);importScripts(objectUrl);URL.revokeObjectURL(objectUrl)';
  if (!wasmWorkerContents.includes(blobImport)) {
    throw new Error('unexpected tfjs-backend-wasm worker script (version change?); use engine.threads: 1');
  }
  // tfjs escapes newlines the same way before making its Blob (they sit inside string literals).
  const source = `global.WasmBackendModuleThreadedSimd = require(${JSON.stringify(factory)});\n${wasmWorkerContents
    .replace(/\n/g, '\\n')
    .replace(blobImport, '')}`;
  // Named by content: processes share one file, and a tfjs upgrade gets a new one.
  const digest = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const file = path.join(os.tmpdir(), `fedcxr-tfjs-wasm-worker-${digest}.cjs`);
  if (!existsSync(file)) {
    const temporary = `${file}.${process.pid}.tmp`;
    writeFileSync(temporary, source);
    renameSync(temporary, file);
  }
  return file;
}
