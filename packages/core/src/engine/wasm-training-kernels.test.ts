import { beforeAll, describe, expect, it } from 'vitest';
import { type Tensor, type Tensor4D, tf } from '../tf.js';
import { CSR_MATMUL } from './kernel-names.js';
import { loadWasmBackend } from './wasm.js';
import { microKernelConv } from './wasm-conv.js';
import { onMicroKernels } from './wasm-gemm.js';
import { heapPointer, kernelPool, type WasmHeapBackend } from './wasm-thread-pool.js';
import { registerWasmTrainingKernels } from './wasm-training-kernels.js';

/** Deterministic pseudo-random values in [-1, 1) (same on both backends). */
function values(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let state = seed >>> 0;
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state / 2 ** 31 - 1;
  }
  return out;
}

/** max |a − b| / max |b|: the gradient's error relative to its scale. */
function relativeError(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

async function onBackend<T>(name: string, body: () => T): Promise<T> {
  await tf.setBackend(name);
  return body();
}

describe('wasm training kernels', () => {
  beforeAll(async () => {
    await loadWasmBackend(2);
    registerWasmTrainingKernels();
  });

  type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];
  const convCases: { k: number; s: number; pad: Pad; h: number; ci: number; co: number }[] = [
    { k: 3, s: 3, pad: 'valid', h: 11, ci: 3, co: 4 },
    { k: 2, s: 3, pad: 'valid', h: 10, ci: 2, co: 3 },
    { k: 4, s: 2, pad: 'same', h: 9, ci: 3, co: 5 },
    { k: 5, s: 2, pad: 'same', h: 12, ci: 2, co: 3 },
    {
      k: 3,
      s: 2,
      pad: [
        [0, 0],
        [3, 1],
        [0, 4],
        [0, 0],
      ],
      h: 7,
      ci: 2,
      co: 3,
    },
    {
      k: 3,
      s: 1,
      pad: [
        [0, 0],
        [4, 0],
        [1, 3],
        [0, 0],
      ],
      h: 6,
      ci: 2,
      co: 3,
    },
    { k: 3, s: 1, pad: 'same', h: 9, ci: 5, co: 6 },
    { k: 3, s: 2, pad: 'same', h: 9, ci: 4, co: 7 },
    { k: 3, s: 2, pad: 'valid', h: 10, ci: 3, co: 4 },
    { k: 1, s: 2, pad: 'valid', h: 8, ci: 6, co: 5 },
    { k: 1, s: 2, pad: 'same', h: 7, ci: 4, co: 9 },
    { k: 1, s: 3, pad: 'valid', h: 10, ci: 3, co: 2 },
    { k: 1, s: 1, pad: 'same', h: 5, ci: 8, co: 3 },
    { k: 1, s: 1, pad: 'valid', h: 6, ci: 3, co: 7 },
    { k: 1, s: 1, pad: 'valid', h: 4, ci: 66, co: 130 },
    { k: 1, s: 1, pad: 'valid', h: 4, ci: 140, co: 70 },
    { k: 3, s: 1, pad: 'same', h: 5, ci: 3, co: 70 },
    { k: 3, s: 2, pad: 'same', h: 6, ci: 2, co: 65 },
    { k: 7, s: 2, pad: 'same', h: 16, ci: 3, co: 4 },
    { k: 2, s: 2, pad: 'valid', h: 7, ci: 2, co: 3 },
    // Large enough for the micro-kernels: per-tap filter-gradient products, convolutions for dx.
    { k: 3, s: 1, pad: 'same', h: 24, ci: 48, co: 48 },
    { k: 3, s: 2, pad: 'same', h: 33, ci: 32, co: 64 },
    { k: 1, s: 1, pad: 'valid', h: 30, ci: 64, co: 96 },
  ];

  for (const c of convCases) {
    it(`conv ${c.k}x${c.k} stride ${c.s} ${JSON.stringify(c.pad)}: dx and dW equal the cpu backend's`, async () => {
      const xShape: [number, number, number, number] = [2, c.h, c.h + 1, c.ci];
      const wShape: [number, number, number, number] = [c.k, c.k, c.ci, c.co];
      const xValues = values(
        xShape.reduce((a, b) => a * b),
        1,
      );
      const wValues = values(
        wShape.reduce((a, b) => a * b),
        2,
      );
      const gradients = () =>
        tf.tidy(() => {
          const x = tf.tensor4d(xValues, xShape);
          const w = tf.tensor4d(wValues, wShape);
          const loss = (xi: Tensor, wi: Tensor) => {
            const y = tf.conv2d(xi as Tensor4D, wi as Tensor4D, c.s, c.pad);
            return tf.sum(tf.mul(y, tf.sin(tf.range(0, y.size).reshape(y.shape))));
          };
          return tf
            .grads(loss)([x, w])
            .map((g) => g.dataSync() as Float32Array);
        });
      const [cpuDx, cpuDw] = await onBackend('cpu', gradients);
      const [wasmDx, wasmDw] = await onBackend('wasm', gradients);
      expect(relativeError(wasmDx, cpuDx)).toBeLessThan(1e-5);
      expect(relativeError(wasmDw, cpuDw)).toBeLessThan(1e-5);
    });
  }

  it('Tile copies like the cpu backend for every rank, dtype and repetition pattern', async () => {
    const cases: { shape: number[]; reps: number[]; dtype: 'float32' | 'int32' | 'bool' }[] = [
      { shape: [1, 1, 1, 5], reps: [2, 3, 4, 1], dtype: 'float32' },
      { shape: [2, 3], reps: [3, 2], dtype: 'int32' },
      { shape: [4], reps: [3], dtype: 'float32' },
      { shape: [2, 1, 3], reps: [1, 4, 2], dtype: 'bool' },
      { shape: [3, 2, 2], reps: [2, 1, 1], dtype: 'float32' },
      { shape: [2, 3], reps: [1, 1], dtype: 'float32' },
      { shape: [0, 3], reps: [2, 2], dtype: 'float32' },
    ];
    for (const { shape, reps, dtype } of cases) {
      const size = shape.reduce((a, b) => a * b, 1);
      const data = Array.from(values(size, size + 5), (v) => (dtype === 'float32' ? v : Math.round(v * 5)));
      const run = () => tf.tidy(() => Array.from(tf.tile(tf.tensor(data, shape, dtype), reps).dataSync()));
      const cpu = await onBackend('cpu', run);
      const wasm = await onBackend('wasm', run);
      expect(wasm, `${shape} × ${reps}`).toEqual(cpu);
    }
  });

  it('Sum and Mean over leading axes (and any other axes) match the cpu backend', async () => {
    const shape = [3, 4, 5, 6];
    const data = values(3 * 4 * 5 * 6, 77);
    const cases: { axis: number | number[]; keepDims: boolean }[] = [
      { axis: [0, 1, 2], keepDims: false },
      { axis: [2, 1, 0], keepDims: true },
      { axis: 0, keepDims: false },
      { axis: [-4, -3], keepDims: true },
      { axis: [1, 2], keepDims: false },
      { axis: [0, 1, 2, 3], keepDims: false },
    ];
    for (const { axis, keepDims } of cases) {
      const run = () =>
        tf.tidy(() => {
          const x = tf.tensor(data, shape);
          const sum = tf.sum(x, axis, keepDims);
          const mean = tf.mean(x, axis, keepDims);
          return { shape: sum.shape, sum: sum.dataSync() as Float32Array, mean: mean.dataSync() as Float32Array };
        });
      const cpu = await onBackend('cpu', run);
      const wasm = await onBackend('wasm', run);
      expect(wasm.shape, `axis ${axis}`).toEqual(cpu.shape);
      expect(relativeError(wasm.sum, cpu.sum), `sum over ${axis}`).toBeLessThan(1e-6);
      expect(relativeError(wasm.mean, cpu.mean), `mean over ${axis}`).toBeLessThan(1e-6);
    }
  });

  it('a conv/bn/relu/maxpool/residual net has the same gradients on wasm as on cpu (1e-4 relative)', async () => {
    const shapes: Record<string, number[]> = {
      conv1: [3, 3, 3, 8],
      gamma: [8],
      beta: [8],
      conv2: [3, 3, 8, 8],
      down: [1, 1, 8, 8],
      head: [8, 4],
    };
    const init = Object.fromEntries(
      Object.entries(shapes).map(([name, shape], i) => [
        name,
        values(
          shape.reduce((a, b) => a * b),
          10 + i,
        ),
      ]),
    );
    const xValues = values(2 * 16 * 16 * 3, 3);
    const labels = [1, 3];
    const run = () =>
      tf.tidy(() => {
        const params = Object.fromEntries(
          Object.entries(shapes).map(([name, shape]) => [name, tf.tensor(init[name], shape)]),
        );
        const x = tf.tensor4d(xValues, [2, 16, 16, 3]);
        const names = Object.keys(shapes);
        const loss = (...tensors: Tensor[]) => {
          const p = Object.fromEntries(names.map((name, i) => [name, tensors[i]]));
          let h: Tensor = tf.conv2d(x, p.conv1 as Tensor4D, 1, 'same');
          const { mean, variance } = tf.moments(h, [0, 1, 2]);
          h = tf.batchNorm(h, mean, variance, p.beta, p.gamma, 1e-5);
          h = tf.relu(h);
          h = tf.maxPool(h as Tensor4D, 3, 2, 'same');
          const branch = tf.relu(tf.conv2d(h as Tensor4D, p.conv2 as Tensor4D, 1, 'same'));
          const shortcut = tf.conv2d(h as Tensor4D, p.down as Tensor4D, 1, 'valid');
          const pooled = tf.mean(tf.add(branch, shortcut), [1, 2]);
          const logits = tf.matMul(pooled, p.head);
          // gather's gradient is UnsortedSegmentSum: exercises the cpu-fallback bridge too.
          const picked = tf.gather(tf.reshape(logits, [-1]), tf.tensor1d([labels[0], 4 + labels[1]], 'int32'));
          return tf.sub(tf.mean(tf.logSumExp(logits, 1)), tf.mean(picked));
        };
        const grads = tf.grads(loss)(names.map((name) => params[name]));
        return grads.map((g) => g.dataSync() as Float32Array);
      });
    const cpu = await onBackend('cpu', run);
    const wasm = await onBackend('wasm', run);
    expect(wasm.length).toBe(cpu.length);
    for (let i = 0; i < cpu.length; i++) expect(relativeError(wasm[i], cpu[i])).toBeLessThan(1e-4);
  });

  it('CSR_MATMUL equals the scalar float32 sums entry by entry, on both threads and for any channel count', async () => {
    await tf.setBackend('wasm');
    // Enough entries for the threaded split (≥ 2^14), rows with no entries, repeated columns.
    for (const [rows, denseRows, channels] of [
      [3000, 700, 256],
      [50, 9, 6],
    ]) {
      const counts = Array.from({ length: rows }, (_, r) => (r % 7 === 3 ? 0 : 1 + ((r * 13) % 16)));
      const rowOffsets = new Int32Array(rows + 1);
      counts.forEach((c, r) => {
        rowOffsets[r + 1] = rowOffsets[r] + c;
      });
      const nnz = rowOffsets[rows];
      const columns = Int32Array.from({ length: nnz }, (_, e) => (e * 7919) % denseRows);
      const weights = values(nnz, 5);
      const dense = values(denseRows * channels, 9);
      const expected = new Float32Array(rows * channels);
      for (let r = 0; r < rows; r++) {
        for (let e = rowOffsets[r]; e < rowOffsets[r + 1]; e++) {
          for (let c = 0; c < channels; c++) {
            const at = r * channels + c;
            expected[at] = Math.fround(expected[at] + Math.fround(weights[e] * dense[columns[e] * channels + c]));
          }
        }
      }
      const out = tf.engine().runKernel(CSR_MATMUL, {
        rowOffsets: tf.tensor1d(rowOffsets, 'int32'),
        columns: tf.tensor1d(columns, 'int32'),
        values: tf.tensor1d(weights),
        dense: tf.tensor2d(dense, [denseRows, channels]),
      }) as Tensor;
      expect(out.shape).toEqual([rows, channels]);
      const actual = out.dataSync() as Float32Array;
      let mismatches = 0;
      for (let i = 0; i < expected.length; i++) if (actual[i] !== expected[i]) mismatches++;
      expect(mismatches).toBe(0);
      expect(Math.max(...actual.subarray(0, channels * 4).map(Math.abs))).toBeGreaterThan(0.1);
    }
  });

  it('packs B into 8-column panels on the threads exactly as the micro-kernels read them (B and Bᵀ, several matrices)', async () => {
    await tf.setBackend('wasm');
    const backend = tf.backend() as unknown as WasmHeapBackend;
    // Small (one thread) and large enough to split the panels across both threads.
    for (const { k, n, matrices, transposed } of [
      { k: 37, n: 24, matrices: 3, transposed: false },
      { k: 37, n: 24, matrices: 2, transposed: true },
      { k: 1100, n: 64, matrices: 1, transposed: false },
      { k: 1100, n: 64, matrices: 2, transposed: true },
    ]) {
      const source = values(matrices * k * n, k + n);
      const input = tf.tensor1d(source);
      const output = tf.zeros([matrices * k * n]);
      kernelPool(backend).pack(
        heapPointer(backend, { dataId: input.dataId } as never),
        heapPointer(backend, { dataId: output.dataId } as never),
        k,
        n,
        transposed,
        matrices,
      );
      const packed = output.dataSync() as Float32Array;
      const expected = new Float32Array(matrices * k * n);
      for (let m = 0; m < matrices; m++)
        for (let row = 0; row < k; row++)
          for (let column = 0; column < n; column++) {
            const value = source[m * k * n + (transposed ? column * k + row : row * n + column)];
            expected[m * k * n + ((column >> 3) * k + row) * 8 + (column & 7)] = value;
          }
      expect(Array.from(packed), `k ${k} n ${n} ×${matrices}${transposed ? ' transposed' : ''}`).toEqual(
        Array.from(expected),
      );
      input.dispose();
      output.dispose();
    }
  });

  it('BatchMatMul on the FMA micro-kernels equals the cpu backend for every transpose, batch and row remainder', async () => {
    const cases: { a: number[]; b: number[]; ta: boolean; tb: boolean }[] = [
      { a: [1, 203, 517], b: [1, 517, 136], ta: false, tb: false },
      { a: [517, 203], b: [517, 136], ta: true, tb: false },
      { a: [203, 517], b: [136, 517], ta: false, tb: true },
      { a: [3, 517, 66], b: [3, 64, 517], ta: true, tb: true },
      // k over one 256-deep block and n over one 32-panel block: the accumulating passes.
      { a: [37, 700], b: [700, 328], ta: false, tb: false },
    ];
    for (const c of cases) {
      expect(onMicroKernels(c.a, c.b, c.ta, c.tb)).toBe(true);
      const a = values(
        c.a.reduce((x, y) => x * y),
        11,
      );
      const b = values(
        c.b.reduce((x, y) => x * y),
        12,
      );
      const run = () => tf.matMul(tf.tensor(a, c.a), tf.tensor(b, c.b), c.ta, c.tb).dataSync() as Float32Array;
      const cpu = await onBackend('cpu', run);
      const wasm = await onBackend('wasm', run);
      expect(wasm.length).toBe(cpu.length);
      // Fused multiply-adds round once per step where the cpu backend rounds twice: float32 noise only.
      expect(relativeError(wasm, cpu)).toBeLessThan(1e-5);
    }
    // Small products, column counts not divisible by 8 and broadcast batches stay on XNNPACK (transposed
    // operands transposed first).
    for (const [ta, tb] of [
      [true, false],
      [false, true],
      [true, true],
    ]) {
      const shapeA = ta ? [40, 30] : [30, 40];
      const shapeB = tb ? [5, 40] : [40, 5];
      expect(onMicroKernels(shapeA, shapeB, ta, tb)).toBe(false);
      const a = values(1200, 13);
      const b = values(200, 14);
      const run = () => tf.matMul(tf.tensor(a, shapeA), tf.tensor(b, shapeB), ta, tb).dataSync() as Float32Array;
      expect(relativeError(await onBackend('wasm', run), await onBackend('cpu', run))).toBeLessThan(1e-5);
    }
    expect(onMicroKernels([8, 8], [8, 8], false, false)).toBe(false);
    expect(onMicroKernels([300, 300], [300, 301], false, false)).toBe(false);
    expect(onMicroKernels([1, 300, 300], [4, 300, 304], false, false)).toBe(false);
  });

  it('Conv2D and FusedConv2D on the micro-kernels equal the cpu backend (strides, pads, 1×1, bias, relu)', async () => {
    type Case = { x: number[]; f: number[]; s: number; pad: 'same' | 'valid' | number; fused?: boolean };
    const cases: Case[] = [
      { x: [3, 17, 15, 24], f: [3, 3, 24, 32], s: 1, pad: 'same' },
      { x: [2, 40, 39, 16], f: [3, 3, 16, 40], s: 2, pad: 'same' },
      { x: [2, 21, 21, 8], f: [7, 7, 8, 64], s: 2, pad: 3 },
      { x: [4, 16, 18, 40], f: [3, 3, 40, 16], s: 1, pad: 'valid', fused: true },
      { x: [4, 16, 16, 64], f: [1, 1, 64, 72], s: 1, pad: 'valid', fused: true },
      { x: [4, 32, 32, 64], f: [1, 1, 64, 72], s: 2, pad: 'valid' },
    ];
    for (const c of cases) {
      const attrs = { strides: c.s, pad: c.pad, dataFormat: 'NHWC' as const, dilations: 1 };
      expect(microKernelConv(c.x, c.f, attrs)).toBeDefined();
      const x = values(
        c.x.reduce((a, b) => a * b),
        21,
      );
      const f = values(
        c.f.reduce((a, b) => a * b),
        22,
      );
      const bias = values(c.f[3], 23);
      const run = () => {
        const xs = tf.tensor4d(x, c.x as [number, number, number, number]);
        const fs = tf.tensor4d(f, c.f as [number, number, number, number]);
        const out = c.fused
          ? tf.fused.conv2d({
              x: xs,
              filter: fs,
              strides: c.s,
              pad: c.pad,
              bias: tf.tensor1d(bias),
              activation: 'relu',
            })
          : tf.conv2d(xs, fs, c.s, c.pad);
        return out.dataSync() as Float32Array;
      };
      const cpu = await onBackend('cpu', run);
      const wasm = await onBackend('wasm', run);
      expect(wasm.length).toBe(cpu.length);
      expect(relativeError(wasm, cpu)).toBeLessThan(1e-5);
      if (c.fused) expect(Math.min(...wasm)).toBe(0);
    }
    expect(
      microKernelConv([1, 8, 8, 8], [3, 3, 8, 8], { strides: 1, pad: 'same', dataFormat: 'NHWC', dilations: 1 }),
    ).toBeUndefined();
    expect(
      microKernelConv([1, 64, 64, 64], [3, 3, 64, 64], { strides: 1, pad: 'same', dataFormat: 'NHWC', dilations: 2 }),
    ).toBeUndefined();
  });

  it('registers the missing kernels and frees every intermediate', async () => {
    const kernels = registerWasmTrainingKernels();
    const names = kernels.map((k) => k.kernelName);
    expect(names).toContain('Conv2DBackpropFilter');
    expect(names).toContain('UnsortedSegmentSum');
    expect(kernels.find((k) => k.kernelName === CSR_MATMUL)?.via).toBe('wasm');
    expect(kernels.find((k) => k.kernelName === 'Conv2DBackpropFilter')?.via).toBe('wasm');
    await tf.setBackend('wasm');
    const x = tf.randomNormal([1, 8, 8, 4]) as Tensor4D;
    const w = tf.randomNormal([3, 3, 4, 4]) as Tensor4D;
    const before = tf.memory().numBytes;
    const backendIdsBefore = tf.backend().numDataIds();
    const cpuIdsBefore = tf.engine().findBackend('cpu').numDataIds();
    for (let i = 0; i < 3; i++) {
      const [dx, dw] = tf.grads((a: Tensor, b: Tensor) => tf.sum(tf.conv2d(a as Tensor4D, b as Tensor4D, 2, 'same')))([
        x,
        w,
      ]);
      dx.dispose();
      dw.dispose();
      // 1×1 strided, and a bridged kernel (gather's gradient is UnsortedSegmentSum, run on cpu).
      tf.grad((a: Tensor) => tf.sum(tf.conv2d(a as Tensor4D, tf.ones([1, 1, 4, 2]) as Tensor4D, 2, 'valid')))(
        x,
      ).dispose();
      tf.grad((a: Tensor) => tf.sum(tf.gather(a, tf.tensor1d([0, 0, 3], 'int32'), 3)))(x).dispose();
    }
    expect(tf.memory().numBytes).toBe(before);
    expect(tf.engine().findBackend('cpu').numDataIds()).toBe(cpuIdsBefore);
    // The kernels' own intermediates (pads, transposes, taps) live only in the backend: none may remain.
    expect(tf.backend().numDataIds()).toBe(backendIdsBefore);
    x.dispose();
    w.dispose();
  });
});
