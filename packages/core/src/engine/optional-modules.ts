/**
 * The engine's optional native parts, loaded only when asked for and only if installed: Dawn (`webgpu`),
 * libtensorflow (`@tensorflow/tfjs-node[-gpu]`) and ONNX Runtime (`onnxruntime-node`). Each loader says why
 * it could not load, in words a person can act on.
 */
import { createRequire } from 'node:module';
import os from 'node:os';
import { tf } from '../tf.js';

const require = createRequire(import.meta.url);

class NotInstalled extends Error {}

/**
 * Imports a module by a computed name, so neither TypeScript nor a bundler requires it to be installed.
 * Presence is checked with Node's resolver first, so "not installed" is told apart from "fails to load".
 */
async function importOptional<T>(name: string): Promise<T> {
  if (!resolvable(`${name}/package.json`) && !resolvable(name)) throw new NotInstalled(`${name} is not installed`);
  return (await import(name)) as T;
}

function resolvable(specifier: string): boolean {
  try {
    require.resolve(specifier);
    return true;
  } catch {
    return false;
  }
}

function isNotInstalled(error: unknown): boolean {
  return error instanceof NotInstalled;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message.split('\n')[0] : String(error);
}

export type Loaded<T> = { ok: true; value: T } | { ok: false; reason: string };

// ---------------------------------------------------------------------------------------------------- WebGPU

export interface GpuAdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A CPU rasterizer (Mesa lavapipe/llvmpipe, SwiftShader): works, but is slower than wasm on the same CPU. */
  software: boolean;
}

interface DawnAdapter {
  info?: { vendor?: string; architecture?: string; device?: string; description?: string };
  isFallbackAdapter?: boolean;
}
interface DawnGpu {
  requestAdapter(options?: object): Promise<DawnAdapter | null>;
}
interface DawnModule {
  create(flags: string[]): DawnGpu;
  globals: Record<string, unknown>;
}

let dawn: Promise<Loaded<{ gpu: DawnGpu; adapter: GpuAdapterInfo }>> | undefined;

/** Starts Dawn (npm `webgpu`) once and asks it for an adapter. */
export function requestGpuAdapter(): Promise<Loaded<{ gpu: DawnGpu; adapter: GpuAdapterInfo }>> {
  dawn ??= (async () => {
    let module: DawnModule;
    try {
      module = await importOptional<DawnModule>('webgpu');
    } catch (error) {
      return {
        ok: false,
        reason: isNotInstalled(error)
          ? 'the npm package `webgpu` (Dawn) is not installed'
          : `Dawn (npm webgpu) failed to load: ${messageOf(error)}`,
      };
    }
    // Mesa's Vulkan drivers want a runtime dir; a headless server often has none.
    process.env.XDG_RUNTIME_DIR ??= os.tmpdir();
    try {
      const gpu = module.create([]);
      const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
      if (!adapter) {
        return {
          ok: false,
          reason:
            'Dawn found no GPU adapter (no Vulkan/Metal/D3D12 driver; on Linux install a Vulkan driver, e.g. mesa-vulkan-drivers ≥ 23 or the NVIDIA driver)',
        };
      }
      const info = adapter.info ?? {};
      const text = `${info.architecture ?? ''} ${info.device ?? ''} ${info.description ?? ''}`;
      const software = Boolean(adapter.isFallbackAdapter) || /software|llvmpipe|lavapipe|swiftshader|warp/i.test(text);
      // tfjs' WebGPU backend looks for navigator.gpu and the GPU* constants as globals.
      Object.assign(globalThis, module.globals);
      Object.defineProperty(globalThis.navigator, 'gpu', { value: gpu, configurable: true });
      return {
        ok: true,
        value: {
          gpu,
          adapter: {
            vendor: info.vendor ?? '',
            architecture: info.architecture ?? '',
            device: info.device ?? '',
            description: info.description ?? '',
            software,
          },
        },
      };
    } catch (error) {
      return { ok: false, reason: `Dawn failed to start: ${messageOf(error)}` };
    }
  })();
  return dawn;
}

let webgpuBackend: Promise<Loaded<GpuAdapterInfo>> | undefined;

/** Registers and initializes tfjs' `webgpu` backend on Dawn's adapter (does not make it the active one). */
export function loadWebgpuBackend(): Promise<Loaded<GpuAdapterInfo>> {
  webgpuBackend ??= (async (): Promise<Loaded<GpuAdapterInfo>> => {
    const gpu = await requestGpuAdapter();
    if (!gpu.ok) return gpu;
    try {
      await import('@tensorflow/tfjs-backend-webgpu');
      const previous = currentBackend();
      const ok = await tf.setBackend('webgpu');
      if (previous && previous !== 'webgpu') await tf.setBackend(previous);
      if (!ok) return { ok: false, reason: 'tfjs could not initialize its webgpu backend on this adapter' };
      return { ok: true, value: gpu.value.adapter };
    } catch (error) {
      return { ok: false, reason: `tfjs webgpu backend failed: ${messageOf(error)}` };
    }
  })();
  return webgpuBackend;
}

export function currentBackend(): string | undefined {
  try {
    return tf.getBackend();
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------- libtensorflow

export const nativePackages = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

let native: Promise<Loaded<{ package: string }>> | undefined;

/** Loads tfjs-node-gpu, else tfjs-node (each registers the `tensorflow` backend); neither ships here. */
export function loadNativeBackend(): Promise<Loaded<{ package: string }>> {
  native ??= (async (): Promise<Loaded<{ package: string }>> => {
    const reasons: string[] = [];
    for (const name of nativePackages) {
      try {
        await importOptional<unknown>(name);
        if (tf.findBackend('tensorflow') || tf.engine().registryFactory.tensorflow) {
          return { ok: true, value: { package: name } };
        }
        reasons.push(`${name} loaded but registered no "tensorflow" backend (another copy of tfjs?)`);
      } catch (error) {
        reasons.push(
          isNotInstalled(error) ? `${name} is not installed` : `${name} failed to load: ${messageOf(error)}`,
        );
      }
    }
    return {
      ok: false,
      reason: `${reasons.join('; ')} (optional: \`npm install @tensorflow/tfjs-node-gpu@4.22.0\` with CUDA, or @tensorflow/tfjs-node, downloads libtensorflow)`,
    };
  })();
  return native;
}

// ------------------------------------------------------------------------------------------------ ONNX Runtime

export interface OnnxRuntimeInfo {
  available: boolean;
  version?: string;
  /** Execution providers this build knows; `bundled: false` ones need extra libraries (e.g. CUDA). */
  providers?: { name: string; bundled: boolean }[];
  reason?: string;
}

interface OrtModule {
  env?: { versions?: { node?: string; common?: string } };
  listSupportedBackends?: () => { name: string; bundled: boolean }[];
  default?: OrtModule;
}

export async function probeOnnxRuntime(): Promise<OnnxRuntimeInfo> {
  let ort: OrtModule;
  try {
    const loaded = await importOptional<OrtModule>('onnxruntime-node');
    ort = loaded.listSupportedBackends || loaded.env ? loaded : (loaded.default ?? loaded);
  } catch (error) {
    return {
      available: false,
      reason: isNotInstalled(error)
        ? 'onnxruntime-node is not installed'
        : `onnxruntime-node failed to load: ${messageOf(error)}`,
    };
  }
  const version = ort.env?.versions?.node ?? ort.env?.versions?.common;
  const providers = ort.listSupportedBackends?.().map(({ name, bundled }) => ({ name, bundled }));
  return { available: true, ...(version ? { version } : {}), ...(providers ? { providers } : {}) };
}
