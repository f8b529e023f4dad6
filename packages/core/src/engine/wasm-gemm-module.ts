/**
 * The matrix-product micro-kernels of ./wasm-gemm.ts, assembled by ./wasm-assembler.ts:
 *
 *   gemm4(a, aRowStride, aKStride, b, panelStride, c, ldc, kc, panels, accumulate)
 *   gemm1(…same…)
 *   pack8 / pack8t(source, target, k, n, p0, p1)
 *
 * compute a 4-row (gemm4) or 1-row (gemm1) strip of C = A·B over `panels` consecutive 8-column panels of B:
 * C[i, 8p + j] (+)= Σ_k A[i, k] · Bp[k, j] for k < kc. A is read with any strides (bytes between rows and
 * between k; so a transposed A costs nothing); B is packed, each panel [K][8] contiguous, `panelStride` bytes
 * apart; C is row-major with `ldc` bytes per row. `accumulate` ≠ 0 adds to C instead of overwriting it.
 *
 * Each k step is one relaxed fused multiply-add per accumulator (f32x4.relaxed_madd: an FMA where the CPU has
 * one, as PyTorch's kernels use), 8 columns × 4 rows held in 8 registers: twice XNNPACK's wasm build, which
 * has only SIMD128 multiply and add.
 */

import type { FunctionSpec } from './wasm-assembler.js';
import {
  addTo,
  get,
  I32,
  i32,
  memarg,
  op,
  set,
  simd,
  simdCode,
  V128,
  VOID_BLOCK,
  whileBelow,
} from './wasm-assembler.js';

const A = 0;
const A_ROW_STRIDE = 1;
const A_K_STRIDE = 2;
const B = 3;
const PANEL_STRIDE = 4;
const C = 5;
const LDC = 6;
const KC = 7;
const PANELS = 8;
const ACCUMULATE = 9;
const PARAMS = 10;

function gemmStrip(name: string, rows: number): FunctionSpec {
  // i32 locals, then v128 locals.
  let next = PARAMS;
  const PANEL = next++;
  const K = next++;
  const PB = next++;
  const PC = next++;
  const BB = next++; // B of the current panel
  const PA = Array.from({ length: rows }, () => next++);
  const i32Count = next - PARAMS;
  const ACC = Array.from({ length: rows }, () => [next++, next++]);
  const B0 = next++;
  const B1 = next++;
  const AV = next++;
  const v128Count = next - PARAMS - i32Count;

  const zero = simd(simdCode.v128Const, ...new Array(16).fill(0));
  const code = [
    ...i32(0),
    ...set(PANEL),
    ...get(B),
    ...set(BB),
    ...get(C),
    ...set(PC),
    ...whileBelow(PANEL, PANELS, [
      ...ACC.flatMap(([left, right]) => [...zero, ...set(left), ...zero, ...set(right)]),
      ...PA.flatMap((pa, r) => [...get(A), ...get(A_ROW_STRIDE), ...i32(r), op.i32Mul, op.i32Add, ...set(pa)]),
      ...get(BB),
      ...set(PB),
      ...i32(0),
      ...set(K),
      ...whileBelow(K, KC, [
        ...get(PB),
        ...simd(simdCode.v128Load, ...memarg(4)),
        ...set(B0),
        ...get(PB),
        ...simd(simdCode.v128Load, ...memarg(4, 16)),
        ...set(B1),
        ...PA.flatMap((pa, r) => [
          ...get(pa),
          ...simd(simdCode.v128Load32Splat, ...memarg(2)),
          ...set(AV),
          ...get(AV),
          ...get(B0),
          ...get(ACC[r][0]),
          ...simd(simdCode.f32x4RelaxedMadd),
          ...set(ACC[r][0]),
          ...get(AV),
          ...get(B1),
          ...get(ACC[r][1]),
          ...simd(simdCode.f32x4RelaxedMadd),
          ...set(ACC[r][1]),
          ...addTo(pa, get(A_K_STRIDE)),
        ]),
        ...addTo(PB, i32(32)),
        ...addTo(K, i32(1)),
      ]),
      // Store the strip's 8 columns of each row (adding what C holds when accumulating).
      ...ACC.flatMap(([left, right], r) => {
        const rowAddress = [...get(PC), ...get(LDC), ...i32(r), op.i32Mul, op.i32Add];
        const store = (acc: number, offset: number) => [
          ...get(ACCUMULATE),
          op.if,
          VOID_BLOCK,
          ...rowAddress,
          ...simd(simdCode.v128Load, ...memarg(2, offset)),
          ...get(acc),
          ...simd(simdCode.f32x4Add),
          ...set(acc),
          op.end,
          ...rowAddress,
          ...get(acc),
          ...simd(simdCode.v128Store, ...memarg(2, offset)),
        ];
        return [...store(left, 0), ...store(right, 16)];
      }),
      ...addTo(PC, i32(32)),
      ...addTo(BB, get(PANEL_STRIDE)),
      ...addTo(PANEL, i32(1)),
    ]),
  ];
  return {
    name,
    params: PARAMS,
    locals: [
      [i32Count, I32],
      [v128Count, V128],
    ],
    code,
  };
}

/** Local `into` = local `count` · 4: the bytes of `count` floats. */
const floatBytes = (count: number, into: number) => [...get(count), ...i32(4), op.i32Mul, ...set(into)];

/** Local `into` = base + p · k · 32: where packed panel p starts (each panel is [k][8] floats). */
const panelStart = (base: number, p: number, k: number, into: number) => [
  ...get(base),
  ...get(p),
  ...get(k),
  op.i32Mul,
  ...i32(32),
  op.i32Mul,
  op.i32Add,
  ...set(into),
];

/**
 * pack8(source, target, k, n, p0, p1): panels [p0, p1) of a row-major B [k, n] into the micro-kernels' layout
 * (panel p is [k][8] contiguous at target + p·k·32 bytes): two 16-byte copies per row and panel.
 */
function packRows(): FunctionSpec {
  const [SOURCE, TARGET, KS, N, P0, P1] = [0, 1, 2, 3, 4, 5];
  const [ROW_BYTES, SRC, DST, ROW] = [6, 7, 8, 9];
  const copy = (offset: number) => [
    ...get(DST),
    ...get(SRC),
    ...simd(simdCode.v128Load, ...memarg(2, offset)),
    ...simd(simdCode.v128Store, ...memarg(2, offset)),
  ];
  return {
    name: 'pack8',
    params: 6,
    locals: [[4, I32]],
    code: [
      ...floatBytes(N, ROW_BYTES),
      ...whileBelow(P0, P1, [
        ...get(SOURCE),
        ...get(P0),
        ...i32(32),
        op.i32Mul,
        op.i32Add,
        ...set(SRC),
        ...panelStart(TARGET, P0, KS, DST),
        ...i32(0),
        ...set(ROW),
        ...whileBelow(ROW, KS, [
          ...copy(0),
          ...copy(16),
          ...addTo(SRC, get(ROW_BYTES)),
          ...addTo(DST, i32(32)),
          ...addTo(ROW, i32(1)),
        ]),
        ...addTo(P0, i32(1)),
      ]),
    ],
  };
}

/**
 * pack8t(source, target, k, n, p0, p1): the same panels from Bᵀ stored row-major ([n, k]): panel p row r
 * gathers source[8p + j][r] for j < 8 (eight strided scalar copies; the columns' pointers step 4 bytes a row).
 */
function packColumns(): FunctionSpec {
  const [SOURCE, TARGET, KS, , P0, P1] = [0, 1, 2, 3, 4, 5];
  const [K_BYTES, DST, ROW] = [6, 7, 8];
  const COLUMN = [9, 10, 11, 12, 13, 14, 15, 16];
  return {
    name: 'pack8t',
    params: 6,
    locals: [[3 + COLUMN.length, I32]],
    code: [
      ...floatBytes(KS, K_BYTES),
      ...whileBelow(P0, P1, [
        ...COLUMN.flatMap((column, j) => [
          ...get(SOURCE),
          ...get(P0),
          ...i32(8),
          op.i32Mul,
          ...i32(j),
          op.i32Add,
          ...get(K_BYTES),
          op.i32Mul,
          op.i32Add,
          ...set(column),
        ]),
        ...panelStart(TARGET, P0, KS, DST),
        ...i32(0),
        ...set(ROW),
        ...whileBelow(ROW, KS, [
          ...COLUMN.flatMap((column, j) => [
            ...get(DST),
            ...get(column),
            op.f32Load,
            ...memarg(2),
            op.f32Store,
            ...memarg(2, 4 * j),
            ...addTo(column, i32(4)),
          ]),
          ...addTo(DST, i32(32)),
          ...addTo(ROW, i32(1)),
        ]),
        ...addTo(P0, i32(1)),
      ]),
    ],
  };
}

export const gemmFunctions: FunctionSpec[] = [gemmStrip('gemm4', 4), gemmStrip('gemm1', 1), packRows(), packColumns()];

/** pack8 / pack8t: (source, target, k, n, p0, p1), byte pointers; see packRows and packColumns. */
export type PackPanels = (source: number, target: number, k: number, n: number, p0: number, p1: number) => void;

export type GemmStrip = (
  a: number,
  aRowStride: number,
  aKStride: number,
  b: number,
  panelStride: number,
  c: number,
  ldc: number,
  kc: number,
  panels: number,
  accumulate: number,
) => void;
