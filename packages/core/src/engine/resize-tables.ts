/**
 * tfjs' image-resize sampling rules (its cpu kernels', after TensorFlow's), tabulated per axis: which source
 * rows/columns each output one reads and with what weight. The torch kernels and the corrected cpu gradients
 * below share them, so every backend samples the same pixels.
 */
import type { KernelConfig, TensorInfo } from '../tf.js';
import { tf } from '../tf.js';

function axisScale(inSize: number, outSize: number, alignCorners: boolean): number {
  const effectiveIn = alignCorners && outSize > 1 ? inSize - 1 : inSize;
  const effectiveOut = alignCorners && outSize > 1 ? outSize - 1 : outSize;
  return effectiveIn / effectiveOut;
}

/** Nearest neighbour: the source index of every output index. */
export function nearestSourceIndices(
  inSize: number,
  outSize: number,
  alignCorners: boolean,
  halfPixelCenters: boolean,
): Int32Array {
  const scale = axisScale(inSize, outSize, alignCorners);
  const picks = new Int32Array(outSize);
  for (let i = 0; i < outSize; i++) {
    const source = halfPixelCenters ? scale * (i + 0.5) : scale * i;
    let nearest = Math.min(inSize - 1, alignCorners ? Math.round(source) : Math.floor(source));
    if (halfPixelCenters) nearest = Math.max(0, nearest);
    picks[i] = nearest;
  }
  return picks;
}

/** Bilinear: the lower and upper source index of every output index and the upper one's weight. */
export function bilinearSourceTable(
  inSize: number,
  outSize: number,
  alignCorners: boolean,
  halfPixelCenters: boolean,
): { low: Int32Array; high: Int32Array; fraction: Float32Array } {
  const scale = axisScale(inSize, outSize, alignCorners);
  const low = new Int32Array(outSize);
  const high = new Int32Array(outSize);
  const fraction = new Float32Array(outSize);
  for (let i = 0; i < outSize; i++) {
    const source = halfPixelCenters ? scale * (i + 0.5) - 0.5 : scale * i;
    low[i] = Math.max(0, Math.floor(source));
    high[i] = Math.min(inSize - 1, Math.ceil(source));
    fraction[i] = source - Math.floor(source);
  }
  return { low, high, fraction };
}

interface CpuBackendLike {
  readSync(dataId: object): unknown;
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): TensorInfo;
}

type AxisTable = ReturnType<typeof bilinearSourceTable>;

/** Nearest neighbour as a bilinear table: one source, weight 1 (so one adjoint serves both). */
function nearestAsTable(inSize: number, outSize: number, alignCorners: boolean, halfPixelCenters: boolean): AxisTable {
  const low = nearestSourceIndices(inSize, outSize, alignCorners, halfPixelCenters);
  return { low, high: low, fraction: new Float32Array(outSize) };
}

/**
 * The exact adjoint of a separable resize: each upstream value goes to its (up to four) source pixels with the
 * forward weights. It replaces two tfjs 4.22 cpu kernels:
 * - ResizeNearestNeighborGrad offsets the upstream gradient of image b by b × (one image's size in the *input*)
 *   instead of the output, so every image after the first of a batch gets another image's gradient (an FPN's
 *   top-down path trains wrong at batch ≥ 2; wasm borrows this kernel);
 * - ResizeBilinearGrad returns a gradient of the wrong shape for non-square images (height and width swapped).
 */
function resizeAdjoint(
  kernelName: string,
  table: (inSize: number, outSize: number, alignCorners: boolean, halfPixelCenters: boolean) => AxisTable,
): KernelConfig {
  return {
    kernelName,
    backendName: 'cpu',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const { images, dy } = inputs as { images: TensorInfo; dy: TensorInfo };
      const { alignCorners, halfPixelCenters } = attrs as unknown as {
        alignCorners: boolean;
        halfPixelCenters: boolean;
      };
      const cpu = backend as unknown as CpuBackendLike;
      const [batch, inH, inW, channels] = images.shape;
      const [, outH, outW] = dy.shape;
      const rows = table(inH, outH, alignCorners, halfPixelCenters);
      const cols = table(inW, outW, alignCorners, halfPixelCenters);
      const upstream = cpu.readSync(dy.dataId) as Float32Array;
      const dx = new Float32Array(batch * inH * inW * channels);
      for (let b = 0; b < batch; b++) {
        for (let r = 0; r < outH; r++) {
          const wr = rows.fraction[r];
          const top = (b * inH + rows.low[r]) * inW;
          const bottom = (b * inH + rows.high[r]) * inW;
          for (let c = 0; c < outW; c++) {
            const wc = cols.fraction[c];
            const s = ((b * outH + r) * outW + c) * channels;
            const corners: [number, number][] = [
              [(top + cols.low[c]) * channels, (1 - wr) * (1 - wc)],
              [(top + cols.high[c]) * channels, (1 - wr) * wc],
              [(bottom + cols.low[c]) * channels, wr * (1 - wc)],
              [(bottom + cols.high[c]) * channels, wr * wc],
            ];
            for (const [o, w] of corners) {
              if (w !== 0) for (let k = 0; k < channels; k++) dx[o + k] += w * upstream[s + k];
            }
          }
        }
      }
      return cpu.makeTensorInfo([batch, inH, inW, channels], 'float32', dx);
    },
  };
}

const resizeNearestNeighborGrad = resizeAdjoint('ResizeNearestNeighborGrad', nearestAsTable);
const resizeBilinearGrad = resizeAdjoint('ResizeBilinearGrad', bilinearSourceTable);

let fixed = false;

/** Replaces the cpu kernels above (wasm's fallbacks call the cpu kernel by name, so they are fixed too). */
export function fixCpuKernels(): void {
  if (fixed) return;
  for (const kernel of [resizeNearestNeighborGrad, resizeBilinearGrad]) {
    if (tf.getKernel(kernel.kernelName, 'cpu')) tf.unregisterKernel(kernel.kernelName, 'cpu');
    tf.registerKernel(kernel);
  }
  fixed = true;
}
