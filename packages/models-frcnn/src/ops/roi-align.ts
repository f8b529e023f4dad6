/**
 * RoIAlign exactly as torchvision.ops.roi_align (CPU kernel), with a gradient to the feature maps.
 *
 * tfjs' cropAndResize samples differently (it extrapolates outside [0, size-1] and does not average a
 * sampling grid) and has no gradient. Here the sample positions and bilinear weights are computed on the
 * host in float32 exactly as the kernel does; the forward pass sums the four neighbours of every sample
 * with those weights, and the backward pass scatters the output gradient back with the same weights
 * (tf.customGrad), both over typed arrays on the host.
 *
 * On a backend whose tensors live on a device (torch), the same weights form a sparse matrix (CSR) and both
 * passes are one sparse × dense product each (core's CSR_MATMUL kernel): the feature maps never leave the
 * device, only the sample plan (which the boxes alone decide) is made on the host.
 */
import { CSR_MATMUL, tf } from '@fedcxr/core';

const f = Math.fround;

export interface RoiAlignOptions {
  /** Output bins per side (torchvision: output_size). */
  outputSize: number;
  /** Feature-map pixels per input pixel (1 / stride). */
  spatialScale: number;
  /** Samples per bin side; ≤ 0 means adaptive (ceil(roi size / output size)), as torchvision. */
  samplingRatio: number;
  /** Half-pixel offset (torchvision aligned=True); Faster R-CNN v1 uses false. */
  aligned: boolean;
}

/** Where each output bin reads from: `entriesPerBin` (flat feature row, weight) pairs per bin. */
interface SamplePlan {
  indices: Int32Array;
  weights: Float32Array;
  entriesPerBin: number;
}

/**
 * rois: 5 numbers per RoI (batch index, x1, y1, x2, y2) in input pixels. Feature map [N, H, W, C].
 * Returns [K, outputSize, outputSize, C].
 */
export function roiAlign(features: tf.Tensor4D, rois: Float32Array, options: RoiAlignOptions): tf.Tensor4D {
  return pooledFromLevels(
    [features],
    [rois],
    [Int32Array.from({ length: rois.length / 5 }, (_, i) => i)],
    options.outputSize,
    [options],
  );
}

/**
 * Pools RoIs from several maps in one differentiable step: level l pools `roisPerLevel[l]` from
 * `maps[l]` into output rows `targetsPerLevel[l]`. The weighted sums run on the host over typed arrays
 * (tfjs' gather and its segment-sum gradient are far too slow on the cpu backend for K × 49 × 16 rows).
 */
function pooledFromLevels(
  maps: readonly tf.Tensor4D[],
  roisPerLevel: readonly Float32Array[],
  targetsPerLevel: readonly Int32Array[],
  out: number,
  optionsPerLevel: readonly RoiAlignOptions[],
): tf.Tensor4D {
  const channels = maps[0].shape[3];
  const numRois = targetsPerLevel.reduce((sum, t) => sum + t.length, 0);
  if (numRois === 0) return tf.zeros([0, out, out, channels]);
  const plans = maps.map((map, l) => planSamples(roisPerLevel[l], map.shape[1], map.shape[2], optionsPerLevel[l]));
  const binsPerRoi = out * out;
  if (tf.getKernel(CSR_MATMUL, tf.getBackend())) {
    return pooledOnDevice(maps, plans, targetsPerLevel, numRois, binsPerRoi, out, channels);
  }
  const run = tf.customGrad(((...inputs: tf.Tensor[]) => {
    const pooled = new Float32Array(numRois * binsPerRoi * channels);
    plans.forEach((plan, l) => {
      const source = inputs[l].dataSync() as Float32Array;
      forEachEntry(plan, targetsPerLevel[l], binsPerRoi, channels, (o, s, w) => {
        for (let c = 0; c < channels; c++) pooled[o + c] += w * source[s + c];
      });
    });
    const value = tf.tensor4d(pooled, [numRois, out, out, channels]);
    const gradFunc = (dy: tf.Tensor) => {
      const upstream = dy.dataSync() as Float32Array;
      return plans.map((plan, l) => {
        const grad = new Float32Array(maps[l].size);
        forEachEntry(plan, targetsPerLevel[l], binsPerRoi, channels, (o, s, w) => {
          for (let c = 0; c < channels; c++) grad[s + c] += w * upstream[o + c];
        });
        return tf.tensor(grad, maps[l].shape);
      });
    };
    return { value, gradFunc };
  }) as Parameters<typeof tf.customGrad>[0]);
  return run(...maps) as tf.Tensor4D;
}

/** A sparse matrix in compressed-row form. */
interface Csr {
  rowOffsets: Int32Array;
  columns: Int32Array;
  values: Float32Array;
}

/**
 * The pooling as one sparse product: output row (RoI, bin) = Σ weight · feature row, over the rows of every
 * level stacked into one [Σ N·H·W, C] matrix; the gradient is the transposed matrix times dy.
 */
function pooledOnDevice(
  maps: readonly tf.Tensor4D[],
  plans: readonly SamplePlan[],
  targetsPerLevel: readonly Int32Array[],
  numRois: number,
  binsPerRoi: number,
  out: number,
  channels: number,
): tf.Tensor4D {
  const levelRows = maps.map((map) => map.shape[0] * map.shape[1] * map.shape[2]);
  const rowBase = levelRows.map((_, l) => levelRows.slice(0, l).reduce((a, b) => a + b, 0));
  const totalRows = levelRows.reduce((a, b) => a + b, 0);
  const outputRows = numRois * binsPerRoi;
  const counts = new Int32Array(outputRows + 1);
  const visit = (emit: (row: number, column: number, weight: number) => void) => {
    plans.forEach((plan, l) => {
      const { indices, weights, entriesPerBin } = plan;
      targetsPerLevel[l].forEach((target, r) => {
        for (let b = 0; b < binsPerRoi; b++) {
          const row = target * binsPerRoi + b;
          const first = (r * binsPerRoi + b) * entriesPerBin;
          for (let e = first; e < first + entriesPerBin; e++) {
            if (weights[e] !== 0) emit(row, rowBase[l] + indices[e], weights[e]);
          }
        }
      });
    });
  };
  visit((row) => {
    counts[row + 1]++;
  });
  const forward = compress(counts, (place) => visit(place));
  let backward: Csr | undefined;
  const transposed = (): Csr => {
    const columnCounts = new Int32Array(totalRows + 1);
    for (const column of forward.columns) columnCounts[column + 1]++;
    return compress(columnCounts, (place) => {
      for (let row = 0; row < outputRows; row++) {
        for (let e = forward.rowOffsets[row]; e < forward.rowOffsets[row + 1]; e++) {
          place(forward.columns[e], row, forward.values[e]);
        }
      }
    });
  };
  const product = (matrix: Csr, dense: tf.Tensor2D): tf.Tensor2D =>
    tf.tidy(
      () =>
        tf.engine().runKernel(CSR_MATMUL, {
          rowOffsets: tf.tensor1d(matrix.rowOffsets, 'int32'),
          columns: tf.tensor1d(matrix.columns, 'int32'),
          values: tf.tensor1d(matrix.values, 'float32'),
          dense,
        }) as tf.Tensor2D,
    );
  const run = tf.customGrad(((...args: tf.Tensor[]) => {
    const inputs = args.slice(0, maps.length);
    const stacked = tf.tidy(() =>
      tf.concat(
        inputs.map((m, l) => tf.reshape(m, [levelRows[l], channels])),
        0,
      ),
    ) as tf.Tensor2D;
    const pooled = product(forward, stacked);
    stacked.dispose();
    const value = tf.reshape(pooled, [numRois, out, out, channels]);
    pooled.dispose();
    const gradFunc = (dy: tf.Tensor) => {
      backward ??= transposed();
      const grads = product(backward, tf.reshape(dy, [outputRows, channels]) as tf.Tensor2D);
      const parts = tf.split(grads, levelRows, 0);
      grads.dispose();
      return parts.map((part, l) => {
        const shaped = tf.reshape(part, maps[l].shape);
        part.dispose();
        return shaped;
      });
    };
    return { value, gradFunc };
  }) as Parameters<typeof tf.customGrad>[0]);
  return run(...maps) as tf.Tensor4D;
}

/** Builds a CSR matrix from per-row counts (shifted by one) and a pass that places every entry. */
function compress(
  shiftedCounts: Int32Array,
  fill: (place: (row: number, column: number, weight: number) => void) => void,
): Csr {
  const rowOffsets = shiftedCounts;
  for (let i = 1; i < rowOffsets.length; i++) rowOffsets[i] += rowOffsets[i - 1];
  const nnz = rowOffsets[rowOffsets.length - 1];
  const columns = new Int32Array(nnz);
  const values = new Float32Array(nnz);
  const cursor = rowOffsets.slice(0, -1);
  fill((row, column, weight) => {
    const at = cursor[row]++;
    columns[at] = column;
    values[at] = weight;
  });
  return { rowOffsets, columns, values };
}

/** Calls visit(output offset, source offset, weight) for every non-zero sample entry of a plan. */
function forEachEntry(
  plan: SamplePlan,
  targets: Int32Array,
  binsPerRoi: number,
  channels: number,
  visit: (outputOffset: number, sourceOffset: number, weight: number) => void,
): void {
  const { indices, weights, entriesPerBin } = plan;
  targets.forEach((target, r) => {
    for (let b = 0; b < binsPerRoi; b++) {
      const o = (target * binsPerRoi + b) * channels;
      const first = (r * binsPerRoi + b) * entriesPerBin;
      for (let e = first; e < first + entriesPerBin; e++) {
        if (weights[e] !== 0) visit(o, indices[e] * channels, weights[e]);
      }
    }
  });
}

/** The sample grid of torchvision's roi_align_forward_kernel_impl (pre_calc_for_bilinear_interpolate). */
function planSamples(rois: Float32Array, height: number, width: number, options: RoiAlignOptions): SamplePlan {
  const { outputSize: out, spatialScale, samplingRatio, aligned } = options;
  const scale = f(spatialScale);
  const offset = aligned ? 0.5 : 0;
  const numRois = rois.length / 5;
  const geometry = [];
  let maxGrid = 1;
  for (let r = 0; r < numRois; r++) {
    const startW = f(f(rois[r * 5 + 1] * scale) - offset);
    const startH = f(f(rois[r * 5 + 2] * scale) - offset);
    const endW = f(f(rois[r * 5 + 3] * scale) - offset);
    const endH = f(f(rois[r * 5 + 4] * scale) - offset);
    let roiW = f(endW - startW);
    let roiH = f(endH - startH);
    if (!aligned) {
      roiW = Math.max(roiW, 1);
      roiH = Math.max(roiH, 1);
    }
    const binH = f(roiH / out);
    const binW = f(roiW / out);
    const gridH = samplingRatio > 0 ? samplingRatio : Math.ceil(f(roiH / out));
    const gridW = samplingRatio > 0 ? samplingRatio : Math.ceil(f(roiW / out));
    maxGrid = Math.max(maxGrid, gridH * gridW);
    geometry.push({ batch: Math.trunc(rois[r * 5]), startW, startH, binH, binW, gridH, gridW });
  }
  const entriesPerBin = maxGrid * 4;
  const total = numRois * out * out * entriesPerBin;
  const indices = new Int32Array(total);
  const weights = new Float32Array(total);
  for (let r = 0; r < numRois; r++) {
    const { batch, startW, startH, binH, binW, gridH, gridW } = geometry[r];
    const base = batch * height * width;
    const count = Math.max(gridH * gridW, 1);
    for (let ph = 0; ph < out; ph++) {
      for (let pw = 0; pw < out; pw++) {
        let e = ((r * out + ph) * out + pw) * entriesPerBin;
        for (let iy = 0; iy < gridH; iy++) {
          const yy = f(f(startH + f(ph * binH)) + f(f(f(iy + 0.5) * binH) / gridH));
          for (let ix = 0; ix < gridW; ix++) {
            const xx = f(f(startW + f(pw * binW)) + f(f(f(ix + 0.5) * binW) / gridW));
            if (yy < -1 || yy > height || xx < -1 || xx > width) {
              e += 4; // zero weights: the sample lies outside the map
              continue;
            }
            let y = yy <= 0 ? 0 : yy;
            let x = xx <= 0 ? 0 : xx;
            let yLow = Math.trunc(y);
            let xLow = Math.trunc(x);
            let yHigh: number;
            let xHigh: number;
            if (yLow >= height - 1) {
              yHigh = yLow = height - 1;
              y = yLow;
            } else yHigh = yLow + 1;
            if (xLow >= width - 1) {
              xHigh = xLow = width - 1;
              x = xLow;
            } else xHigh = xLow + 1;
            const ly = f(y - yLow);
            const lx = f(x - xLow);
            const hy = f(1 - ly);
            const hx = f(1 - lx);
            const corners = [
              [yLow, xLow, f(hy * hx)],
              [yLow, xHigh, f(hy * lx)],
              [yHigh, xLow, f(ly * hx)],
              [yHigh, xHigh, f(ly * lx)],
            ];
            for (const [cy, cx, weight] of corners) {
              indices[e] = base + cy * width + cx;
              weights[e] = weight / count;
              e++;
            }
          }
        }
      }
    }
  }
  return { indices, weights, entriesPerBin };
}

/** torchvision's LevelMapper (FPN paper eq. 1): the pyramid level each box is pooled from. */
export function mapBoxLevels(
  boxes: Float32Array,
  kMin: number,
  kMax: number,
  canonicalScale = 224,
  canonicalLevel = 4,
  eps = 1e-6,
): Int32Array {
  const n = boxes.length / 4;
  const levels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const area = f(f(boxes[i * 4 + 2] - boxes[i * 4]) * f(boxes[i * 4 + 3] - boxes[i * 4 + 1]));
    const s = f(Math.sqrt(area));
    const level = Math.floor(f(f(canonicalLevel + f(Math.log2(f(s / canonicalScale)))) + f(eps)));
    levels[i] = Math.min(Math.max(level, kMin), kMax) - kMin;
  }
  return levels;
}

/**
 * torchvision's MultiScaleRoIAlign: each box is pooled from the FPN level the LevelMapper picks, with
 * scales inferred from the feature sizes against the largest (unpadded) image size.
 * boxesPerImage: boxes in input pixels. Returns [total boxes, outputSize, outputSize, C] in input order.
 */
export function multiScaleRoiAlign(
  featureMaps: readonly tf.Tensor4D[],
  boxesPerImage: readonly Float32Array[],
  imageSizes: readonly (readonly [number, number])[],
  options: { outputSize: number; samplingRatio: number; canonicalScale?: number; canonicalLevel?: number },
): tf.Tensor4D {
  const maxHeight = Math.max(...imageSizes.map((s) => s[0]));
  const scales = featureMaps.map((map) => 2 ** Math.round(Math.log2(f(map.shape[1] / maxHeight))));
  const kMin = Math.trunc(-Math.log2(scales[0]));
  const kMax = Math.trunc(-Math.log2(scales[scales.length - 1]));
  const total = boxesPerImage.reduce((sum, b) => sum + b.length / 4, 0);
  const rois = new Float32Array(total * 5);
  const allBoxes = new Float32Array(total * 4);
  let k = 0;
  boxesPerImage.forEach((boxes, image) => {
    for (let i = 0; i < boxes.length / 4; i++, k++) {
      rois[k * 5] = image;
      rois.set(boxes.subarray(i * 4, i * 4 + 4), k * 5 + 1);
      allBoxes.set(boxes.subarray(i * 4, i * 4 + 4), k * 4);
    }
  });
  const levels =
    featureMaps.length === 1
      ? new Int32Array(total)
      : mapBoxLevels(allBoxes, kMin, kMax, options.canonicalScale, options.canonicalLevel);
  const roisPerLevel: Float32Array[] = [];
  const targetsPerLevel: Int32Array[] = [];
  featureMaps.forEach((_, level) => {
    const members: number[] = [];
    levels.forEach((l, i) => {
      if (l === level) members.push(i);
    });
    const subset = new Float32Array(members.length * 5);
    members.forEach((i, j) => {
      subset.set(rois.subarray(i * 5, i * 5 + 5), j * 5);
    });
    roisPerLevel.push(subset);
    targetsPerLevel.push(Int32Array.from(members));
  });
  const perLevel = scales.map((spatialScale) => ({ ...options, spatialScale, aligned: false }));
  return pooledFromLevels(featureMaps, roisPerLevel, targetsPerLevel, options.outputSize, perLevel);
}
