/**
 * The `torch` backend: a TensorFlow.js KernelBackend whose tensors live in libtorch (ATen), on the CPU or a
 * CUDA device, through the generic bridge of ./addon.ts. The same architecture as tfjs-node (an N-API addon
 * over a native tensor library); the kernel mapping lives in ./kernels, one module per kernel family.
 *
 * Values written from JavaScript stay in JavaScript until a kernel needs them (most are scalars and small
 * index arrays that are read back as often as used); a kernel's output is a handle until someone reads it.
 */
import { type DataId, type DataType, type TensorInfo, tf } from '../../tf.js';
import type { TorchAddon, TorchArg, TorchHandle } from './addon.js';

type BackendValues = Float32Array | Int32Array | Uint8Array | Uint8Array[];

interface TorchData {
  /** The ATen tensor, once uploaded or computed. */
  handle: TorchHandle | null;
  /** Host values, when written from JavaScript (or read back once). */
  values: BackendValues | null;
  shape: number[];
  dtype: DataType;
  refCount: number;
}

/** tfjs dtypes as ATen knows them; complex64 and string tensors stay on the host and no kernel takes them. */
const torchDtype: Partial<Record<DataType, string>> = { float32: 'float32', int32: 'int32', bool: 'bool' };

/** An ATen operator resolved once by schema name and overload, called with boxed arguments. */
export type TorchOp = (args: readonly TorchArg[], keywords?: Record<string, TorchArg>) => unknown;

export class TorchBackend extends tf.KernelBackend {
  private readonly store = new WeakMap<DataId, TorchData>();
  private dataIdCount = 0;
  private readonly operators = new Map<string, TorchOp>();
  /** Constant index tensors kernels build from their attributes (resize tables, …), kept for the process. */
  readonly constants = new Map<string, TorchHandle>();

  readonly torch: TorchAddon;
  /** The ATen device every tensor is created on: `cpu`, `cuda`, `cuda:1`, … */
  readonly device: string;

  // Fields, not parameter properties: the benches run these sources with Node's type stripping only.
  constructor(torch: TorchAddon, device: string) {
    super();
    this.torch = torch;
    this.device = device;
  }

  /** The operator `name.overload` (e.g. `aten::add`, `Tensor`); a clear error when libtorch has none. */
  op(name: string, overload = ''): TorchOp {
    const key = `${name}.${overload}`;
    let fn = this.operators.get(key);
    if (!fn) {
      const id = this.torch.findOperator(name, overload);
      if (id < 0) throw new Error(`torch backend: libtorch has no operator ${key}`);
      const torch = this.torch;
      fn = (args, keywords) => torch.call(id, args, keywords);
      this.operators.set(key, fn);
    }
    return fn;
  }

  /** Calls an operator that returns one tensor. */
  call(name: string, overload: string, args: readonly TorchArg[], keywords?: Record<string, TorchArg>): TorchHandle {
    return this.op(name, overload)(args, keywords) as TorchHandle;
  }

  // ------------------------------------------------------------------------------------------ tensor storage

  /** A tensor's data; one made on another backend is moved here first (tfjs' DataMover contract). */
  private dataOf(dataId: DataId): TorchData {
    let data = this.store.get(dataId);
    if (!data) {
      tf.engine().moveData(this, dataId);
      data = this.store.get(dataId);
    }
    if (!data) throw new Error('torch backend: tensor data is not on this backend (disposed?)');
    return data;
  }

  /** The handle of a tfjs tensor's data, uploading host values on first use. */
  handle(info: TensorInfo): TorchHandle {
    const data = this.dataOf(info.dataId);
    if (data.handle === null) {
      const dtype = torchDtype[data.dtype];
      if (!dtype) throw new Error(`torch backend: ${data.dtype} tensors cannot be used in kernels`);
      data.handle = this.torch.fromBuffer(hostArray(data.values, data.dtype), data.shape, dtype, this.device);
    }
    return data.handle;
  }

  /** Wraps a kernel's result (the backend takes ownership of the handle) as a tfjs TensorInfo. */
  output(handle: TorchHandle, dtype: DataType): TensorInfo {
    const shape = this.torch.shapeOf(handle);
    const dataId = {};
    this.store.set(dataId, { handle, values: null, shape, dtype, refCount: 1 });
    this.dataIdCount++;
    return { dataId, shape, dtype };
  }

  /** A new handle to the same tensor (ATen alias), so two tfjs tensors can each own and free one. */
  alias(handle: TorchHandle): TorchHandle {
    return this.call('aten::alias', '', [handle]);
  }

  free(handle: TorchHandle | null | undefined): void {
    if (handle !== null && handle !== undefined) this.torch.free(handle);
  }

  /** Frees every handle in a (possibly nested) list a multi-output operator returned, except those kept. */
  freeAll(handles: unknown, keep: ReadonlySet<TorchHandle> = new Set()): void {
    if (Array.isArray(handles)) for (const h of handles) this.freeAll(h, keep);
    else if (typeof handles === 'number' && !keep.has(handles)) this.torch.free(handles);
  }

  override write(values: BackendValues, shape: number[], dtype: DataType): DataId {
    const dataId = {};
    // Copied now: the caller may reuse its array for the next tensor (a data loader's batch buffer).
    const own = torchDtype[dtype]
      ? (hostArray(values, dtype) as Float32Array | Int32Array | Uint8Array).slice()
      : values;
    this.store.set(dataId, { handle: null, values: own, shape, dtype, refCount: 1 });
    this.dataIdCount++;
    return dataId;
  }

  override move(dataId: DataId, values: BackendValues, shape: number[], dtype: DataType, refCount: number): void {
    const previous = this.store.get(dataId);
    if (previous) this.free(previous.handle);
    else this.dataIdCount++;
    this.store.set(dataId, { handle: null, values, shape, dtype, refCount });
  }

  override readSync(dataId: DataId): BackendValues {
    const data = this.dataOf(dataId);
    if (data.values === null) {
      if (data.handle === null) throw new Error('torch backend: tensor has neither values nor a handle');
      data.values = fromTorch(this.torch.toBuffer(data.handle), data.dtype);
    }
    return data.values;
  }

  override async read(dataId: DataId): Promise<BackendValues> {
    return this.readSync(dataId);
  }

  override disposeData(dataId: DataId, force = false): boolean {
    const data = this.store.get(dataId);
    if (!data) return true;
    if (force) data.refCount = 0;
    else data.refCount--;
    if (data.refCount > 0) return false;
    this.free(data.handle);
    this.store.delete(dataId);
    this.dataIdCount--;
    return true;
  }

  override refCount(dataId: DataId): number {
    return this.store.get(dataId)?.refCount ?? 0;
  }

  override incRef(dataId: DataId): void {
    const data = this.store.get(dataId);
    if (data) data.refCount++;
  }

  override numDataIds(): number {
    return this.dataIdCount;
  }

  override memory(): { unreliable: boolean; reasons?: string[] } & { liveTorchTensors: number } {
    return {
      unreliable: true,
      reasons: ['tensor bytes live in libtorch; the count of live ATen tensors is given instead'],
      liveTorchTensors: this.torch.liveTensors(),
    };
  }

  override floatPrecision(): 32 {
    return 32;
  }

  override epsilon(): number {
    return 1e-7;
  }

  override timerAvailable(): boolean {
    return true;
  }

  override async time(f: () => void): Promise<{ kernelMs: number }> {
    const start = performance.now();
    f();
    return { kernelMs: performance.now() - start };
  }

  override dispose(): void {
    for (const handle of this.constants.values()) this.free(handle);
    this.constants.clear();
  }
}

function hostArray(values: BackendValues | null, dtype: DataType): ArrayBufferView {
  if (values === null) throw new Error('torch backend: tensor has no values');
  if (dtype === 'float32')
    return values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>);
  if (dtype === 'int32') return values instanceof Int32Array ? values : Int32Array.from(values as ArrayLike<number>);
  return values instanceof Uint8Array ? values : Uint8Array.from(values as ArrayLike<number>);
}

function fromTorch(
  values: Float32Array | Int32Array | Uint8Array | Float64Array | BigInt64Array,
  dtype: DataType,
): BackendValues {
  if (dtype === 'float32')
    return values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>);
  if (dtype === 'int32') {
    if (values instanceof Int32Array) return values;
    if (values instanceof BigInt64Array) return Int32Array.from(values, (v) => Number(v));
    return Int32Array.from(values as ArrayLike<number>);
  }
  if (dtype === 'bool') return values instanceof Uint8Array ? values : Uint8Array.from(values as ArrayLike<number>);
  throw new Error(`torch backend: cannot read ${dtype} tensors`);
}

/** The backend instance tfjs passes to a kernel. */
export function torchBackendOf(backend: unknown): TorchBackend {
  if (!(backend instanceof TorchBackend)) throw new Error('torch kernel called on another backend');
  return backend;
}

export { tf };
