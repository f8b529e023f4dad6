/**
 * Every family of the torch backend's kernels against tfjs' cpu backend on the same random inputs, gradients
 * included (the cpu kernels are tfjs' reference implementation). Skips, saying why, where the torch bridge is
 * not built (no libtorch or no compiler); CI builds it against the reference venv's torch, so there it runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../tf.js';
import { bilinearSourceTable, fixCpuKernels, nearestSourceIndices } from '../resize-tables.js';
import { loadTorch } from './addon.js';
import { CSR_MATMUL, startTorchBackend } from './index.js';

fixCpuKernels();
const started = startTorchBackend({ device: 'cpu', threads: 2 });
if (!started.ok) console.warn(`torch kernel tests skipped: ${started.reason}`);
const suite = started.ok ? describe : describe.skip;

interface Read {
  shape: number[];
  dtype: string;
  values: number[];
}

/** Deterministic values in [lo, hi). */
function random(count: number, seed: number, lo = -1, hi = 1): Float32Array {
  let state = seed * 2654435761 + 1;
  return Float32Array.from({ length: count }, () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return lo + ((hi - lo) * state) / 2147483648;
  });
}

function rand(shape: number[], seed: number, lo = -1, hi = 1): tf.Tensor {
  return tf.tensor(
    random(
      shape.reduce((p, d) => p * d, 1),
      seed,
      lo,
      hi,
    ),
    shape,
  );
}

/** Runs `make` on one backend and reads every output. */
async function runOn(backend: string, make: () => tf.Tensor | tf.Tensor[]): Promise<Read[]> {
  await tf.setBackend(backend);
  let out: Read[] = [];
  tf.tidy(() => {
    out = [make()].flat().map((t) => ({
      shape: [...t.shape],
      dtype: t.dtype,
      values: Array.from(t.dataSync() as ArrayLike<number>),
    }));
  });
  return out;
}

async function expectSame(make: () => tf.Tensor | tf.Tensor[], tolerance = 1e-5): Promise<void> {
  const reference = await runOn('cpu', make);
  const torch = await runOn('torch', make);
  expect(torch.length).toBe(reference.length);
  torch.forEach((t, i) => {
    const r = reference[i];
    expect(t.shape).toEqual(r.shape);
    expect(t.dtype).toBe(r.dtype);
    let worst = 0;
    t.values.forEach((v, j) => {
      const w = r.values[j];
      if (Number.isNaN(w)) expect(v).toBeNaN();
      else if (!Number.isFinite(w)) expect(v).toBe(w);
      else worst = Math.max(worst, Math.abs(v - w) / Math.max(1, Math.abs(w)));
    });
    expect(worst).toBeLessThanOrEqual(tolerance);
  });
}

/** The gradients of sum(f(inputs) · fixed weights) with respect to every input. */
function gradients(f: (...xs: tf.Tensor[]) => tf.Tensor, makeInputs: () => tf.Tensor[]): () => tf.Tensor[] {
  return () => {
    const inputs = makeInputs();
    const probe = f(...inputs);
    const weights = rand(probe.shape, 99);
    const g = tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(f(...xs), weights)));
    return [f(...inputs), ...g(inputs)];
  };
}

suite('torch backend kernels match tfjs cpu', () => {
  let previous: string;
  beforeAll(() => {
    previous = tf.getBackend() ?? 'cpu';
  });
  afterAll(async () => {
    await tf.setBackend(previous);
  });

  it('unary maths, activations and casts', async () => {
    await expectSame(() => {
      const x = rand([3, 5], 1, -2, 2);
      const positive = rand([3, 5], 2, 0.1, 3);
      return [
        tf.abs(x),
        tf.neg(x),
        tf.exp(x),
        tf.expm1(x),
        tf.log(positive),
        tf.log1p(positive),
        tf.sqrt(positive),
        tf.rsqrt(positive),
        tf.square(x),
        tf.reciprocal(positive),
        tf.sigmoid(x),
        tf.tanh(x),
        tf.relu(x),
        tf.relu6(tf.mul(x, 4)),
        tf.elu(x),
        tf.selu(x),
        tf.leakyRelu(x, 0.1),
        tf.prelu(x, tf.scalar(0.25)),
        tf.softplus(x),
        tf.sign(x),
        tf.floor(x),
        tf.ceil(x),
        tf.round(tf.mul(x, 3)),
        tf.erf(x),
        tf.sin(x),
        tf.cos(x),
        tf.step(x, 0.3),
        tf.step(x),
        tf.step(tf.div(x, tf.sub(x, x))),
        tf.step(tf.div(tf.sign(x), tf.zerosLike(x)), -0.5),
        tf.clipByValue(x, -0.5, 0.7),
        tf.cast(tf.mul(x, 3), 'int32'),
        tf.cast(x, 'bool'),
        tf.abs(tf.cast(tf.mul(x, 3), 'int32')),
        tf.isNaN(tf.div(x, tf.zerosLike(x))),
        tf.logicalNot(tf.greater(x, 0)),
      ];
    });
  });

  it('binary maths with broadcasting, comparisons, logic and select', async () => {
    await expectSame(() => {
      const a = rand([2, 3, 4], 3, -2, 2);
      const b = rand([3, 1], 4, 0.5, 2);
      const ints = tf.cast(tf.mul(a, 5), 'int32');
      const intsB = tf.cast(tf.add(tf.mul(b, 3), 1), 'int32');
      return [
        tf.add(a, b),
        tf.sub(a, b),
        tf.mul(a, b),
        tf.div(a, b),
        tf.maximum(a, b),
        tf.minimum(a, b),
        tf.pow(tf.abs(a), b),
        tf.squaredDifference(a, b),
        tf.add(ints, intsB),
        tf.mul(ints, intsB),
        tf.floorDiv(ints, intsB),
        tf.mod(ints, intsB),
        tf.equal(ints, intsB),
        tf.notEqual(ints, intsB),
        tf.less(a, b),
        tf.lessEqual(a, b),
        tf.greater(a, b),
        tf.greaterEqual(a, b),
        tf.logicalAnd(tf.greater(a, 0), tf.less(a, b)),
        tf.logicalOr(tf.greater(a, 1), tf.less(a, -1)),
        tf.where(tf.greater(a, 0), a, tf.mul(a, -3)),
        tf.addN([a, tf.mul(a, 2), tf.mul(a, 3)]),
      ];
    });
  });

  it('reductions, scans, softmax and top-k', async () => {
    await expectSame(() => {
      const x = rand([3, 4, 5], 5, -2, 2);
      const ints = tf.cast(tf.mul(x, 4), 'int32');
      return [
        tf.sum(x),
        tf.sum(x, [0, 2]),
        tf.sum(x, -1, true),
        tf.sum(ints, 1),
        tf.mean(x, [1]),
        tf.max(x, [0, 1]),
        tf.min(x, 2, true),
        tf.prod(tf.add(x, 3), [1, 2]),
        tf.argMax(x, 1),
        tf.argMin(x, -1),
        tf.all(tf.greater(x, -1.5), 1),
        tf.any(tf.greater(x, 1.5), 0),
        tf.cumsum(x, 1),
        tf.cumsum(x, 2, true, true),
        tf.softmax(x),
        tf.logSoftmax(x),
        tf.topk(tf.reshape(x, [12, 5]), 3).values,
        tf.topk(tf.reshape(x, [12, 5]), 3).indices,
      ];
    });
  });

  it('shape kernels: reshape, transpose, slices, joins, pads, gathers, fills', async () => {
    await expectSame(() => {
      const x = rand([2, 3, 4, 5], 6);
      const indices = tf.tensor1d([2, 0, 1, 2], 'int32');
      return [
        tf.reshape(x, [6, -1]),
        tf.transpose(x, [3, 1, 0, 2]),
        tf.slice(x, [0, 1, 1, 0], [2, 2, -1, 3]),
        tf.stridedSlice(x, [0, 2, 0, 1], [2, 0, 4, 5], [1, -1, 2, 2]),
        tf.stridedSlice(x, [1, 0], [2, 2], [1, 1], 0, 0, 0, 0, 1),
        tf.concat([x, tf.mul(x, 2)], 2),
        tf.concat([tf.zeros([0, 3, 4, 5]), x], 0),
        tf.stack([x, x], 1),
        ...tf.unstack(x, 1),
        ...tf.split(x, [1, 3, 1], 3),
        tf.pad(
          x,
          [
            [0, 0],
            [1, 2],
            [0, 1],
            [2, 0],
          ],
          0.5,
        ),
        tf.tile(x, [1, 2, 1, 2]),
        tf.broadcastTo(tf.reshape(tf.range(0, 5), [1, 5]), [3, 5]),
        tf.gather(x, indices, 2),
        tf.gatherND(
          x,
          tf.tensor2d(
            [
              [1, 2],
              [0, 0],
              [1, 1],
            ],
            [3, 2],
            'int32',
          ),
        ),
        tf.reverse(x, [1, 3]),
        tf.fill([2, 3], 1.5),
        tf.fill([2], 7, 'int32'),
        tf.range(0, 10, 3),
        tf.range(1, 2, 0.1),
        tf.oneHot(tf.tensor1d([0, 3, -1, 2], 'int32'), 4),
        tf.zerosLike(x),
        tf.onesLike(x),
        tf.clone(x),
        tf.expandDims(x, 1),
        tf.squeeze(tf.reshape(x, [2, 1, 60])),
      ];
    });
  });

  it('convolutions and their gradients (valid, uneven SAME, explicit, dilated, strided, fused, depthwise)', async () => {
    const cases: [
      number | [number, number],
      'valid' | 'same' | [[0, 0], [number, number], [number, number], [0, 0]],
      number,
    ][] = [
      [1, 'valid', 1],
      [2, 'same', 1],
      [
        2,
        [
          [0, 0],
          [1, 1],
          [3, 3],
          [0, 0],
        ],
        1,
      ],
      [[2, 1], 'same', 1],
    ];
    for (const [strides, pad, dilation] of cases) {
      await expectSame(
        gradients(
          (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, strides, pad, 'NHWC', dilation),
          () => [rand([2, 9, 8, 3], 7), rand([3, 3, 3, 4], 8)],
        ),
        1e-4,
      );
    }
    await expectSame(
      gradients(
        (x, w, bias) =>
          tf.fused.conv2d({
            x: x as tf.Tensor4D,
            filter: w as tf.Tensor4D,
            strides: 2,
            pad: 'same',
            bias,
            activation: 'relu',
          }),
        () => [rand([1, 8, 8, 3], 9), rand([3, 3, 3, 5], 10), rand([5], 11)],
      ),
      1e-4,
    );
    await expectSame(
      () => tf.conv2d(rand([2, 9, 8, 3], 7) as tf.Tensor4D, rand([3, 3, 3, 4], 8) as tf.Tensor4D, 1, 'same', 'NHWC', 2),
      1e-4,
    );
    await expectSame(
      () => tf.depthwiseConv2d(rand([1, 7, 7, 3], 12) as tf.Tensor4D, rand([3, 3, 3, 2], 13) as tf.Tensor4D, 1, 'same'),
      1e-4,
    );
  });

  it('pooling and its gradients (uneven SAME padding included)', async () => {
    for (const [size, strides, pad] of [
      [3, 2, 'same'],
      [2, 2, 'valid'],
      [3, 1, 'same'],
    ] as const) {
      await expectSame(
        gradients(
          (x) => tf.maxPool(x as tf.Tensor4D, size, strides, pad),
          () => [rand([2, 9, 8, 3], 14)],
        ),
      );
      await expectSame(() => tf.avgPool(rand([2, 9, 8, 3], 15) as tf.Tensor4D, size, strides, pad));
      // tfjs' cpu AvgPoolGrad divides by the whole window even where SAME padding cut it (its forward pass
      // does not), so the reference gradient is that of the same mean written as a depthwise convolution.
      const average = (x: tf.Tensor) => {
        const ones = tf.ones([size, size, 3, 1]) as tf.Tensor4D;
        const sums = tf.depthwiseConv2d(x as tf.Tensor4D, ones, strides, pad);
        const counts = tf.depthwiseConv2d(tf.onesLike(x) as tf.Tensor4D, ones, strides, pad);
        return tf.div(sums, counts);
      };
      const reference = await runOn(
        'cpu',
        gradients(average, () => [rand([2, 9, 8, 3], 16)]),
      );
      const torch = await runOn(
        'torch',
        gradients(
          (x) => tf.avgPool(x as tf.Tensor4D, size, strides, pad),
          () => [rand([2, 9, 8, 3], 16)],
        ),
      );
      expect(torch.map((t) => t.shape)).toEqual(reference.map((t) => t.shape));
      torch.forEach((t, i) => {
        t.values.forEach((v, j) => {
          expect(v).toBeCloseTo(reference[i].values[j], 4);
        });
      });
    }
  });

  it('matrix products (transposes, batches, fused bias + activation) and their gradients', async () => {
    await expectSame(
      gradients(
        (a, b) => tf.matMul(a, b, true, false),
        () => [rand([4, 3], 16), rand([4, 5], 17)],
      ),
      1e-5,
    );
    await expectSame(
      gradients(
        (a, b) => tf.matMul(a, b, false, true),
        () => [rand([2, 3, 4], 18), rand([2, 5, 4], 19)],
      ),
      1e-5,
    );
    await expectSame(
      gradients(
        (a, b, bias) => tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, bias, activation: 'relu' }),
        () => [rand([3, 4], 20), rand([4, 6], 21), rand([6], 22)],
      ),
      1e-5,
    );
  });

  it('resizing with every sampling rule, and its gradients (against the same resize written as gathers)', async () => {
    for (const [alignCorners, halfPixel] of [
      [false, false],
      [true, false],
      [false, true],
    ] as const) {
      for (const size of [
        [10, 14],
        [3, 2],
      ] as [number, number][]) {
        const nearest = (x: tf.Tensor) =>
          tf.image.resizeNearestNeighbor(x as tf.Tensor4D, size, alignCorners, halfPixel);
        const bilinear = (x: tf.Tensor) => tf.image.resizeBilinear(x as tf.Tensor4D, size, alignCorners, halfPixel);
        const images = () => [rand([2, 5, 7, 3], 23)];
        await expectSame(() => [nearest(images()[0]), bilinear(images()[0])]);
        // tfjs' own cpu gradients are wrong here (see ../resize-tables.ts); tfjs' gather gradient is not.
        const rows = nearestSourceIndices(5, size[0], alignCorners, halfPixel);
        const cols = nearestSourceIndices(7, size[1], alignCorners, halfPixel);
        const gatheredNearest = (x: tf.Tensor) => tf.gather(tf.gather(x, Array.from(rows), 1), Array.from(cols), 2);
        const r = bilinearSourceTable(5, size[0], alignCorners, halfPixel);
        const c = bilinearSourceTable(7, size[1], alignCorners, halfPixel);
        const lerp = (x: tf.Tensor, t: ReturnType<typeof bilinearSourceTable>, axis: number, shape: number[]) => {
          const low = tf.gather(x, Array.from(t.low), axis);
          const high = tf.gather(x, Array.from(t.high), axis);
          return tf.add(low, tf.mul(tf.sub(high, low), tf.tensor(t.fraction, shape)));
        };
        const gatheredBilinear = (x: tf.Tensor) => lerp(lerp(x, r, 1, [1, size[0], 1, 1]), c, 2, [1, 1, size[1], 1]);
        for (const [kernel, reference] of [
          [nearest, gatheredNearest],
          [bilinear, gatheredBilinear],
        ]) {
          const expected = await runOn('cpu', gradients(reference, images));
          for (const backend of ['torch', 'cpu']) {
            const got = await runOn(backend, gradients(kernel, images));
            got.forEach((t, i) => {
              expect(t.shape).toEqual(expected[i].shape);
              t.values.forEach((v, j) => {
                expect(v).toBeCloseTo(expected[i].values[j], 3);
              });
            });
          }
        }
      }
    }
  });

  it('beyond the detector: batch norm, ELU gradient, mirror pads, depthwise gradients, einsum, linspace, cumprod, diag, scatter, NMS', async () => {
    await expectSame(() => {
      const x = rand([2, 4, 5, 3], 30);
      const boxes = tf.tensor2d([0, 0, 10, 10, 1, 1, 11, 11, 20, 20, 30, 30, 0, 0, 9, 9], [4, 4]);
      const scores = tf.tensor1d([0.9, 0.8, 0.7, 0.6]);
      return [
        tf.batchNorm(
          x,
          tf.tensor1d([0.1, -0.2, 0.3]),
          tf.tensor1d([1.5, 0.5, 2]),
          tf.tensor1d([0, 1, -1]),
          tf.tensor1d([2, 1, 0.5]),
          1e-3,
        ),
        tf.mirrorPad(
          x,
          [
            [0, 0],
            [2, 1],
            [1, 2],
            [0, 0],
          ],
          'reflect',
        ),
        tf.mirrorPad(
          x,
          [
            [0, 0],
            [2, 1],
            [1, 2],
            [0, 0],
          ],
          'symmetric',
        ),
        tf.einsum('ij,jk->ik', rand([3, 4], 31), rand([4, 2], 32)),
        tf.linspace(-1, 2, 7),
        tf.cumprod(tf.add(rand([3, 4], 33), 2), 1),
        tf.cumprod(tf.add(rand([3, 4], 34), 2), 1, true, true),
        tf.diag(tf.tensor1d([1, 2, 3])),
        tf.scatterND(
          tf.tensor2d([[0], [2], [0]], [3, 1], 'int32'),
          tf.tensor2d([
            [1, 2],
            [3, 4],
            [5, 6],
          ]),
          [4, 2],
        ),
        tf.image.nonMaxSuppression(boxes, scores, 3, 0.5),
        tf.image.nonMaxSuppressionWithScore(boxes, scores, 3, 0.5, 0, 0.5).selectedScores,
      ];
    });
    await expectSame(
      gradients(
        (x) => tf.elu(x),
        () => [rand([3, 4], 35, -2, 2)],
      ),
    );
    await expectSame(
      gradients(
        (x, w) => tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same'),
        () => [rand([1, 7, 7, 3], 36), rand([3, 3, 3, 2], 37)],
      ),
      1e-4,
    );
  });

  it('gather gradients (unsorted segment sums) and gathers of gathers', async () => {
    await expectSame(
      gradients(
        (x) => tf.gather(x, tf.tensor1d([3, 0, 3, 1], 'int32'), 0),
        () => [rand([5, 4], 25)],
      ),
    );
  });

  it('the CSR product (RoIAlign as a sparse matrix) equals the dense product', async () => {
    const dense = random(6 * 3, 26);
    // rows: 0 ← 0.5·r1 + 0.25·r4; 1 ← (empty); 2 ← r0 + r5 + 2·r0
    const rowOffsets = Int32Array.from([0, 2, 2, 5]);
    const columns = Int32Array.from([1, 4, 0, 5, 0]);
    const values = Float32Array.from([0.5, 0.25, 1, 1, 2]);
    const expected = [0, 1, 2].map((row) =>
      [0, 1, 2].map((c) => {
        let sum = 0;
        for (let e = rowOffsets[row]; e < rowOffsets[row + 1]; e++) sum += values[e] * dense[columns[e] * 3 + c];
        return sum;
      }),
    );
    await tf.setBackend('torch');
    const out = tf.engine().runKernel(CSR_MATMUL, {
      rowOffsets: tf.tensor1d(rowOffsets, 'int32'),
      columns: tf.tensor1d(columns, 'int32'),
      values: tf.tensor1d(values),
      dense: tf.tensor2d(dense, [6, 3]),
    }) as tf.Tensor;
    expect(out.shape).toEqual([3, 3]);
    const got = out.arraySync() as number[][];
    got.flat().forEach((v, i) => {
      expect(v).toBeCloseTo(expected.flat()[i], 6);
    });
  });

  it('an unregistered kernel is an error naming it, never a silent fallback', async () => {
    await tf.setBackend('torch');
    const x = tf.tensor1d([1, 2, 3, 4]);
    expect(() => tf.spectral.rfft(x)).toThrow(/RFFT|FFT|Complex/);
    expect(() => tf.spectral.rfft(x)).toThrow(/torch/);
  });

  it('frees every ATen tensor it made: a tidy training-like step leaves the live count unchanged', async () => {
    await tf.setBackend('torch');
    const loaded = loadTorch();
    if (!loaded.ok) throw new Error(loaded.reason);
    const w = tf.variable(rand([3, 3, 2, 4], 27));
    const step = () =>
      tf.tidy(() => {
        const x = rand([2, 8, 8, 2], 28);
        const { value, grads } = tf.variableGrads(() =>
          tf.sum(
            tf.square(
              tf.maxPool(tf.relu(tf.conv2d(x as tf.Tensor4D, w as unknown as tf.Tensor4D, 1, 'same')), 3, 2, 'same'),
            ),
          ),
        );
        w.assign(tf.sub(w, tf.mul(grads[w.name], 0.01)));
        value.dataSync();
      });
    step();
    const before = loaded.value.addon.liveTensors();
    for (let i = 0; i < 3; i++) step();
    expect(loaded.value.addon.liveTensors()).toBe(before);
    w.dispose();
  });
});
