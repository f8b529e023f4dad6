/**
 * A SIMD kernel function (assembled by ./wasm-assembler.ts, instantiated by ./wasm-thread-pool.ts):
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
import {
  addTo,
  type FunctionSpec,
  get,
  I32,
  i32,
  memarg,
  op,
  set,
  simd,
  simdCode,
  tee,
  V128,
  whileBelow,
} from './wasm-assembler.js';

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

/** `for (BYTE = 0; BYTE < ROW_BYTES; BYTE += 16) body` */
const overLanes = (body: number[]) => [
  ...i32(0),
  ...set(BYTE),
  ...whileBelow(BYTE, ROW_BYTES, [...body, ...addTo(BYTE, i32(16))]),
];
const laneAt = (base: number) => [...get(base), ...get(BYTE), op.i32Add];
/** base + index * 4 */
const wordAt = (base: number, index: number) => [...get(base), ...get(index), ...i32(2), op.i32Shl, op.i32Add];

const code = [
  ...get(CHANNELS),
  ...i32(2),
  op.i32Shl,
  ...set(ROW_BYTES),
  ...whileBelow(ROW, ROW_END, [
    // OUT_ROW = out + row * rowBytes; zero it.
    ...get(OUT),
    ...get(ROW),
    ...get(ROW_BYTES),
    op.i32Mul,
    op.i32Add,
    ...set(OUT_ROW),
    ...overLanes([
      ...laneAt(OUT_ROW),
      ...simd(simdCode.v128Const, ...new Array(16).fill(0)),
      ...simd(simdCode.v128Store, ...memarg(2)),
    ]),
    // ENTRY = rowOffsets[row], ENTRY_END = rowOffsets[row + 1]
    ...wordAt(ROW_OFFSETS, ROW),
    ...tee(ENTRY),
    op.i32Load,
    ...memarg(2),
    ...get(ENTRY),
    op.i32Load,
    ...memarg(2, 4),
    ...set(ENTRY_END),
    ...set(ENTRY),
    ...whileBelow(ENTRY, ENTRY_END, [
      // WEIGHT = splat(values[entry]); SOURCE_ROW = dense + columns[entry] * rowBytes
      ...wordAt(VALUES, ENTRY),
      op.f32Load,
      ...memarg(2),
      ...simd(simdCode.f32x4Splat),
      ...set(WEIGHT),
      ...get(DENSE),
      ...wordAt(COLUMNS, ENTRY),
      op.i32Load,
      ...memarg(2),
      ...get(ROW_BYTES),
      op.i32Mul,
      op.i32Add,
      ...set(SOURCE_ROW),
      // out[lane] = out[lane] + weight * source[lane]
      ...overLanes([
        ...laneAt(OUT_ROW),
        ...laneAt(OUT_ROW),
        ...simd(simdCode.v128Load, ...memarg(2)),
        ...get(WEIGHT),
        ...laneAt(SOURCE_ROW),
        ...simd(simdCode.v128Load, ...memarg(2)),
        ...simd(simdCode.f32x4Mul),
        ...simd(simdCode.f32x4Add),
        ...simd(simdCode.v128Store, ...memarg(2)),
      ]),
      ...addTo(ENTRY, i32(1)),
    ]),
    ...addTo(ROW, i32(1)),
  ]),
];

/** The `csr` function, for ./wasm-thread-pool.ts's kernel module. */
export const csrFunction: FunctionSpec = {
  name: 'csr',
  params: 8,
  locals: [
    [6, I32],
    [1, V128],
  ],
  code,
};

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
