/** Element-wise kernels: unary maths, binary arithmetic and comparisons (numpy broadcasting, as ATen), casts. */
import type { DataType, KernelConfig, TensorInfo } from '../../../tf.js';
import { tf } from '../../../tf.js';
import { asDtype, input, torchKernel } from './common.js';

const unary: Record<string, string> = {
  Abs: 'aten::abs',
  Acos: 'aten::acos',
  Acosh: 'aten::acosh',
  Asin: 'aten::asin',
  Asinh: 'aten::asinh',
  Atan: 'aten::atan',
  Atanh: 'aten::atanh',
  Ceil: 'aten::ceil',
  Cos: 'aten::cos',
  Cosh: 'aten::cosh',
  Erf: 'aten::erf',
  Exp: 'aten::exp',
  Expm1: 'aten::expm1',
  Floor: 'aten::floor',
  Log: 'aten::log',
  Log1p: 'aten::log1p',
  Neg: 'aten::neg',
  Reciprocal: 'aten::reciprocal',
  Relu: 'aten::relu',
  Round: 'aten::round',
  Rsqrt: 'aten::rsqrt',
  Sigmoid: 'aten::sigmoid',
  Sign: 'aten::sign',
  Sin: 'aten::sin',
  Sinh: 'aten::sinh',
  Softplus: 'aten::softplus',
  Sqrt: 'aten::sqrt',
  Square: 'aten::square',
  Tan: 'aten::tan',
  Tanh: 'aten::tanh',
  Selu: 'aten::selu',
  Elu: 'aten::elu',
};

/** Unary kernels that keep the input dtype (tfjs: abs/neg/square/sign/relu of int32 stay int32). */
const keepsInteger = new Set(['Abs', 'Neg', 'Square', 'Sign', 'Relu']);

const predicates: Record<string, string> = { IsNan: 'aten::isnan', IsInf: 'aten::isinf', IsFinite: 'aten::isfinite' };

const binary: Record<string, [string, string]> = {
  Add: ['aten::add', 'Tensor'],
  Sub: ['aten::sub', 'Tensor'],
  Multiply: ['aten::mul', 'Tensor'],
  RealDiv: ['aten::div', 'Tensor'],
  Maximum: ['aten::maximum', ''],
  Minimum: ['aten::minimum', ''],
  Pow: ['aten::pow', 'Tensor_Tensor'],
  Atan2: ['aten::atan2', ''],
  FloorDiv: ['aten::div', 'Tensor_mode'],
  Mod: ['aten::remainder', 'Tensor'],
};

const comparisons: Record<string, string> = {
  Equal: 'aten::eq',
  NotEqual: 'aten::ne',
  Less: 'aten::lt',
  LessEqual: 'aten::le',
  Greater: 'aten::gt',
  GreaterEqual: 'aten::ge',
};

const logical: Record<string, string> = { LogicalAnd: 'aten::logical_and', LogicalOr: 'aten::logical_or' };

export const elementwiseKernels: KernelConfig[] = [
  ...Object.entries(unary).map(([name, op]) =>
    torchKernel(name, (b, inputs) => {
      const x = input(inputs, 'x');
      const floatOnly = !keepsInteger.has(name) && x.dtype !== 'float32';
      const source = floatOnly ? b.call('aten::_to_copy', '', [b.handle(x)], { dtype: 'float32' }) : b.handle(x);
      const out = b.call(op, '', [source]);
      if (floatOnly) b.free(source);
      return b.output(out, floatOnly ? 'float32' : x.dtype);
    }),
  ),
  ...Object.entries(predicates).map(([name, op]) =>
    torchKernel(name, (b, inputs) => b.output(b.call(op, '', [b.handle(input(inputs, 'x'))]), 'bool')),
  ),
  torchKernel('LogicalNot', (b, inputs) =>
    b.output(b.call('aten::logical_not', '', [b.handle(input(inputs, 'x'))]), 'bool'),
  ),
  torchKernel('Relu6', (b, inputs) => {
    const x = input(inputs, 'x');
    return b.output(b.call('aten::clamp', '', [b.handle(x), 0, 6]), x.dtype);
  }),
  torchKernel('LeakyRelu', (b, inputs, attrs) => {
    const x = input(inputs, 'x');
    return b.output(b.call('aten::leaky_relu', '', [b.handle(x), attrs.alpha as number]), x.dtype);
  }),
  torchKernel('Prelu', (b, inputs, _attrs, s) => {
    const x = input(inputs, 'x');
    const alpha = input(inputs, 'alpha');
    const hx = b.handle(x);
    const negative = s.call('aten::mul', 'Tensor', [hx, b.handle(alpha)]);
    const positive = s.call('aten::gt', 'Scalar', [hx, 0]);
    return b.output(b.call('aten::where', 'self', [positive, hx, negative]), x.dtype);
  }),
  torchKernel('ClipByValue', (b, inputs, attrs) => {
    const x = input(inputs, 'x');
    return b.output(
      b.call('aten::clamp', '', [b.handle(x), attrs.clipValueMin as number, attrs.clipValueMax as number]),
      x.dtype,
    );
  }),
  // tfjs: step(x) = x > 0 ? 1 : alpha, NaN stays NaN (the gradient of relu is dy · step(x)). clamp(x, 0, 0) is 0
  // everywhere but at NaN, which it keeps: adding it carries NaN through in one pass instead of a select.
  torchKernel('Step', (b, inputs, attrs, s) => {
    const x = input(inputs, 'x');
    const hx = b.handle(x);
    const alpha = (attrs.alpha as number) ?? 0;
    const positive = s.call('aten::gt', 'Scalar', [hx, 0]);
    const stepped =
      alpha === 0
        ? s.call('aten::_to_copy', '', [positive], { dtype: x.dtype })
        : s.call('aten::where', 'Scalar', [positive, 1.0, alpha]);
    const out = b.call('aten::add', 'Tensor', [stepped, s.call('aten::clamp', '', [hx, 0, 0])]);
    return b.output(out, x.dtype);
  }),
  torchKernel('Cast', (b, inputs, attrs) => {
    const x = input(inputs, 'x');
    const dtype = attrs.dtype as DataType;
    if (dtype === x.dtype) return b.output(b.alias(b.handle(x)), dtype);
    return b.output(b.call('aten::_to_copy', '', [b.handle(x)], { dtype }), dtype);
  }),
  ...Object.entries(binary).map(([name, [op, overload]]) =>
    torchKernel(name, (b, inputs) => {
      const a = input(inputs, 'a');
      const bb = input(inputs, 'b');
      const dtype = name === 'RealDiv' ? 'float32' : (tf.upcastType(a.dtype, bb.dtype) as DataType);
      const ha = b.handle(a);
      const hb = b.handle(bb);
      const out = b.call(op, overload, [ha, hb], name === 'FloorDiv' ? { rounding_mode: 'floor' } : undefined);
      return asDtypeIfInteger(b, out, dtype);
    }),
  ),
  torchKernel('SquaredDifference', (b, inputs, _attrs, s) => {
    const a = input(inputs, 'a');
    const difference = s.call('aten::sub', 'Tensor', [b.handle(a), b.handle(input(inputs, 'b'))]);
    return b.output(b.call('aten::square', '', [difference]), a.dtype);
  }),
  ...Object.entries(comparisons).map(([name, op]) =>
    torchKernel(name, (b, inputs) =>
      b.output(b.call(op, 'Tensor', [b.handle(input(inputs, 'a')), b.handle(input(inputs, 'b'))]), 'bool'),
    ),
  ),
  ...Object.entries(logical).map(([name, op]) =>
    torchKernel(name, (b, inputs) =>
      b.output(b.call(op, '', [b.handle(input(inputs, 'a')), b.handle(input(inputs, 'b'))]), 'bool'),
    ),
  ),
  torchKernel('Select', (b, inputs) => {
    const t = input(inputs, 't');
    const out = b.call('aten::where', 'self', [
      b.handle(input(inputs, 'condition')),
      b.handle(t),
      b.handle(input(inputs, 'e')),
    ]);
    return b.output(out, t.dtype);
  }),
  torchKernel('AddN', (b, inputs) => {
    const list = Object.values(inputs) as TensorInfo[];
    let sum = b.call('aten::add', 'Tensor', [b.handle(list[0]), b.handle(list[1] ?? list[0])]);
    if (list.length === 1) {
      b.free(sum);
      return b.output(b.alias(b.handle(list[0])), list[0].dtype);
    }
    for (let i = 2; i < list.length; i++) {
      const next = b.call('aten::add', 'Tensor', [sum, b.handle(list[i])]);
      b.free(sum);
      sum = next;
    }
    return b.output(sum, list[0].dtype);
  }),
];

/** Integer maths in ATen can widen (int32 / int32 → float, pow → int64); casts back to tfjs' dtype. */
function asDtypeIfInteger(
  b: Parameters<Parameters<typeof torchKernel>[1]>[0],
  out: number,
  dtype: DataType,
): TensorInfo {
  return dtype === 'float32' ? b.output(out, dtype) : asDtype(b, out, dtype);
}
