/** What every torch kernel module shares: the kernel wrapper and scratch handles freed when a kernel ends. */
import type { DataType, KernelConfig, NamedAttrMap, TensorInfo } from '../../../tf.js';
import type { TorchHandle } from '../addon.js';
import { type TorchBackend, torchBackendOf } from '../backend.js';

export type KernelInputs = Record<string, TensorInfo | undefined> & { [index: number]: TensorInfo };

export type TorchKernelFunc = (
  backend: TorchBackend,
  inputs: KernelInputs,
  attrs: NamedAttrMap,
  scratch: Scratch,
) => TensorInfo | TensorInfo[];

/** Handles a kernel makes on the way (permuted views, casts) and frees when it returns. */
export class Scratch {
  private readonly handles: TorchHandle[] = [];
  private readonly backend: TorchBackend;
  constructor(backend: TorchBackend) {
    this.backend = backend;
  }
  /** Registers an intermediate handle to be freed when the kernel ends; returns it. */
  t(handle: TorchHandle): TorchHandle {
    this.handles.push(handle);
    return handle;
  }
  /** Calls an operator and frees its result when the kernel ends. */
  call(
    name: string,
    overload: string,
    args: Parameters<TorchBackend['call']>[2],
    kw?: Parameters<TorchBackend['call']>[3],
  ): TorchHandle {
    return this.t(this.backend.call(name, overload, args, kw));
  }
  dispose(): void {
    for (const h of this.handles) this.backend.free(h);
    this.handles.length = 0;
  }
}

export function torchKernel(kernelName: string, fn: TorchKernelFunc): KernelConfig {
  return {
    kernelName,
    backendName: 'torch',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const torch = torchBackendOf(backend);
      const scratch = new Scratch(torch);
      try {
        return fn(torch, inputs as unknown as KernelInputs, attrs ?? {}, scratch);
      } finally {
        scratch.dispose();
      }
    },
  };
}

/** The first input of a kernel that has exactly one meaningful tensor (x, a, …) by name. */
export function input(inputs: KernelInputs, name: string): TensorInfo {
  const t = inputs[name];
  if (!t) throw new Error(`torch kernel: missing input ${name}`);
  return t;
}

/** ATen returns int64 for indices and integer reductions; tfjs wants int32. Casts when needed (consumes `h`). */
export function asDtype(backend: TorchBackend, handle: TorchHandle, dtype: DataType): TensorInfo {
  const actual = backend.torch.describe(handle).dtype;
  if (actual === dtype) return backend.output(handle, dtype);
  const cast = backend.call('aten::_to_copy', '', [handle], { dtype });
  backend.free(handle);
  return backend.output(cast, dtype);
}

/** Normalizes tfjs axes (negative, single or list) against a rank. */
export function axesOf(axis: number | number[] | undefined | null, rank: number): number[] {
  const list = axis === undefined || axis === null ? [...Array(rank).keys()] : Array.isArray(axis) ? axis : [axis];
  return list.map((a) => (a < 0 ? a + rank : a));
}

export function pair(value: number | [number, number] | number[]): [number, number] {
  return typeof value === 'number' ? [value, value] : [value[0], value[1] ?? value[0]];
}
