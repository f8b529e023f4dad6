/**
 * Finds and loads the torch bridge (packages/core/native, built by `npm ci` or `cxr engine build` against a
 * libtorch on this machine) and, beside it, torchvision's operator library when the libtorch came with one.
 * Every failure is a reason in words a person can act on; nothing here throws.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** A tensor held by the bridge, named by a small integer (see torch_bridge.cc). */
export type TorchHandle = number;

/** Values the bridge converts by the operator schema's argument types. */
export type TorchArg = TorchHandle | number | boolean | string | null | undefined | readonly TorchArg[];

export interface TorchInfo {
  version: string;
  cuda: boolean;
  cudaDevices: number;
  threads: number;
  parallel: string;
}

/** The native bridge's functions (torch_bridge.cc). */
export interface TorchAddon {
  findOperator(name: string, overload: string): number;
  call(operator: number, args: readonly TorchArg[], keywords?: Record<string, TorchArg>): unknown;
  fromBuffer(values: ArrayBufferView, shape: readonly number[], dtype: string, device?: string): TorchHandle;
  toBuffer(handle: TorchHandle): Float32Array | Int32Array | Uint8Array | Float64Array | BigInt64Array;
  free(handle: TorchHandle): void;
  shapeOf(handle: TorchHandle): number[];
  describe(handle: TorchHandle): { shape: number[]; dtype: string; device: string };
  liveTensors(): number;
  loadLibrary(file: string): void;
  setThreads(threads: number): void;
  synchronize(handle?: TorchHandle): void;
  info(): TorchInfo;
}

/** What build.mjs recorded next to the addon. */
export interface TorchBuildManifest {
  sourceHash: string;
  libtorch: string;
  version: string;
  origin: string;
  lib: string;
  builtAt: string;
}

export interface LoadedTorch {
  addon: TorchAddon;
  manifest: TorchBuildManifest | null;
  addonPath: string;
  /** torchvision's operators (roi_align, nms) are registered with the dispatcher. */
  torchvision: { loaded: true; library: string } | { loaded: false; reason: string };
}

export type TorchLoad = { ok: true; value: LoadedTorch } | { ok: false; reason: string };

const require = createRequire(import.meta.url);

/** packages/core/native, from src/engine/torch (source runs) or dist (the built package). */
export function nativeDirectory(): string | undefined {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, 'native');
    if (existsSync(path.join(candidate, 'build.mjs'))) return candidate;
    dir = path.dirname(dir);
  }
  return undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message.split('\n')[0] : String(error);
}

let loaded: TorchLoad | undefined;

/** Loads the bridge once per process. `FEDCXR_TORCH_ADDON` names another build of it. */
export function loadTorch(): TorchLoad {
  loaded ??= load();
  return loaded;
}

function load(): TorchLoad {
  const native = nativeDirectory();
  const addonPath =
    process.env.FEDCXR_TORCH_ADDON ?? (native ? path.join(native, 'build', 'fedcxr_torch.node') : undefined);
  if (!addonPath || !existsSync(addonPath)) {
    return {
      ok: false,
      reason:
        'the torch bridge is not built: it needs a libtorch ($LIBTORCH, a Python torch, or Debian libtorch-dev) and a C++ compiler; run `cxr engine build` to build it and see what is missing',
    };
  }
  const manifestPath = path.join(path.dirname(addonPath), 'torch-build.json');
  let manifest: TorchBuildManifest | null = null;
  try {
    manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as TorchBuildManifest;
  } catch {}
  let addon: TorchAddon;
  try {
    addon = require(addonPath) as TorchAddon;
  } catch (error) {
    return {
      ok: false,
      reason: `the torch bridge ${addonPath} does not load (${messageOf(error)}); rebuild it with \`cxr engine build\``,
    };
  }
  return { ok: true, value: { addon, manifest, addonPath, torchvision: loadTorchvision(addon, manifest) } };
}

/**
 * torchvision ships its operators in `_C*.so` beside a Python torch. Loading it registers `torchvision::roi_align`,
 * `torchvision::nms` and their backward kernels with the dispatcher. `FEDCXR_TORCHVISION_LIBRARY` names one.
 */
function loadTorchvision(addon: TorchAddon, manifest: TorchBuildManifest | null): LoadedTorch['torchvision'] {
  const candidates: string[] = [];
  if (process.env.FEDCXR_TORCHVISION_LIBRARY) candidates.push(process.env.FEDCXR_TORCHVISION_LIBRARY);
  else if (manifest) {
    const dir = path.join(path.dirname(manifest.libtorch), 'torchvision');
    if (existsSync(dir)) {
      for (const file of readdirSync(dir).sort()) {
        if (/^_C(_stable)?(\..*)?\.so$/.test(file)) candidates.push(path.join(dir, file));
      }
    }
  }
  if (candidates.length === 0) return { loaded: false, reason: 'no torchvision operator library beside this libtorch' };
  const failures: string[] = [];
  for (const library of candidates) {
    try {
      addon.loadLibrary(library);
      if (addon.findOperator('torchvision::roi_align', '') >= 0) return { loaded: true, library };
      failures.push(`${path.basename(library)} loaded but registered no torchvision::roi_align`);
    } catch (error) {
      failures.push(messageOf(error));
    }
  }
  return { loaded: false, reason: failures.join('; ') };
}
