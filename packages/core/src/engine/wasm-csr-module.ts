/**
 * A WebAssembly module with one SIMD function, assembled here byte by byte (no toolchain at install time):
 *
 *   csr(rowOffsets, columns, values, dense, out, rowBegin, rowEnd, channels)
 *
 * writes rows [rowBegin, rowEnd) of `sparse · dense`, the sparse matrix in CSR form (int32 rowOffsets with
 * one entry past the last row, int32 columns, float32 values) and dense [R, channels] float32, row-major;
 * every argument but the last three is a byte offset into the imported memory. `channels` must be a multiple
 * of 4 (one f32x4 lane group). It imports the memory it works on, so it runs directly on the tfjs wasm heap:
 * a shared memory (tfjs' threaded build) lets several threads run it on disjoint row ranges at once.
 *
 * Each output row is accumulated entry by entry in the CSR order, in float32 (mul then add, no fused
 * multiply-add): the same order and rounding as a scalar loop over the entries.
 */

// Opcodes used below (WebAssembly core spec §5.4; SIMD opcodes follow the 0xfd prefix as LEB128).
const I32 = 0x7f;
const V128 = 0x7b;
const op = {
  block: 0x02,
  loop: 0x03,
  end: 0x0b,
  br: 0x0c,
  brIf: 0x0d,
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  i32Load: 0x28,
  f32Load: 0x2a,
  i32Const: 0x41,
  i32GeU: 0x4f,
  i32Add: 0x6a,
  i32Mul: 0x6c,
  i32Shl: 0x74,
  simd: 0xfd,
} as const;
const simd = {
  v128Load: [0x00],
  v128Store: [0x0b],
  v128Const: [0x0c],
  f32x4Splat: [0x13],
  f32x4Add: [0xe4, 0x01],
  f32x4Mul: [0xe6, 0x01],
};
const VOID_BLOCK = 0x40;

function uleb(value: number): number[] {
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

function sleb(value: number): number[] {
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

const text = (s: string) => [...uleb(s.length), ...new TextEncoder().encode(s)];
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
/** memarg: alignment exponent, then offset 0. */
const mem = (alignLog2: number) => [alignLog2, 0];

// Parameters.
const ROW_OFFSETS = 0;
const COLUMNS = 1;
const VALUES = 2;
const DENSE = 3;
const OUT = 4;
const ROW = 5;
const ROW_END = 6;
const CHANNELS = 7;
// Locals.
const ENTRY = 8;
const ENTRY_END = 9;
const OUT_ROW = 10;
const SOURCE_ROW = 11;
const BYTE = 12;
const ROW_BYTES = 13;
const WEIGHT = 14;

const get = (i: number) => [op.localGet, i];
const set = (i: number) => [op.localSet, i];
const constant = (n: number) => [op.i32Const, ...sleb(n)];
const simdOp = (code: number[], ...immediate: number[]) => [op.simd, ...code, ...immediate];

/** `for (BYTE = 0; BYTE < ROW_BYTES; BYTE += 16) body` */
function overLanes(body: number[]): number[] {
  return [
    ...constant(0),
    ...set(BYTE),
    op.block,
    VOID_BLOCK,
    op.loop,
    VOID_BLOCK,
    ...get(BYTE),
    ...get(ROW_BYTES),
    op.i32GeU,
    op.brIf,
    1,
    ...body,
    ...get(BYTE),
    ...constant(16),
    op.i32Add,
    ...set(BYTE),
    op.br,
    0,
    op.end,
    op.end,
  ];
}

const laneAt = (base: number) => [...get(base), ...get(BYTE), op.i32Add];

function csrBody(): number[] {
  const code = [
    // ROW_BYTES = channels * 4
    ...get(CHANNELS),
    ...constant(2),
    op.i32Shl,
    ...set(ROW_BYTES),
    op.block,
    VOID_BLOCK,
    op.loop,
    VOID_BLOCK,
    ...get(ROW),
    ...get(ROW_END),
    op.i32GeU,
    op.brIf,
    1,
    // OUT_ROW = out + row * rowBytes; zero it.
    ...get(OUT),
    ...get(ROW),
    ...get(ROW_BYTES),
    op.i32Mul,
    op.i32Add,
    ...set(OUT_ROW),
    ...overLanes([
      ...laneAt(OUT_ROW),
      ...simdOp(simd.v128Const, ...new Array(16).fill(0)),
      ...simdOp(simd.v128Store, ...mem(2)),
    ]),
    // ENTRY = rowOffsets[row], ENTRY_END = rowOffsets[row + 1]
    ...get(ROW_OFFSETS),
    ...get(ROW),
    ...constant(2),
    op.i32Shl,
    op.i32Add,
    op.localTee,
    ENTRY,
    op.i32Load,
    ...mem(2),
    ...get(ENTRY),
    op.i32Load,
    2,
    4, // offset 4: the next row's offset
    ...set(ENTRY_END),
    ...set(ENTRY),
    op.block,
    VOID_BLOCK,
    op.loop,
    VOID_BLOCK,
    ...get(ENTRY),
    ...get(ENTRY_END),
    op.i32GeU,
    op.brIf,
    1,
    // WEIGHT = splat(values[entry]); SOURCE_ROW = dense + columns[entry] * rowBytes
    ...get(VALUES),
    ...get(ENTRY),
    ...constant(2),
    op.i32Shl,
    op.i32Add,
    op.f32Load,
    ...mem(2),
    ...simdOp(simd.f32x4Splat),
    ...set(WEIGHT),
    ...get(DENSE),
    ...get(COLUMNS),
    ...get(ENTRY),
    ...constant(2),
    op.i32Shl,
    op.i32Add,
    op.i32Load,
    ...mem(2),
    ...get(ROW_BYTES),
    op.i32Mul,
    op.i32Add,
    ...set(SOURCE_ROW),
    // out[lane] = out[lane] + weight * source[lane]
    ...overLanes([
      ...laneAt(OUT_ROW),
      ...laneAt(OUT_ROW),
      ...simdOp(simd.v128Load, ...mem(2)),
      ...get(WEIGHT),
      ...laneAt(SOURCE_ROW),
      ...simdOp(simd.v128Load, ...mem(2)),
      ...simdOp(simd.f32x4Mul),
      ...simdOp(simd.f32x4Add),
      ...simdOp(simd.v128Store, ...mem(2)),
    ]),
    ...get(ENTRY),
    ...constant(1),
    op.i32Add,
    ...set(ENTRY),
    op.br,
    0,
    op.end,
    op.end,
    ...get(ROW),
    ...constant(1),
    op.i32Add,
    ...set(ROW),
    op.br,
    0,
    op.end,
    op.end,
    op.end,
  ];
  // Locals: 6 × i32 (ENTRY … ROW_BYTES), 1 × v128 (WEIGHT).
  const locals = [2, 6, I32, 1, V128];
  const body = [...locals, ...code];
  return [...uleb(body.length), ...body];
}

/**
 * The module's bytes. `shared`: import a shared memory (required to run on tfjs' threaded heap, refused by a
 * non-shared one and vice versa).
 */
export function csrModuleBytes(shared: boolean): Uint8Array<ArrayBuffer> {
  const params = new Array(8).fill(I32);
  const limits = shared ? [0x03, ...uleb(1), ...uleb(65536)] : [0x00, ...uleb(1)];
  const bytes = [
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, [1, 0x60, params.length, ...params, 0]),
    ...section(2, [1, ...text('env'), ...text('memory'), 0x02, ...limits]),
    ...section(3, [1, 0]),
    ...section(7, [1, ...text('csr'), 0x00, 0]),
    ...section(10, [1, ...csrBody()]),
  ];
  return new Uint8Array(bytes);
}

export type CsrFunction = (
  rowOffsets: number,
  columns: number,
  values: number,
  dense: number,
  out: number,
  rowBegin: number,
  rowEnd: number,
  channels: number,
) => void;
