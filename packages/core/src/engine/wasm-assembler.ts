/**
 * Just enough of the WebAssembly binary format (core spec §5, SIMD and relaxed-SIMD opcodes) to assemble the
 * engine's few hand-written kernels at run time, so no toolchain is needed at install time. Each kernel module
 * imports one memory (tfjs' wasm heap) as `env.memory` and exports its functions.
 */

export const I32 = 0x7f;
export const V128 = 0x7b;

export const op = {
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  end: 0x0b,
  br: 0x0c,
  brIf: 0x0d,
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  i32Load: 0x28,
  f32Load: 0x2a,
  f32Store: 0x38,
  i32Const: 0x41,
  i32Eqz: 0x45,
  i32GeU: 0x4f,
  i32Add: 0x6a,
  i32Sub: 0x6b,
  i32Mul: 0x6c,
  i32Shl: 0x74,
} as const;

const SIMD_PREFIX = 0xfd;
/** SIMD opcodes (LEB128 after the 0xfd prefix). */
export const simdCode = {
  v128Load: 0x00,
  v128Load32Splat: 0x09,
  v128Store: 0x0b,
  v128Const: 0x0c,
  f32x4Splat: 0x13,
  f32x4Add: 0xe4,
  f32x4Mul: 0xe6,
  f32x4RelaxedMadd: 0x105,
} as const;

export const VOID_BLOCK = 0x40;

export function uleb(value: number): number[] {
  const bytes: number[] = [];
  let v = value >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    bytes.push(byte);
  } while (v !== 0);
  return bytes;
}

export function sleb(value: number): number[] {
  const bytes: number[] = [];
  let v = value | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0)) {
      bytes.push(byte);
      return bytes;
    }
    bytes.push(byte | 0x80);
  }
}

export const get = (local: number) => [op.localGet, ...uleb(local)];
export const set = (local: number) => [op.localSet, ...uleb(local)];
export const tee = (local: number) => [op.localTee, ...uleb(local)];
export const i32 = (n: number) => [op.i32Const, ...sleb(n)];
/** memarg: alignment exponent and a constant byte offset. */
export const memarg = (alignLog2: number, offset = 0) => [alignLog2, ...uleb(offset)];
export const simd = (code: number, ...immediate: number[]) => [SIMD_PREFIX, ...uleb(code), ...immediate];
/** local += delta (i32). */
export const addTo = (local: number, delta: number[]) => [...get(local), ...delta, op.i32Add, ...set(local)];

/** `while (counter < limit) { body }` with counter and limit i32 locals (unsigned compare). */
export function whileBelow(counter: number, limit: number, body: number[]): number[] {
  return [
    op.block,
    VOID_BLOCK,
    op.loop,
    VOID_BLOCK,
    ...get(counter),
    ...get(limit),
    op.i32GeU,
    op.brIf,
    1,
    ...body,
    op.br,
    0,
    op.end,
    op.end,
  ];
}

export interface FunctionSpec {
  name: string;
  params: number;
  /** Extra locals by type, in order: [count, type] pairs. */
  locals: [number, number][];
  code: number[];
}

const text = (s: string) => [...uleb(s.length), ...new TextEncoder().encode(s)];
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];

/**
 * A module importing `env.memory` (shared: required to run on tfjs' threaded heap; a non-shared heap needs a
 * non-shared import) and exporting `functions`, each taking i32 parameters and returning nothing.
 */
export function assembleModule(functions: FunctionSpec[], shared: boolean): Uint8Array<ArrayBuffer> {
  const types = functions.map((f) => [0x60, ...uleb(f.params), ...new Array(f.params).fill(I32), 0]);
  const limits = shared ? [0x03, ...uleb(1), ...uleb(65536)] : [0x00, ...uleb(1)];
  const bodies = functions.map((f) => {
    const locals = [...uleb(f.locals.length), ...f.locals.flatMap(([count, type]) => [...uleb(count), type])];
    const body = [...locals, ...f.code, op.end];
    return [...uleb(body.length), ...body];
  });
  const bytes = [
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, [...uleb(types.length), ...types.flat()]),
    ...section(2, [1, ...text('env'), ...text('memory'), 0x02, ...limits]),
    ...section(3, [...uleb(functions.length), ...functions.flatMap((_, i) => uleb(i))]),
    ...section(7, [...uleb(functions.length), ...functions.flatMap((f, i) => [...text(f.name), 0x00, ...uleb(i)])]),
    ...section(10, [...uleb(functions.length), ...bodies.flat()]),
  ];
  return new Uint8Array(bytes);
}
