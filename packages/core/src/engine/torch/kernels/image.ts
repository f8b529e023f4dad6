/**
 * Image resizing with tfjs' own sampling rules (align corners, half-pixel centres), so the torch backend
 * resizes to the same pixels as the cpu backend: the source rows/columns and weights are tabulated on the
 * host (once per geometry, kept on the device) and applied with index_select; gradients are their adjoints
 * (index_add), the true gradient of the forward pass.
 */
import type { KernelConfig, NamedAttrMap, TensorInfo } from '../../../tf.js';
import { bilinearSourceTable, nearestSourceIndices } from '../../resize-tables.js';
import type { TorchHandle } from '../addon.js';
import type { TorchBackend } from '../backend.js';
import { input, type Scratch, torchKernel } from './common.js';

interface AxisTable {
  /** Nearest: the source index; bilinear: the lower source index. */
  low: TorchHandle;
  /** Bilinear only: the upper source index and the weight of the upper one, shaped to broadcast on its axis. */
  high?: TorchHandle;
  fraction?: TorchHandle;
}

function axisTable(
  b: TorchBackend,
  inSize: number,
  outSize: number,
  axis: 1 | 2,
  attrs: NamedAttrMap,
  bilinear: boolean,
): AxisTable {
  const alignCorners = Boolean(attrs.alignCorners);
  const halfPixel = Boolean(attrs.halfPixelCenters);
  const key = `${bilinear ? 'bilinear' : 'nearest'}:${inSize}:${outSize}:${axis}:${alignCorners}:${halfPixel}`;
  const cached = (suffix: string, make: () => TorchHandle) => {
    const k = `${key}:${suffix}`;
    let h = b.constants.get(k);
    if (h === undefined) {
      h = make();
      b.constants.set(k, h);
    }
    return h;
  };
  const upload = (values: Int32Array | Float32Array, dtype: string, shape: number[]) =>
    b.torch.fromBuffer(values, shape, dtype, b.device);
  if (!bilinear) {
    return {
      low: cached('low', () =>
        upload(nearestSourceIndices(inSize, outSize, alignCorners, halfPixel), 'int32', [outSize]),
      ),
    };
  }
  const { low, high, fraction } = bilinearSourceTable(inSize, outSize, alignCorners, halfPixel);
  const fractionShape = axis === 1 ? [1, outSize, 1, 1] : [1, 1, outSize, 1];
  return {
    low: cached('low', () => upload(low, 'int32', [outSize])),
    high: cached('high', () => upload(high, 'int32', [outSize])),
    fraction: cached('fraction', () => upload(fraction, 'float32', fractionShape)),
  };
}

/** Resamples one axis of an NHWC tensor. */
function resampleAxis(s: Scratch, h: TorchHandle, axis: 1 | 2, table: AxisTable): TorchHandle {
  const low = s.call('aten::index_select', '', [h, axis, table.low]);
  // Handles are small integers and 0 is one: test for absence, not truthiness.
  if (table.high === undefined || table.fraction === undefined) return low;
  const high = s.call('aten::index_select', '', [h, axis, table.high]);
  const step = s.call('aten::sub', 'Tensor', [high, low]);
  return s.call('aten::add', 'Tensor', [low, s.call('aten::mul', 'Tensor', [step, table.fraction])]);
}

/** The adjoint of resampleAxis: scatters dy back to `inSize` positions on `axis`. */
function resampleAxisAdjoint(
  b: TorchBackend,
  s: Scratch,
  dy: TorchHandle,
  dyShape: number[],
  axis: 1 | 2,
  inSize: number,
  table: AxisTable,
): TorchHandle {
  const shape = [...dyShape];
  shape[axis] = inSize;
  const zeros = s.call('aten::zeros', '', [shape], { dtype: 'float32', device: b.device });
  if (table.high === undefined || table.fraction === undefined)
    return s.call('aten::index_add', '', [zeros, axis, table.low, dy]);
  const upper = s.call('aten::mul', 'Tensor', [dy, table.fraction]);
  const lower = s.call('aten::sub', 'Tensor', [dy, upper]);
  const partial = s.call('aten::index_add', '', [zeros, axis, table.low, lower]);
  return s.call('aten::index_add', '', [partial, axis, table.high, upper]);
}

function resize(bilinear: boolean) {
  return torchKernel(bilinear ? 'ResizeBilinear' : 'ResizeNearestNeighbor', (b, inputs, attrs, s) => {
    const images = input(inputs, 'images');
    const [outH, outW] = attrs.size as [number, number];
    const [, inH, inW] = images.shape;
    const cast = bilinear && images.dtype !== 'float32';
    const x = cast ? s.call('aten::_to_copy', '', [b.handle(images)], { dtype: 'float32' }) : b.handle(images);
    const rows = resampleAxis(s, x, 1, axisTable(b, inH, outH, 1, attrs, bilinear));
    const out = resampleAxis(s, rows, 2, axisTable(b, inW, outW, 2, attrs, bilinear));
    return b.output(b.alias(out), bilinear ? 'float32' : images.dtype);
  });
}

function resizeGrad(bilinear: boolean) {
  return torchKernel(bilinear ? 'ResizeBilinearGrad' : 'ResizeNearestNeighborGrad', (b, inputs, attrs, s) => {
    const images = input(inputs, 'images');
    const dy: TensorInfo = input(inputs, 'dy');
    const [, inH, inW] = images.shape;
    const [, outH, outW] = dy.shape;
    const sized = { ...attrs };
    const cols = resampleAxisAdjoint(b, s, b.handle(dy), dy.shape, 2, inW, axisTable(b, inW, outW, 2, sized, bilinear));
    const colShape = [dy.shape[0], outH, inW, dy.shape[3]];
    const dx = resampleAxisAdjoint(b, s, cols, colShape, 1, inH, axisTable(b, inH, outH, 1, sized, bilinear));
    return b.output(b.alias(dx), 'float32');
  });
}

export const imageKernels: KernelConfig[] = [resize(false), resize(true), resizeGrad(false), resizeGrad(true)];
