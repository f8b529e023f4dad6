/**
 * The tensor engine: picks, initializes and reports the one tfjs backend every package computes on.
 * `auto` prefers, in order: torch on CUDA, torch on the CPU (libtorch through ./torch, when its bridge is
 * built), libtensorflow (tfjs-node[-gpu], when the user installed it), WebGPU on a hardware adapter, wasm
 * (XNNPACK, threaded, with the training kernels of ./wasm-training-kernels.ts), plain cpu.
 */
import os from 'node:os';
import { FedcxrError } from '@fedcxr/base';
import { parseConfig } from '../config.js';
import { tf } from '../tf.js';
import {
  currentBackend,
  type GpuAdapterInfo,
  loadNativeBackend,
  loadWebgpuBackend,
  type OnnxRuntimeInfo,
  probeOnnxRuntime,
  requestGpuAdapter,
} from './optional-modules.js';
import { fixCpuKernels } from './resize-tables.js';
import { type BackendChoice, type BackendName, type EngineConfig, engineConfigSchema } from './schema.js';
import { startTorchBackend, type TorchStartResult } from './torch/index.js';
import { loadWasmBackend } from './wasm.js';
import { type RegisteredKernel, registerWasmTrainingKernels } from './wasm-training-kernels.js';

export interface EngineInfo {
  /** The active tfjs backend. */
  backend: BackendName;
  requested: BackendChoice;
  /** Why this backend: what was tried before it and why each was passed over. */
  reason: string;
  /** XNNPACK pool size on wasm; the Node process's cores elsewhere. */
  threads: number;
  /** The GPU the webgpu backend runs on. */
  gpu?: GpuAdapterInfo;
  /** Native package that provides the tensorflow backend. */
  nativePackage?: string;
  /** The torch backend's ATen device (`cpu`, `cuda`, `cuda:1`, …). */
  device?: string;
  /** The libtorch the torch backend runs on. */
  libtorch?: { version: string; origin: string; cudaDevices: number; torchvision: string };
  /** Kernels the engine added to wasm so that training runs there. */
  wasmTrainingKernels?: RegisteredKernel[];
  tfjsVersion: string;
}

export interface BackendProbe {
  name: BackendName;
  available: boolean;
  /** Why not (or, when available, what it runs on). */
  reason: string;
}

export interface EngineProbe {
  node: string;
  platform: string;
  arch: string;
  cores: number;
  tfjsVersion: string;
  backends: BackendProbe[];
  /** The adapter Dawn reports, even a software one; null when none. */
  gpu: GpuAdapterInfo | null;
  /** What `backend: auto` would pick here, and why. */
  auto: { backend: BackendName; reason: string };
  /** The torch backend in detail: which libtorch, which devices, how many threads (or why it is absent). */
  torch: TorchProbe;
  onnxruntime: OnnxRuntimeInfo;
}

export interface TorchProbe {
  available: boolean;
  /** Why not, when unavailable; what it runs on otherwise. */
  reason: string;
  libtorchVersion?: string;
  /** Where that libtorch came from (LIBTORCH, a Python torch, Debian libtorch-dev). */
  libtorch?: string;
  /** The device `auto` resolves to. */
  device?: string;
  cudaDevices?: number;
  threads?: number;
  /** torchvision's operator library: loaded, or why not (RoIAlign then runs on ATen ops). */
  torchvision?: string;
  /** tfjs kernels the torch backend registers. */
  kernels?: number;
}

/** What a started (or failed) torch backend reports, for initEngine's reason and `cxr doctor`. */
function torchProbeOf(started: TorchStartResult): TorchProbe {
  if (!started.ok) return { available: false, reason: started.reason };
  const { value } = started;
  return {
    available: true,
    reason: `libtorch ${value.info.version} on ${value.device}`,
    libtorchVersion: value.info.version,
    libtorch: value.libtorch,
    device: value.device,
    cudaDevices: value.info.cudaDevices,
    threads: value.threads,
    kernels: value.kernels,
    torchvision: value.torchvision.loaded
      ? `loaded from ${value.torchvision.library}`
      : `not loaded (${value.torchvision.reason}); RoIAlign runs on ATen's embedding_bag`,
  };
}

type Attempt = { ok: true; detail: string; extra?: Partial<EngineInfo> } | { ok: false; reason: string };

let active: EngineInfo | undefined;

/** The engine's current state, or undefined before initEngine. */
export function engineInfo(): EngineInfo | undefined {
  return active;
}

/** What the engine will run: training needs synchronous tensor reads, which tfjs' webgpu backend lacks in Node. */
export type EnginePurpose = 'inference' | 'training';

const WEBGPU_CANNOT_TRAIN =
  "tfjs' webgpu backend cannot read tensors synchronously in Node, which Faster R-CNN's training step needs";

/**
 * Selects and initializes the backend named by `config.backend` (default `auto`). A named backend that cannot
 * start is an error (FedcxrError `backend_unavailable`, with the reason); `auto` falls through to the next.
 * For `training`, `auto` passes over webgpu (see WEBGPU_CANNOT_TRAIN).
 */
export async function initEngine(config: EngineConfig = {}, purpose: EnginePurpose = 'inference'): Promise<EngineInfo> {
  const { backend: requested, threads, device } = parseConfig(engineConfigSchema, config, 'engine');
  fixCpuKernels();
  const threadCount = threads ?? os.availableParallelism();
  const unfit = (name: BackendName) => purpose === 'training' && name === 'webgpu';
  if (
    active &&
    (active.requested === requested || active.backend === requested) &&
    !(requested === 'auto' && unfit(active.backend)) &&
    (active.backend !== 'torch' || device === 'auto' || active.device === device)
  ) {
    if (currentBackend() !== active.backend) await tf.setBackend(active.backend);
    if (active.backend === 'torch' && threads !== undefined && threads !== active.threads) {
      const restarted = startTorchBackend({ device: active.device, threads });
      if (restarted.ok) active = { ...active, threads: restarted.value.threads };
    }
    return active;
  }
  const order: BackendName[] = requested === 'auto' ? ['torch', 'tensorflow', 'webgpu', 'wasm', 'cpu'] : [requested];
  const passedOver: string[] = [];
  if (requested === 'auto' && purpose === 'training') {
    order.splice(order.indexOf('webgpu'), 1);
    passedOver.push(`webgpu: ${WEBGPU_CANNOT_TRAIN}`);
  }
  for (const name of order) {
    const attempt = await attemptBackend(name, threadCount, requested === 'auto', device);
    if (!attempt.ok) {
      if (requested !== 'auto') {
        throw new FedcxrError('backend_unavailable', `engine.backend "${name}" is unavailable: ${attempt.reason}`);
      }
      passedOver.push(`${name}: ${attempt.reason}`);
      continue;
    }
    if (!(await tf.setBackend(name))) {
      const reason = 'tfjs failed to switch to it';
      if (requested !== 'auto') throw new FedcxrError('backend_unavailable', `engine.backend "${name}": ${reason}`);
      passedOver.push(`${name}: ${reason}`);
      continue;
    }
    const why =
      requested === 'auto'
        ? `auto chose ${name} (${attempt.detail})${passedOver.length ? `; passed over ${passedOver.join('; ')}` : ''}`
        : `${name} as configured (${attempt.detail})`;
    active = {
      backend: name,
      requested,
      reason: why,
      threads: name === 'wasm' || name === 'torch' ? (attempt.extra?.threads ?? 1) : os.availableParallelism(),
      tfjsVersion: tf.version_core,
      ...attempt.extra,
    };
    return active;
  }
  throw new FedcxrError('backend_unavailable', `no tfjs backend could start: ${passedOver.join('; ')}`);
}

async function attemptBackend(name: BackendName, threads: number, auto: boolean, device = 'auto'): Promise<Attempt> {
  switch (name) {
    case 'torch': {
      const started = startTorchBackend({ device, threads });
      if (!started.ok) return started;
      const probe = torchProbeOf(started);
      return {
        ok: true,
        detail: `${probe.reason}${probe.device === 'cpu' ? ` with ${probe.threads} thread${probe.threads === 1 ? '' : 's'}` : ''}`,
        extra: {
          device: probe.device,
          threads: probe.threads,
          libtorch: {
            version: probe.libtorchVersion ?? 'unknown',
            origin: probe.libtorch ?? 'unknown',
            cudaDevices: probe.cudaDevices ?? 0,
            torchvision: probe.torchvision ?? 'not loaded',
          },
        },
      };
    }
    case 'tensorflow': {
      const native = await loadNativeBackend();
      if (!native.ok) return native;
      return {
        ok: true,
        detail: `libtensorflow via ${native.value.package}`,
        extra: { nativePackage: native.value.package },
      };
    }
    case 'webgpu': {
      if (auto) {
        // Only the adapter is asked for here; starting tfjs' backend on a software rasterizer would be wasted.
        const gpu = await requestGpuAdapter();
        if (!gpu.ok) return gpu;
        if (gpu.value.adapter.software) {
          return {
            ok: false,
            reason: `only a software adapter (${adapterName(gpu.value.adapter)}), slower than wasm on the same CPU`,
          };
        }
      }
      const loaded = await loadWebgpuBackend();
      if (!loaded.ok) return loaded;
      return { ok: true, detail: `GPU ${adapterName(loaded.value)}`, extra: { gpu: loaded.value } };
    }
    case 'wasm': {
      try {
        const wasm = await loadWasmBackend(threads);
        const kernels = registerWasmTrainingKernels();
        const note = wasm.note ? `; ${wasm.note}` : '';
        return {
          ok: true,
          detail: `XNNPACK${wasm.simd ? ' SIMD' : ''} on ${wasm.threads} thread${wasm.threads === 1 ? '' : 's'}, training kernels complete${note}`,
          extra: { threads: wasm.threads, wasmTrainingKernels: kernels },
        };
      } catch (error) {
        return { ok: false, reason: `wasm failed to start: ${error instanceof Error ? error.message : String(error)}` };
      }
    }
    case 'cpu':
      return { ok: true, detail: 'plain JavaScript kernels, always available, slowest' };
  }
}

export function adapterName(adapter: GpuAdapterInfo): string {
  return adapter.description || [adapter.vendor, adapter.device].filter(Boolean).join(' ') || 'unnamed adapter';
}

/**
 * Checks every backend for `cxr doctor`: which start here and, for those that do not, why. Starts the ones it
 * can (wasm, webgpu) without changing the active backend.
 */
export async function probeBackends(options: { threads?: number } = {}): Promise<EngineProbe> {
  const threads = options.threads ?? os.availableParallelism();
  const backends: BackendProbe[] = [];
  const previous = currentBackend();

  const torchProbe = torchProbeOf(startTorchBackend({ device: 'auto', threads }));
  backends.push({
    name: 'torch',
    available: torchProbe.available,
    reason: torchProbe.available
      ? `${torchProbe.reason} (${torchProbe.libtorch}); ${torchProbe.cudaDevices} CUDA device(s); ${torchProbe.threads} CPU thread(s); ${torchProbe.kernels} kernels; torchvision ops ${torchProbe.torchvision}`
      : torchProbe.reason,
  });

  const native = await loadNativeBackend();
  backends.push(
    native.ok
      ? { name: 'tensorflow', available: true, reason: `libtensorflow via ${native.value.package}` }
      : { name: 'tensorflow', available: false, reason: native.reason },
  );

  const gpu = await requestGpuAdapter();
  const webgpu = await loadWebgpuBackend();
  backends.push(
    webgpu.ok
      ? {
          name: 'webgpu',
          available: true,
          reason: `${adapterName(webgpu.value)}${webgpu.value.software ? ' (software rasterizer: slower than wasm here)' : ''}`,
        }
      : { name: 'webgpu', available: false, reason: webgpu.reason },
  );

  try {
    const wasm = await loadWasmBackend(threads);
    const kernels = registerWasmTrainingKernels();
    const bridged = kernels.filter((k) => k.via === 'cpu-fallback').length;
    backends.push({
      name: 'wasm',
      available: true,
      reason: `XNNPACK${wasm.simd ? ' SIMD' : ''} on ${wasm.threads} thread(s); training kernels added: ${kernels
        .filter((k) => k.via === 'wasm')
        .map((k) => k.kernelName)
        .join(', ')} + ${bridged} bridged to cpu${wasm.note ? `; ${wasm.note}` : ''}`,
    });
  } catch (error) {
    backends.push({
      name: 'wasm',
      available: false,
      reason: `wasm failed to start: ${error instanceof Error ? error.message : String(error)}`,
    });
  }
  backends.push({ name: 'cpu', available: true, reason: 'plain JavaScript kernels' });
  if (previous && currentBackend() !== previous) await tf.setBackend(previous);

  const byName = new Map(backends.map((b) => [b.name, b]));
  const hardwareGpu = webgpu.ok && !webgpu.value.software;
  const autoBackend: BackendName = byName.get('torch')?.available
    ? 'torch'
    : byName.get('tensorflow')?.available
      ? 'tensorflow'
      : hardwareGpu
        ? 'webgpu'
        : byName.get('wasm')?.available
          ? 'wasm'
          : 'cpu';
  return {
    node: process.versions.node,
    platform: process.platform,
    arch: process.arch,
    cores: os.availableParallelism(),
    tfjsVersion: tf.version_core,
    backends,
    gpu: gpu.ok ? gpu.value.adapter : null,
    auto: { backend: autoBackend, reason: byName.get(autoBackend)?.reason ?? '' },
    torch: torchProbe,
    onnxruntime: await probeOnnxRuntime(),
  };
}
