/**
 * Kernels beyond the detector's hot path that models commonly call: batch normalization, ELU's gradient,
 * mirror padding, depthwise gradients, einsum, linspace, cumulative products, diagonals, scatters, and
 * non-max suppression (on the host with tfjs' own implementation: its output feeds host code anyway).
 */
import type { DataType, KernelConfig, TensorInfo } from '../../../tf.js';
import { tf } from '../../../tf.js';
import type { TorchHandle } from '../addon.js';
import { axesOf, input, torchKernel } from './common.js';

export const extraKernels: KernelConfig[] = [
  torchKernel('FusedBatchNorm', (b, inputs, attrs, s) => {
    const x = input(inputs, 'x');
    const centered = s.call('aten::sub', 'Tensor', [b.handle(x), b.handle(input(inputs, 'mean'))]);
    const variance = s.call('aten::add', 'Scalar', [
      b.handle(input(inputs, 'variance')),
      (attrs.varianceEpsilon as number) ?? 0.001,
    ]);
    let out = s.call('aten::mul', 'Tensor', [centered, s.call('aten::rsqrt', '', [variance])]);
    if (inputs.scale) out = s.call('aten::mul', 'Tensor', [out, b.handle(inputs.scale)]);
    if (inputs.offset) out = s.call('aten::add', 'Tensor', [out, b.handle(inputs.offset)]);
    return b.output(b.alias(out), 'float32');
  }),
  torchKernel('EluGrad', (b, inputs, _attrs, s) => {
    const dy = b.handle(input(inputs, 'dy'));
    const y = b.handle(input(inputs, 'y'));
    const positive = s.call('aten::gt', 'Scalar', [y, 0]);
    const negative = s.call('aten::mul', 'Tensor', [dy, s.call('aten::add', 'Scalar', [y, 1])]);
    return b.output(b.call('aten::where', 'self', [positive, dy, negative]), 'float32');
  }),
  // reflect: the edge is not repeated (ATen's reflection padding); symmetric: it is (gathered explicitly).
  torchKernel('MirrorPad', (b, inputs, attrs, s) => {
    const x = input(inputs, 'x');
    const paddings = attrs.paddings as [number, number][];
    const offset = attrs.mode === 'reflect' ? 1 : 0;
    let h = b.handle(x);
    paddings.forEach(([before, after], axis) => {
      if (before === 0 && after === 0) return;
      const size = x.shape[axis];
      const picks = Int32Array.from({ length: before + size + after }, (_, i) => {
        const k = i - before;
        if (k < 0) return -k - 1 + offset;
        if (k >= size) return 2 * size - k - 1 - offset;
        return k;
      });
      h = s.call('aten::index_select', '', [
        h,
        axis,
        s.t(b.torch.fromBuffer(picks, [picks.length], 'int32', b.device)),
      ]);
    });
    return b.output(b.alias(h), x.dtype);
  }),
  ...(['DepthwiseConv2dNativeBackpropInput', 'DepthwiseConv2dNativeBackpropFilter'] as const).map((name) =>
    torchKernel(name, (b, inputs, attrs, s) => {
      const filterInput = name === 'DepthwiseConv2dNativeBackpropInput';
      const dy = input(inputs, 'dy');
      const xShape = filterInput ? (attrs.inputShape as number[]) : input(inputs, 'x').shape;
      const filterShape = filterInput ? input(inputs, 'filter').shape : (attrs.filterShape as number[]);
      const info = tf.backend_util.computeConv2DInfo(
        xShape as [number, number, number, number],
        filterShape as [number, number, number, number],
        attrs.strides as [number, number],
        (attrs.dilations as [number, number]) ?? 1,
        attrs.pad as 'same',
        attrs.dimRoundingMode as 'floor' | undefined,
        true,
      );
      const { top, bottom, left, right } = info.padInfo;
      if (top !== bottom || left !== right) throw new Error(`torch backend: ${name} with uneven padding`);
      const [kh, kw, ci, mult] = filterShape;
      const nchw = (h: TorchHandle) => s.call('aten::permute', '', [h, [0, 3, 1, 2]]);
      const weight = filterInput
        ? s.call('aten::reshape', '', [
            s.call('aten::permute', '', [b.handle(input(inputs, 'filter')), [2, 3, 0, 1]]),
            [ci * mult, 1, kh, kw],
          ])
        : s.call('aten::empty', 'memory_format', [[ci * mult, 1, kh, kw]], { dtype: 'float32', device: b.device });
      const x = filterInput
        ? s.call('aten::empty', 'memory_format', [[xShape[0], ci, xShape[1], xShape[2]]], {
            dtype: 'float32',
            device: b.device,
          })
        : nchw(b.handle(input(inputs, 'x')));
      const grads = b.op(
        'aten::convolution_backward',
        '',
      )([
        nchw(b.handle(dy)),
        x,
        weight,
        null,
        [info.strideHeight, info.strideWidth],
        [top, left],
        [info.dilationHeight, info.dilationWidth],
        false,
        [0, 0],
        ci,
        [filterInput, !filterInput, false],
      ]) as (TorchHandle | null)[];
      for (const g of grads) if (g !== null) s.t(g);
      if (filterInput) return b.output(b.call('aten::permute', '', [grads[0] as TorchHandle, [0, 2, 3, 1]]), 'float32');
      const dw = s.call('aten::reshape', '', [grads[1] as TorchHandle, [ci, mult, kh, kw]]);
      return b.output(b.call('aten::contiguous', '', [s.call('aten::permute', '', [dw, [2, 3, 0, 1]])]), 'float32');
    }),
  ),
  torchKernel('Einsum', (b, inputs, attrs) => {
    const list = Object.values(inputs) as TensorInfo[];
    return b.output(b.call('aten::einsum', '', [attrs.equation as string, list.map((t) => b.handle(t))]), 'float32');
  }),
  torchKernel('LinSpace', (b, _inputs, attrs) => {
    const { start, stop, num } = attrs as unknown as { start: number; stop: number; num: number };
    return b.output(
      b.call('aten::linspace', '', [start, stop, num], { dtype: 'float32', device: b.device }),
      'float32',
    );
  }),
  torchKernel('Cumprod', (b, inputs, attrs, s) => {
    const x = input(inputs, 'x');
    const axis = axesOf(attrs.axis as number, x.shape.length)[0];
    let h = b.handle(x);
    if (attrs.reverse) h = s.call('aten::flip', '', [h, [axis]]);
    if (attrs.exclusive) {
      const pad = Array(2 * (x.shape.length - axis)).fill(0);
      pad[pad.length - 2] = 1;
      const shifted = s.call('aten::constant_pad_nd', '', [h, pad, 1]);
      h = s.call('aten::narrow', '', [shifted, axis, 0, x.shape[axis]]);
    }
    let out = s.call('aten::cumprod', '', [h, axis], { dtype: x.dtype });
    if (attrs.reverse) out = s.call('aten::flip', '', [out, [axis]]);
    return b.output(b.call('aten::contiguous', '', [out]), x.dtype);
  }),
  torchKernel('Diag', (b, inputs) => {
    const x = input(inputs, 'x');
    const flat = b.call('aten::reshape', '', [b.handle(x), [-1]]);
    const square = b.call('aten::diag_embed', '', [flat]);
    b.free(flat);
    const out = b.call('aten::reshape', '', [square, [...x.shape, ...x.shape]]);
    b.free(square);
    return b.output(out, x.dtype);
  }),
  torchKernel('ScatterNd', (b, inputs, attrs, s) => {
    const indices = input(inputs, 'indices');
    const updates = input(inputs, 'updates');
    const shape = attrs.shape as number[];
    const depth = indices.shape[indices.shape.length - 1];
    const zeros = s.call('aten::zeros', '', [shape], { dtype: updates.dtype, device: b.device });
    const index = (
      b.op('aten::unbind', 'int')([s.call('aten::reshape', '', [b.handle(indices), [-1, depth]]), 1]) as TorchHandle[]
    ).map((h) => s.t(h));
    const values = s.call('aten::reshape', '', [b.handle(updates), [-1, ...shape.slice(depth)]]);
    return b.output(b.call('aten::index_put', '', [zeros, index, values, true]), updates.dtype as DataType);
  }),
  ...(['NonMaxSuppressionV3', 'NonMaxSuppressionV4', 'NonMaxSuppressionV5'] as const).map((name) =>
    torchKernel(name, (b, inputs, attrs) => {
      const boxes = b.readSync(input(inputs, 'boxes').dataId) as Float32Array;
      const scores = b.readSync(input(inputs, 'scores').dataId) as Float32Array;
      const { maxOutputSize, iouThreshold, scoreThreshold } = attrs as unknown as Record<string, number>;
      const upload = (values: Int32Array | Float32Array, dtype: DataType) =>
        b.output(b.torch.fromBuffer(values, [values.length], dtype, b.device), dtype);
      if (name === 'NonMaxSuppressionV3') {
        const { selectedIndices } = tf.kernel_impls.nonMaxSuppressionV3Impl(
          boxes,
          scores,
          maxOutputSize,
          iouThreshold,
          scoreThreshold,
        );
        return upload(Int32Array.from(selectedIndices), 'int32');
      }
      if (name === 'NonMaxSuppressionV4') {
        const { selectedIndices, validOutputs } = tf.kernel_impls.nonMaxSuppressionV4Impl(
          boxes,
          scores,
          maxOutputSize,
          iouThreshold,
          scoreThreshold,
          Boolean(attrs.padToMaxOutputSize),
        );
        return [
          upload(Int32Array.from(selectedIndices), 'int32'),
          b.output(b.torch.fromBuffer(Int32Array.of(validOutputs as number), [], 'int32', b.device), 'int32'),
        ];
      }
      const { selectedIndices, selectedScores } = tf.kernel_impls.nonMaxSuppressionV5Impl(
        boxes,
        scores,
        maxOutputSize,
        iouThreshold,
        scoreThreshold,
        attrs.softNmsSigma as number,
      );
      return [
        upload(Int32Array.from(selectedIndices), 'int32'),
        upload(Float32Array.from(selectedScores ?? []), 'float32'),
      ];
    }),
  ),
];
