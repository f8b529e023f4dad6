/**
 * Starts the `torch` tfjs backend: loads the bridge, picks the device (`auto`: CUDA when libtorch sees a GPU),
 * sets the CPU threads, registers the backend and its kernels. Says why not when it cannot.
 */
import os from 'node:os';
import { tf } from '../../tf.js';
import { type LoadedTorch, loadTorch, type TorchInfo } from './addon.js';
import { TorchBackend } from './backend.js';
import { torchKernels } from './kernels/index.js';

export { type LoadedTorch, loadTorch, nativeDirectory, type TorchInfo } from './addon.js';
export { TorchBackend } from './backend.js';
export { CSR_MATMUL } from './kernels/index.js';

export interface TorchStart {
  device: string;
  threads: number;
  info: TorchInfo;
  torchvision: LoadedTorch['torchvision'];
  libtorch: string;
  kernels: number;
}

export type TorchStartResult = { ok: true; value: TorchStart } | { ok: false; reason: string };

let kernelsRegistered = false;
let registeredDevice: string | undefined;

/** The device `auto` resolves to, or the named one checked against what libtorch sees. */
export function resolveTorchDevice(requested: string, info: TorchInfo): { device: string } | { error: string } {
  if (requested === 'auto') return { device: info.cuda ? 'cuda' : 'cpu' };
  if (requested === 'cpu') return { device: 'cpu' };
  const match = /^cuda(?::(\d+))?$/.exec(requested);
  if (!match) return { error: `engine.device "${requested}" is not cpu, cuda or cuda:N` };
  if (!info.cuda) return { error: `engine.device "${requested}": libtorch ${info.version} sees no CUDA device` };
  const index = Number(match[1] ?? 0);
  if (index >= info.cudaDevices) {
    return { error: `engine.device "${requested}": libtorch sees ${info.cudaDevices} CUDA device(s)` };
  }
  return { device: requested };
}

export function startTorchBackend(options: { device?: string; threads?: number } = {}): TorchStartResult {
  const loaded = loadTorch();
  if (!loaded.ok) return loaded;
  const { addon } = loaded.value;
  const before = addon.info();
  const resolved = resolveTorchDevice(options.device ?? 'auto', before);
  if ('error' in resolved) return { ok: false, reason: resolved.error };
  const threads = options.threads ?? os.availableParallelism();
  addon.setThreads(threads);
  if (registeredDevice !== resolved.device) {
    if (registeredDevice !== undefined) tf.removeBackend('torch');
    tf.registerBackend('torch', () => new TorchBackend(addon, resolved.device), 0);
    registeredDevice = resolved.device;
  }
  if (!kernelsRegistered) {
    for (const kernel of torchKernels) tf.registerKernel(kernel);
    kernelsRegistered = true;
  }
  return {
    ok: true,
    value: {
      device: resolved.device,
      threads: addon.info().threads,
      info: addon.info(),
      torchvision: loaded.value.torchvision,
      libtorch: loaded.value.manifest?.origin ?? loaded.value.addonPath,
      kernels: torchKernels.length,
    },
  };
}
