/**
 * PyTorch `.pth` checkpoints read in TypeScript, no Python: the zip format (torch ≥ 1.6: `<dir>/data.pkl`
 * plus raw storages `<dir>/data/<key>`, stored or deflated entries, zip64 aware) and the legacy format
 * (a run of pickles followed by the storages, as torchvision's 2019 COCO checkpoints were saved).
 * The pickle machine implements the opcodes a state_dict needs and builds only safe values: lists,
 * dicts, strings, numbers and tensors. Unknown classes become inert `PickledObject`s (never executed),
 * so a pickled nn.Module or optimizer state is reported clearly instead of run.
 */
import { readFile } from 'node:fs/promises';
import { inflateRawSync } from 'node:zlib';
import { decodeElements, elementCount, FedcxrError, type HostTensor, type NamedTensors } from '@fedcxr/core';

/** An instance of a class the reader does not rebuild (kept inert, for diagnostics). */
export class PickledObject {
  state: unknown = undefined;
  constructor(
    readonly className: string,
    readonly args: unknown[],
  ) {}
}

/** A `module.name` reference from a GLOBAL opcode. */
class PickleGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get fullName(): string {
    return `${this.module}.${this.name}`;
  }
}

interface StorageRef {
  kind: 'storage';
  key: string;
  /** safetensors-style dtype code. */
  dtype: string;
  numel: number;
  /** Legacy storage views: element offset into the root storage. */
  viewOffset: number;
}

/** A tensor seen in the pickle, materialized once its storage bytes are known. */
class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

const STORAGE_DTYPES: Record<string, [string, number]> = {
  FloatStorage: ['F32', 4],
  DoubleStorage: ['F64', 8],
  HalfStorage: ['F16', 2],
  BFloat16Storage: ['BF16', 2],
  LongStorage: ['I64', 8],
  IntStorage: ['I32', 4],
  ShortStorage: ['I16', 2],
  CharStorage: ['I8', 1],
  ByteStorage: ['U8', 1],
  BoolStorage: ['BOOL', 1],
};

const _MARK = Symbol('mark');

/** Reads a .pth file and returns its state_dict (found at the root or under 'model'/'state_dict'). */
export async function readPth(path: string): Promise<NamedTensors> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new FedcxrError('file_unreadable', `cannot read: ${(error as Error).message}`, { file: path });
  }
  return findStateDict(parsePth(bytes, path), path);
}

/** Unpickles a .pth file (zip or legacy) into plain values with tensors materialized as HostTensors. */
export function parsePth(bytes: Uint8Array, file = 'checkpoint.pth'): unknown {
  const fail = (problem: string) => new FedcxrError('invalid_pth', problem, { file });
  if (bytes.byteLength >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04) {
    return parseZipCheckpoint(bytes, fail);
  }
  if (bytes.byteLength >= 2 && bytes[0] === 0x80 && bytes[1] >= 2) return parseLegacyCheckpoint(bytes, fail);
  if (bytes.byteLength > 262 && new TextDecoder().decode(bytes.subarray(257, 262)) === 'ustar') {
    throw fail('this is the pre-0.4 tar checkpoint format; load it in PyTorch and save it again with torch.save');
  }
  throw fail('not a PyTorch checkpoint (neither a zip archive nor a pickle)');
}

function parseZipCheckpoint(bytes: Uint8Array, fail: (problem: string) => FedcxrError): unknown {
  const entries = readZipDirectory(bytes, fail);
  const pickleName = [...entries.keys()].find((name) => name === 'data.pkl' || name.endsWith('/data.pkl'));
  if (!pickleName) throw fail('zip archive has no data.pkl: not a torch.save checkpoint');
  const prefix = pickleName.slice(0, -'data.pkl'.length);
  const byteorder = entries.get(`${prefix}byteorder`);
  if (byteorder) {
    const order = new TextDecoder().decode(readZipEntry(bytes, byteorder, fail)).trim();
    if (order !== 'little') throw fail(`storages are ${order}-endian; only little-endian checkpoints are supported`);
  }
  const root = unpickle(readZipEntry(bytes, entries.get(pickleName)!, fail), 0, fail, persistentStorage(fail)).value;
  const cache = new Map<string, Uint8Array>();
  return materialize(
    root,
    (storage) => {
      let raw = cache.get(storage.key);
      if (!raw) {
        const entry = entries.get(`${prefix}data/${storage.key}`);
        if (!entry) throw fail(`storage data/${storage.key} is missing from the archive`);
        raw = readZipEntry(bytes, entry, fail);
        cache.set(storage.key, raw);
      }
      return raw;
    },
    fail,
  );
}

function parseLegacyCheckpoint(bytes: Uint8Array, fail: (problem: string) => FedcxrError): unknown {
  const magic = unpickle(bytes, 0, fail);
  if (magic.value !== 0x1950a86a20f9469cfc6cn) throw fail('pickle file without the torch.save magic number');
  const protocol = unpickle(bytes, magic.end, fail);
  if (protocol.value !== 1001) throw fail(`unsupported legacy torch.save protocol ${String(protocol.value)}`);
  const sysInfo = unpickle(bytes, protocol.end, fail);
  if (sysInfo.value instanceof Map && sysInfo.value.get('little_endian') === false) {
    throw fail('storages are big-endian; only little-endian checkpoints are supported');
  }
  const main = unpickle(bytes, sysInfo.end, fail, persistentStorage(fail));
  const keys = unpickle(bytes, main.end, fail);
  if (!Array.isArray(keys.value)) throw fail('legacy checkpoint: storage key list missing');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const storageBytes = new Map<string, Uint8Array>();
  const elementSizes = new Map<string, number>();
  collectStorages(main.value, (s) => elementSizes.set(s.key, STORAGE_DTYPE_SIZE.get(s.dtype) ?? 1));
  let at = keys.end;
  for (const key of keys.value as string[]) {
    if (at + 8 > bytes.byteLength) throw fail(`legacy checkpoint truncated before storage ${key}`);
    const numel = Number(view.getBigInt64(at, true));
    const size = numel * (elementSizes.get(key) ?? 1);
    if (at + 8 + size > bytes.byteLength) throw fail(`legacy checkpoint truncated inside storage ${key}`);
    storageBytes.set(key, bytes.subarray(at + 8, at + 8 + size));
    at += 8 + size;
  }
  return materialize(
    main.value,
    (storage) => {
      const raw = storageBytes.get(storage.key);
      if (!raw) throw fail(`storage ${storage.key} is missing from the file`);
      return raw;
    },
    fail,
  );
}

const STORAGE_DTYPE_SIZE = new Map(Object.values(STORAGE_DTYPES));

function persistentStorage(fail: (problem: string) => FedcxrError): (pid: unknown) => StorageRef {
  return (pid) => {
    if (!Array.isArray(pid) || pid[0] !== 'storage') throw fail(`unsupported persistent id ${describe(pid)}`);
    const [, type, key, , numel, view] = pid as [string, unknown, unknown, unknown, unknown, unknown];
    if (!(type instanceof PickleGlobal)) throw fail(`storage type ${describe(type)} is not a class`);
    const dtype = STORAGE_DTYPES[type.name];
    if (!dtype) throw fail(`unsupported storage type ${type.fullName} (complex, quantized or untyped storages)`);
    const storage: StorageRef = {
      kind: 'storage',
      key: String(key),
      dtype: dtype[0],
      numel: Number(numel),
      viewOffset: 0,
    };
    if (Array.isArray(view)) return { ...storage, viewOffset: Number(view[1]) };
    return storage;
  };
}

function collectStorages(value: unknown, visit: (storage: StorageRef) => void, seen = new Set<unknown>()): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if (value instanceof TensorRef) visit(value.storage);
  else if (Array.isArray(value)) for (const item of value) collectStorages(item, visit, seen);
  else if (value instanceof Map) for (const item of value.values()) collectStorages(item, visit, seen);
  else if (value instanceof PickledObject) {
    collectStorages(value.args, visit, seen);
    collectStorages(value.state, visit, seen);
  }
}

/** Replaces every TensorRef by a contiguous HostTensor, honouring storage offsets and strides. */
function materialize(
  root: unknown,
  storageBytes: (storage: StorageRef) => Uint8Array,
  fail: (problem: string) => FedcxrError,
): unknown {
  const decoded = new Map<string, HostTensor>();
  const done = new Map<unknown, unknown>();
  const visit = (value: unknown): unknown => {
    if (value === null || typeof value !== 'object') return value;
    if (done.has(value)) return done.get(value);
    if (value instanceof TensorRef) {
      const { storage } = value;
      let flat = decoded.get(storage.key);
      if (!flat) {
        const raw = storageBytes(storage);
        const size = STORAGE_DTYPE_SIZE.get(storage.dtype)!;
        const numel = Math.floor(raw.byteLength / size);
        flat = decodeElements(raw, storage.dtype, [numel], (problem) => fail(`storage ${storage.key}: ${problem}`));
        decoded.set(storage.key, flat);
      }
      const tensor = gatherStrided(flat, storage.viewOffset + value.offset, value.shape, value.stride, (problem) =>
        fail(`tensor in storage ${storage.key}: ${problem}`),
      );
      done.set(value, tensor);
      return tensor;
    }
    if (Array.isArray(value)) {
      const out: unknown[] = [];
      done.set(value, out);
      for (const item of value) out.push(visit(item));
      return out;
    }
    if (value instanceof Map) {
      const out = new Map<unknown, unknown>();
      done.set(value, out);
      for (const [k, v] of value) out.set(k, visit(v));
      return out;
    }
    if (value instanceof PickledObject) {
      done.set(value, value);
      value.state = visit(value.state);
      return value;
    }
    return value;
  };
  return visit(root);
}

function gatherStrided(
  flat: HostTensor,
  offset: number,
  shape: number[],
  stride: number[],
  fail: (problem: string) => Error,
): HostTensor {
  const count = elementCount(shape);
  const source = flat.data;
  const Ctor = source.constructor as new (n: number) => typeof source;
  const out = new Ctor(count);
  if (count === 0) return { dtype: flat.dtype, shape, data: out };
  let maxIndex = offset;
  for (let d = 0; d < shape.length; d++) maxIndex += (shape[d] - 1) * stride[d];
  if (offset < 0 || maxIndex >= source.length) {
    throw fail(
      `view (offset ${offset}, shape [${shape}], stride [${stride}]) reaches past its ${source.length} elements`,
    );
  }
  const rank = shape.length;
  let contiguous = true;
  for (let d = rank - 1, expected = 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== expected) contiguous = false;
    expected *= shape[d];
  }
  if (contiguous) {
    out.set(source.subarray(offset, offset + count) as ArrayLike<number>);
    return { dtype: flat.dtype, shape, data: out };
  }
  const index = new Array<number>(rank).fill(0);
  let at = offset;
  for (let i = 0; i < count; i++) {
    out[i] = source[at];
    for (let d = rank - 1; d >= 0; d--) {
      index[d]++;
      at += stride[d];
      if (index[d] < shape[d]) break;
      at -= stride[d] * shape[d];
      index[d] = 0;
    }
  }
  return { dtype: flat.dtype, shape, data: out };
}

/**
 * The state_dict inside a checkpoint: the root mapping if its values are tensors, else the mapping
 * under 'model', 'state_dict' or 'model_state_dict' (training checkpoints).
 */
export function findStateDict(root: unknown, file = 'checkpoint.pth'): NamedTensors {
  const asTensors = (value: unknown): NamedTensors | undefined => {
    if (!(value instanceof Map) || value.size === 0) return undefined;
    const out: NamedTensors = new Map();
    for (const [key, item] of value) {
      if (typeof key !== 'string' || !isHostTensor(item)) return undefined;
      out.set(key, item);
    }
    return out;
  };
  const direct = asTensors(root);
  if (direct) return direct;
  if (root instanceof Map) {
    for (const key of ['model', 'state_dict', 'model_state_dict', 'module']) {
      const nested = asTensors(root.get(key));
      if (nested) return nested;
    }
  }
  if (root instanceof PickledObject) {
    throw new FedcxrError(
      'invalid_pth',
      `holds a pickled ${root.className} object, not a state_dict; in PyTorch save model.state_dict() instead`,
      { file },
    );
  }
  const keys = root instanceof Map ? ` (top-level keys: ${[...root.keys()].slice(0, 10).join(', ')})` : '';
  throw new FedcxrError('invalid_pth', `no state_dict (a mapping from names to tensors) found${keys}`, { file });
}

function isHostTensor(value: unknown): value is HostTensor {
  return typeof value === 'object' && value !== null && 'dtype' in value && 'shape' in value && 'data' in value;
}

// ---------------------------------------------------------------------------------------------------
// Pickle virtual machine (protocols 2–5, the opcodes torch.save emits plus the common neighbours).

interface UnpickleResult {
  value: unknown;
  /** Offset just past the STOP opcode. */
  end: number;
}

function unpickle(
  bytes: Uint8Array,
  start: number,
  fail: (problem: string) => FedcxrError,
  persistentLoad?: (pid: unknown) => unknown,
): UnpickleResult {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const utf8 = new TextDecoder('utf-8');
  const stack: unknown[] = [];
  const metastack: unknown[][] = [];
  const memo = new Map<number, unknown>();
  let pos = start;
  let current = stack;

  const need = (n: number) => {
    if (pos + n > bytes.byteLength) throw fail(`pickle truncated at byte ${pos}`);
  };
  const u8 = () => {
    need(1);
    return bytes[pos++];
  };
  const u16 = () => {
    need(2);
    const v = view.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = () => {
    need(4);
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const i32 = () => {
    need(4);
    const v = view.getInt32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = () => {
    need(8);
    const v = Number(view.getBigUint64(pos, true));
    pos += 8;
    return v;
  };
  const take = (n: number) => {
    need(n);
    const out = bytes.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) throw fail(`pickle truncated at byte ${pos}`);
    const text = utf8.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return text;
  };
  const pop = () => {
    if (current.length === 0) throw fail(`pickle stack underflow at byte ${pos}`);
    return current.pop();
  };
  const top = () => {
    if (current.length === 0) throw fail(`pickle stack underflow at byte ${pos}`);
    return current[current.length - 1];
  };
  const popMark = () => {
    const items = current;
    const previous = metastack.pop();
    if (!previous) throw fail(`pickle MARK missing at byte ${pos}`);
    current = previous;
    return items;
  };
  const push = (value: unknown) => current.push(value);
  const setItems = (target: unknown, items: unknown[]) => {
    if (target instanceof Map) {
      for (let i = 0; i + 1 < items.length; i += 2) target.set(items[i], items[i + 1]);
    } else if (target instanceof PickledObject) {
      // dict subclasses we do not rebuild: keep items as state
      const state = target.state instanceof Map ? target.state : new Map<unknown, unknown>();
      for (let i = 0; i + 1 < items.length; i += 2) state.set(items[i], items[i + 1]);
      target.state = state;
    } else {
      throw fail(`SETITEMS on a ${describe(target)} at byte ${pos}`);
    }
  };
  const longFromBytes = (raw: Uint8Array): number | bigint => {
    if (raw.length === 0) return 0;
    let value = 0n;
    for (let i = raw.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(raw[i]);
    if (raw[raw.length - 1] & 0x80) value -= 1n << BigInt(raw.length * 8);
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  };

  for (;;) {
    const at = pos;
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        u8();
        break;
      case 0x95: // FRAME
        u64();
        break;
      case 0x2e: // STOP
        return { value: pop(), end: pos };
      case 0x28: // MARK
        metastack.push(current);
        current = [];
        break;
      case 0x7d: // EMPTY_DICT
        push(new Map());
        break;
      case 0x5d: // EMPTY_LIST
        push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        push([]);
        break;
      case 0x8f: // EMPTY_SET
        push([]);
        break;
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x4a: // BININT
        push(i32());
        break;
      case 0x4b: // BININT1
        push(u8());
        break;
      case 0x4d: // BININT2
        push(u16());
        break;
      case 0x8a: // LONG1
        push(longFromBytes(take(u8())));
        break;
      case 0x8b: // LONG4
        push(longFromBytes(take(u32())));
        break;
      case 0x49: {
        // INT (protocol 0): "01"/"00" are booleans
        const text = line();
        push(text === '01' ? true : text === '00' ? false : Number.parseInt(text, 10));
        break;
      }
      case 0x47: // BINFLOAT (big-endian double)
        need(8);
        push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x58: // BINUNICODE
        push(utf8.decode(take(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(utf8.decode(take(u8())));
        break;
      case 0x8d: // BINUNICODE8
        push(utf8.decode(take(u64())));
        break;
      case 0x55: // SHORT_BINSTRING
        push(new TextDecoder('latin1').decode(take(u8())));
        break;
      case 0x54: // BINSTRING
        push(new TextDecoder('latin1').decode(take(i32())));
        break;
      case 0x43: // SHORT_BINBYTES
        push(Uint8Array.from(take(u8())));
        break;
      case 0x42: // BINBYTES
        push(Uint8Array.from(take(u32())));
        break;
      case 0x8e: // BINBYTES8
        push(Uint8Array.from(take(u64())));
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const index = op === 0x68 ? u8() : u32();
        if (!memo.has(index)) throw fail(`pickle memo ${index} missing at byte ${at}`);
        push(memo.get(index));
        break;
      }
      case 0x63: {
        // GLOBAL
        const module = line();
        const name = line();
        push(new PickleGlobal(module, name));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        push(new PickleGlobal(String(module), String(name)));
        break;
      }
      case 0x51: // BINPERSID
        if (!persistentLoad) throw fail(`unexpected persistent id at byte ${at}`);
        push(persistentLoad(pop()));
        break;
      case 0x74: // TUPLE
        push(popMark());
        break;
      case 0x85: // TUPLE1
        push([pop()]);
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        push([pop(), b]);
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        push([pop(), b, c]);
        break;
      }
      case 0x6c: // LIST
        push(popMark());
        break;
      case 0x64: {
        // DICT
        const items = popMark();
        const dict = new Map<unknown, unknown>();
        setItems(dict, items);
        push(dict);
        break;
      }
      case 0x61: {
        // APPEND
        const item = pop();
        const list = top();
        if (!Array.isArray(list)) throw fail(`APPEND on a ${describe(list)} at byte ${at}`);
        list.push(item);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        const list = top();
        if (!Array.isArray(list)) throw fail(`APPENDS on a ${describe(list)} at byte ${at}`);
        list.push(...items);
        break;
      }
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        const set = top();
        if (!Array.isArray(set)) throw fail(`ADDITEMS on a ${describe(set)} at byte ${at}`);
        set.push(...items);
        break;
      }
      case 0x91: // FROZENSET
        push(popMark());
        break;
      case 0x73: {
        // SETITEM
        const value = pop();
        const key = pop();
        setItems(top(), [key, value]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x30: // POP
        pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        push(top());
        break;
      case 0x52: {
        // REDUCE
        const args = pop();
        const callable = pop();
        push(callGlobal(callable, Array.isArray(args) ? args : [args], fail, at));
        break;
      }
      case 0x81: {
        // NEWOBJ
        const args = pop();
        const cls = pop();
        push(callGlobal(cls, Array.isArray(args) ? args : [args], fail, at));
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop();
        const target = top();
        // OrderedDict state (state_dict `_metadata`) and inert objects keep their state; nothing runs.
        if (target instanceof PickledObject) target.state = state;
        break;
      }
      default:
        throw fail(
          `unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')} ('${String.fromCharCode(op)}') at byte ${at}`,
        );
    }
  }
}

/** The few callables a state_dict pickle names; everything else becomes an inert PickledObject. */
function callGlobal(callable: unknown, args: unknown[], fail: (problem: string) => FedcxrError, at: number): unknown {
  if (!(callable instanceof PickleGlobal)) throw fail(`REDUCE on a ${describe(callable)} at byte ${at}`);
  switch (callable.fullName) {
    case 'collections.OrderedDict':
    case 'builtins.dict':
    case '__builtin__.dict': {
      const dict = new Map<unknown, unknown>();
      const items = args[0];
      if (Array.isArray(items)) for (const pair of items) if (Array.isArray(pair)) dict.set(pair[0], pair[1]);
      return dict;
    }
    case 'torch._utils._rebuild_tensor_v2':
    case 'torch._utils._rebuild_tensor': {
      const [storage, offset, shape, stride] = args as [StorageRef, unknown, unknown, unknown];
      if (storage?.kind !== 'storage') throw fail(`tensor without a storage at byte ${at}`);
      if (!Array.isArray(shape) || !Array.isArray(stride) || shape.length !== stride.length) {
        throw fail(`tensor with malformed size/stride at byte ${at}`);
      }
      return new TensorRef(storage, Number(offset), shape.map(Number), stride.map(Number));
    }
    case 'torch._utils._rebuild_parameter':
    case 'torch._utils._rebuild_parameter_with_state':
      return args[0];
    case 'torch._tensor._rebuild_from_type_v2': {
      const [func, , innerArgs] = args as [unknown, unknown, unknown];
      return callGlobal(func, Array.isArray(innerArgs) ? innerArgs : [innerArgs], fail, at);
    }
    case '_codecs.encode':
      return Uint8Array.from(String(args[0]), (c) => c.charCodeAt(0));
    default:
      return new PickledObject(callable.fullName, args);
  }
}

function describe(value: unknown): string {
  if (value instanceof PickleGlobal) return value.fullName;
  if (value instanceof PickledObject) return value.className;
  if (value instanceof Map) return 'dict';
  if (Array.isArray(value)) return 'tuple/list';
  return typeof value;
}

// ---------------------------------------------------------------------------------------------------
// Zip reading (central directory, zip64, stored and deflated entries).

interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

function readZipDirectory(bytes: Uint8Array, fail: (problem: string) => FedcxrError): Map<string, ZipEntry> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let eocd = -1;
  for (let i = bytes.byteLength - 22; i >= Math.max(0, bytes.byteLength - 22 - 65535); i--) {
    if (view.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw fail('zip archive is truncated (no end-of-central-directory record)');
  let count = view.getUint16(eocd + 10, true);
  let directoryOffset = view.getUint32(eocd + 16, true);
  if ((count === 0xffff || directoryOffset === 0xffffffff) && eocd >= 20) {
    const locator = eocd - 20;
    if (view.getUint32(locator, true) === 0x07064b50) {
      const record = Number(view.getBigUint64(locator + 8, true));
      if (view.getUint32(record, true) !== 0x06064b50) throw fail('zip64 end-of-central-directory record missing');
      count = Number(view.getBigUint64(record + 32, true));
      directoryOffset = Number(view.getBigUint64(record + 48, true));
    }
  }
  const entries = new Map<string, ZipEntry>();
  let at = directoryOffset;
  const decoder = new TextDecoder();
  for (let n = 0; n < count; n++) {
    if (at + 46 > bytes.byteLength || view.getUint32(at, true) !== 0x02014b50) {
      throw fail(`zip central directory is corrupt at byte ${at}`);
    }
    const method = view.getUint16(at + 10, true);
    let compressedSize = view.getUint32(at + 20, true);
    let size = view.getUint32(at + 24, true);
    const nameLength = view.getUint16(at + 28, true);
    const extraLength = view.getUint16(at + 30, true);
    const commentLength = view.getUint16(at + 32, true);
    let localHeaderOffset = view.getUint32(at + 42, true);
    const name = decoder.decode(bytes.subarray(at + 46, at + 46 + nameLength));
    // zip64 extended information: 64-bit values for the fields saturated at 0xFFFFFFFF, in this order.
    let extra = at + 46 + nameLength;
    const extraEnd = extra + extraLength;
    while (extra + 4 <= extraEnd) {
      const id = view.getUint16(extra, true);
      const length = view.getUint16(extra + 2, true);
      if (id === 0x0001) {
        let field = extra + 4;
        if (size === 0xffffffff) {
          size = Number(view.getBigUint64(field, true));
          field += 8;
        }
        if (compressedSize === 0xffffffff) {
          compressedSize = Number(view.getBigUint64(field, true));
          field += 8;
        }
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = Number(view.getBigUint64(field, true));
      }
      extra += 4 + length;
    }
    entries.set(name, { name, method, compressedSize, size, localHeaderOffset });
    at = extraEnd + commentLength;
  }
  return entries;
}

function readZipEntry(bytes: Uint8Array, entry: ZipEntry, fail: (problem: string) => FedcxrError): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const header = entry.localHeaderOffset;
  if (header + 30 > bytes.byteLength || view.getUint32(header, true) !== 0x04034b50) {
    throw fail(`zip entry ${entry.name}: local header is corrupt`);
  }
  const start = header + 30 + view.getUint16(header + 26, true) + view.getUint16(header + 28, true);
  if (start + entry.compressedSize > bytes.byteLength) throw fail(`zip entry ${entry.name} is truncated`);
  const raw = bytes.subarray(start, start + entry.compressedSize);
  if (entry.method === 0) return raw;
  if (entry.method === 8) {
    try {
      return new Uint8Array(inflateRawSync(raw));
    } catch (error) {
      throw fail(`zip entry ${entry.name}: cannot inflate: ${(error as Error).message}`);
    }
  }
  throw fail(`zip entry ${entry.name} uses compression method ${entry.method} (only stored and deflate are supported)`);
}
