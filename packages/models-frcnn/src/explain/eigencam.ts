/**
 * EigenCAM (Muhammad & Yeasin 2020) as pytorch-grad-cam defines it for Faster R-CNN: every FPN level is
 * taken in absolute value, resized bilinearly to a common size and concatenated on channels
 * (`fasterrcnn_reshape_transform`); the CAM is the projection of the centred (pixels × channels) matrix on
 * its first right singular vector (`get_2d_projection`), then ReLU, min-max scaling and a resize to the image.
 *
 * The singular vector's sign is arbitrary (numpy's LAPACK picks one); we fix it so the projection correlates
 * positively with the mean activation magnitude, i.e. the map is bright where the network responds most.
 */
import { tf } from '@fedcxr/core';

/** |features| of each level resized to `target` (default: the smallest level's size), concatenated. */
export function concatenateLevels(features: Map<string, tf.Tensor4D>, target?: [number, number]): tf.Tensor4D {
  return tf.tidy(() => {
    const maps = [...features.values()];
    if (maps.length === 0) throw new Error('no feature maps to explain');
    const size = target ?? smallestSize(maps);
    // align_corners=False in torch's interpolate is tfjs' halfPixelCenters=true.
    const resized = maps.map((m) => tf.image.resizeBilinear(tf.abs(m), size, false, true));
    return tf.concat(resized, 3);
  });
}

function smallestSize(maps: tf.Tensor4D[]): [number, number] {
  let best = maps[0];
  for (const m of maps) if (m.shape[1] * m.shape[2] < best.shape[1] * best.shape[2]) best = m;
  return [best.shape[1], best.shape[2]];
}

/**
 * The first-principal-component projection of an [H*W, C] activation matrix (row-major), centred on its
 * column means. Returns H*W values (before ReLU). Computed from the smaller Gram matrix by power iteration
 * with deflation-free convergence checks, in float64.
 */
export function firstComponentProjection(activations: Float32Array, pixels: number, channels: number): Float64Array {
  const a = new Float64Array(pixels * channels);
  const mean = new Float64Array(channels);
  for (let p = 0; p < pixels; p++) for (let c = 0; c < channels; c++) mean[c] += activations[p * channels + c];
  for (let c = 0; c < channels; c++) mean[c] /= pixels;
  for (let p = 0; p < pixels; p++)
    for (let c = 0; c < channels; c++) a[p * channels + c] = activations[p * channels + c] - mean[c];

  let projection: Float64Array;
  if (pixels <= channels) {
    // A·v₁ = σ₁·u₁ with u₁ the top eigenvector of A·Aᵀ (pixels × pixels).
    const gram = new Float64Array(pixels * pixels);
    for (let i = 0; i < pixels; i++) {
      for (let j = i; j < pixels; j++) {
        let s = 0;
        for (let c = 0; c < channels; c++) s += a[i * channels + c] * a[j * channels + c];
        gram[i * pixels + j] = s;
        gram[j * pixels + i] = s;
      }
    }
    const { vector, value } = topEigenvector(gram, pixels);
    const sigma = Math.sqrt(Math.max(value, 0));
    projection = vector.map((u) => u * sigma);
  } else {
    const gram = new Float64Array(channels * channels);
    for (let p = 0; p < pixels; p++) {
      for (let i = 0; i < channels; i++) {
        const ai = a[p * channels + i];
        if (ai === 0) continue;
        for (let j = i; j < channels; j++) gram[i * channels + j] += ai * a[p * channels + j];
      }
    }
    for (let i = 0; i < channels; i++) for (let j = 0; j < i; j++) gram[i * channels + j] = gram[j * channels + i];
    const { vector } = topEigenvector(gram, channels);
    projection = new Float64Array(pixels);
    for (let p = 0; p < pixels; p++) {
      let s = 0;
      for (let c = 0; c < channels; c++) s += a[p * channels + c] * vector[c];
      projection[p] = s;
    }
  }

  // Sign: positive correlation with the mean activation magnitude per pixel.
  let agreement = 0;
  for (let p = 0; p < pixels; p++) {
    let magnitude = 0;
    for (let c = 0; c < channels; c++) magnitude += Math.abs(activations[p * channels + c]);
    agreement += projection[p] * magnitude;
  }
  if (agreement < 0) for (let p = 0; p < pixels; p++) projection[p] = -projection[p];
  return projection;
}

/** Top eigenpair of a symmetric positive semi-definite n×n matrix by power iteration (float64). */
function topEigenvector(matrix: Float64Array, n: number): { vector: Float64Array; value: number } {
  let v = new Float64Array(n);
  // A deterministic start that is not orthogonal to the top eigenvector in practice.
  for (let i = 0; i < n; i++) v[i] = 1 + ((i * 7919) % 13) / 13;
  normalize(v);
  let value = 0;
  for (let iteration = 0; iteration < 5000; iteration++) {
    const next = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let s = 0;
      const row = i * n;
      for (let j = 0; j < n; j++) s += matrix[row + j] * v[j];
      next[i] = s;
    }
    const norm = normalize(next);
    let change = 0;
    for (let i = 0; i < n; i++) change = Math.max(change, Math.abs(Math.abs(next[i]) - Math.abs(v[i])));
    v = next;
    value = norm;
    if (change < 1e-13) break;
  }
  return { vector: v, value };
}

function normalize(v: Float64Array): number {
  let s = 0;
  for (const x of v) s += x * x;
  const norm = Math.sqrt(s);
  if (norm > 0) for (let i = 0; i < v.length; i++) v[i] /= norm;
  return norm;
}

/** ReLU, min-max scaling to [0, 1] (pytorch-grad-cam's scale_cam_image, eps 1e-7) and bilinear resize. */
export function scaleCam(
  cam: ArrayLike<number>,
  height: number,
  width: number,
  outHeight: number,
  outWidth: number,
): Float32Array {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  const relu = Float32Array.from(cam, (v) => Math.max(v, 0));
  for (const v of relu) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const shifted = relu.map((v) => v - lo);
  const top = hi - lo;
  const scaled = shifted.map((v) => v / (1e-7 + top));
  return tf.tidy(() => {
    const t = tf.tensor4d(scaled, [1, height, width, 1]);
    return tf.image.resizeBilinear(t, [outHeight, outWidth], false, true).dataSync() as Float32Array;
  });
}

/**
 * EigenCAM of a detector's feature pyramid, at the image's size: one map in [0, 1], row-major.
 * `features` are the backbone/FPN outputs for ONE image ([1, h, w, C] each).
 */
export async function eigenCam(
  features: Map<string, tf.Tensor4D>,
  imageHeight: number,
  imageWidth: number,
  target?: [number, number],
): Promise<Float32Array> {
  const stacked = concatenateLevels(features, target);
  const [, h, w, c] = stacked.shape;
  const data = (await stacked.data()) as Float32Array;
  stacked.dispose();
  const projection = firstComponentProjection(data, h * w, c);
  return scaleCam(projection, h, w, imageHeight, imageWidth);
}
