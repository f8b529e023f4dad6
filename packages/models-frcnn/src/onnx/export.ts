/**
 * Faster R-CNN to ONNX, as a documented split: the network runs in ONNX Runtime, the detection logic stays
 * in TypeScript (shared with the tfjs model), because anchor bookkeeping, per-level top-k, batched NMS and
 * the level mapping of MultiScaleRoIAlign have no faithful ONNX form that ONNX Runtime executes identically.
 *
 * - `features` graph: normalized, padded image [N, 3, H, W] → FPN levels '0'…'3','pool' and, per level,
 *   the RPN head's objectness [N, A, h, w] and box deltas [N, 4A, h, w] (NCHW, torchvision's layout).
 * - `boxHead` graph: RoI-pooled features [R, 256, 7, 7] → class logits [R, K] and box regression [R, 4K].
 * - `roiAlign` graph: one FPN level + boxes + batch indices → [R, 256, 7, 7] (ONNX RoiAlign, opset 16,
 *   `output_half_pixel` = torchvision's aligned=False, average pooling, sampling ratio 2).
 *
 * Weights are read by torchvision state_dict name in torchvision's layout (conv OIHW, linear [out, in]);
 * frozen batch norm is folded into the preceding convolution (torchvision's FrozenBatchNorm2d, eps 1e-5).
 */
import type { HostTensor, NamedTensors } from '@fedcxr/core';
import { FedcxrError } from '@fedcxr/core';
import {
  encodeOnnxModel,
  floatInitializer,
  type InitializerTensor,
  OnnxDataType,
  type OnnxNode,
  type OnnxValueInfo,
} from './proto.js';

export const FPN_LEVELS = ['0', '1', '2', '3', 'pool'] as const;
const OPSET = 17;
const FROZEN_BN_EPS = 1e-5;

export interface ResnetFpnArchitecture {
  /** ResNet depth: 18 and 34 use basic blocks, 50 and 101 bottlenecks. */
  depth: 18 | 34 | 50 | 101;
  anchorsPerLocation?: number;
}

export interface ExportedGraphs {
  /** Backbone + FPN + RPN head, fused. */
  features: Uint8Array;
  /** The RPN head alone, on the five FPN levels. */
  rpnHead: Uint8Array;
  boxHead: Uint8Array;
  roiAlign: Uint8Array;
}

const BLOCKS: Record<ResnetFpnArchitecture['depth'], number[]> = {
  18: [2, 2, 2, 2],
  34: [3, 4, 6, 3],
  50: [3, 4, 6, 3],
  101: [3, 4, 23, 3],
};

class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: InitializerTensor[] = [];
  private counter = 0;

  constructor(private readonly weights: NamedTensors) {}

  fresh(prefix: string): string {
    this.counter += 1;
    return `${prefix}_${this.counter}`;
  }

  has(name: string): boolean {
    return this.weights.has(name);
  }

  tensor(name: string): HostTensor {
    const t = this.weights.get(name);
    if (!t) throw new FedcxrError('onnx_export_missing_weight', `weight "${name}" is missing from the model`);
    return t;
  }

  private constant(name: string, dims: number[], values: Float32Array): string {
    this.initializers.push(floatInitializer(name, dims, values));
    return name;
  }

  /** Conv with optional frozen BN folded in: W' = W·s, b' = β − μ·s (+ b·s), s = γ / √(σ² + ε). */
  conv(
    input: string,
    weightName: string,
    options: { stride?: number; pad?: number; bn?: string; bias?: string },
  ): string {
    const w = this.tensor(weightName);
    const [out, inC, kh, kw] = w.shape;
    const weight = Float32Array.from(w.data as Float32Array);
    const bias = new Float32Array(out);
    if (options.bias) bias.set(this.tensor(options.bias).data as Float32Array);
    if (options.bn) {
      const gamma = this.tensor(`${options.bn}.weight`).data;
      const beta = this.tensor(`${options.bn}.bias`).data;
      const mean = this.tensor(`${options.bn}.running_mean`).data;
      const variance = this.tensor(`${options.bn}.running_var`).data;
      const per = inC * kh * kw;
      for (let o = 0; o < out; o++) {
        // FrozenBatchNorm2d computes scale = w * (rv + eps).rsqrt() in float32.
        const scale = Math.fround(
          gamma[o] * Math.fround(1 / Math.fround(Math.sqrt(Math.fround(variance[o] + FROZEN_BN_EPS)))),
        );
        for (let i = 0; i < per; i++) weight[o * per + i] *= scale;
        bias[o] = bias[o] * scale + (beta[o] - mean[o] * scale);
      }
    }
    const wName = this.constant(this.fresh(`${weightName}_folded`), [out, inC, kh, kw], weight);
    const bName = this.constant(this.fresh(`${weightName}_bias`), [out], bias);
    const pad = options.pad ?? Math.floor(kh / 2);
    const output = this.fresh('conv');
    this.nodes.push({
      opType: 'Conv',
      inputs: [input, wName, bName],
      outputs: [output],
      attributes: {
        kernel_shape: [kh, kw],
        strides: [options.stride ?? 1, options.stride ?? 1],
        pads: [pad, pad, pad, pad],
      },
    });
    return output;
  }

  op(
    opType: string,
    inputs: string[],
    attributes?: OnnxNode['attributes'],
    output = this.fresh(opType.toLowerCase()),
  ): string {
    this.nodes.push({ opType, inputs, outputs: [output], attributes });
    return output;
  }

  linear(input: string, prefix: string): string {
    const w = this.tensor(`${prefix}.weight`);
    const b = this.tensor(`${prefix}.bias`);
    const wName = this.constant(this.fresh(`${prefix}.weight`), w.shape, Float32Array.from(w.data as Float32Array));
    const bName = this.constant(this.fresh(`${prefix}.bias`), b.shape, Float32Array.from(b.data as Float32Array));
    return this.op('Gemm', [input, wName, bName], { transB: { int: 1 } });
  }
}

function resnetBody(g: GraphBuilder, input: string, depth: ResnetFpnArchitecture['depth']): string[] {
  const p = 'backbone.body';
  let x = g.conv(input, `${p}.conv1.weight`, { stride: 2, pad: 3, bn: `${p}.bn1` });
  x = g.op('Relu', [x]);
  x = g.op('MaxPool', [x], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
  const stages: string[] = [];
  const bottleneck = depth >= 50;
  BLOCKS[depth].forEach((count, stage) => {
    for (let b = 0; b < count; b++) {
      const name = `${p}.layer${stage + 1}.${b}`;
      const stride = b === 0 && stage > 0 ? 2 : 1;
      let y: string;
      if (bottleneck) {
        y = g.op('Relu', [g.conv(x, `${name}.conv1.weight`, { bn: `${name}.bn1`, pad: 0 })]);
        y = g.op('Relu', [g.conv(y, `${name}.conv2.weight`, { stride, bn: `${name}.bn2` })]);
        y = g.conv(y, `${name}.conv3.weight`, { bn: `${name}.bn3`, pad: 0 });
      } else {
        y = g.op('Relu', [g.conv(x, `${name}.conv1.weight`, { stride, bn: `${name}.bn1` })]);
        y = g.conv(y, `${name}.conv2.weight`, { bn: `${name}.bn2` });
      }
      const shortcut = b === 0 ? downsampleOrIdentity(g, x, name, stride) : x;
      x = g.op('Relu', [g.op('Add', [y, shortcut])]);
    }
    stages.push(x);
  });
  return stages;
}

/** The first block of a stage has a 1×1 conv + BN shortcut when its shape changes. */
function downsampleOrIdentity(g: GraphBuilder, x: string, name: string, stride: number): string {
  if (!g.has(`${name}.downsample.0.weight`)) return x;
  return g.conv(x, `${name}.downsample.0.weight`, { stride, bn: `${name}.downsample.1`, pad: 0 });
}

/** torchvision's FeaturePyramidNetwork with LastLevelMaxPool, nearest top-down upsampling to the lateral size. */
function fpn(g: GraphBuilder, stages: string[]): string[] {
  const p = 'backbone.fpn';
  const inner = (i: number, x: string) =>
    g.conv(x, `${p}.inner_blocks.${i}.0.weight`, { bias: `${p}.inner_blocks.${i}.0.bias`, pad: 0 });
  const layer = (i: number, x: string) =>
    g.conv(x, `${p}.layer_blocks.${i}.0.weight`, { bias: `${p}.layer_blocks.${i}.0.bias`, pad: 1 });
  const last = stages.length - 1;
  let lastInner = inner(last, stages[last]);
  const results: string[] = [layer(last, lastInner)];
  for (let i = last - 1; i >= 0; i--) {
    const lateral = inner(i, stages[i]);
    const size = g.op('Shape', [lateral]);
    // torch's F.interpolate(mode='nearest', size=...) picks src = floor(dst · in / out): ONNX asymmetric + floor.
    const topDown = g.op('Resize', [lastInner, '', '', size], {
      mode: 'nearest',
      nearest_mode: 'floor',
      coordinate_transformation_mode: 'asymmetric',
    });
    lastInner = g.op('Add', [lateral, topDown]);
    results.unshift(layer(i, lastInner));
  }
  results.push(g.op('MaxPool', [results[results.length - 1]], { kernel_shape: [1, 1], strides: [2, 2] }));
  return results;
}

const symbolic = (name: string, channels: number): OnnxValueInfo => ({
  name,
  dataType: OnnxDataType.FLOAT,
  shape: ['batch', channels, `${name}_height`, `${name}_width`],
});

/** torchvision's RPNHead on one level: 3×3 conv + ReLU, then 1×1 objectness and box-delta convs. */
function rpnHead(g: GraphBuilder, level: string, name: string, anchors: number): OnnxValueInfo[] {
  const t = g.op('Relu', [g.conv(level, 'rpn.head.conv.0.0.weight', { bias: 'rpn.head.conv.0.0.bias', pad: 1 })]);
  const objectness = g.conv(t, 'rpn.head.cls_logits.weight', { bias: 'rpn.head.cls_logits.bias', pad: 0 });
  g.op('Identity', [objectness], undefined, `objectness_${name}`);
  const deltas = g.conv(t, 'rpn.head.bbox_pred.weight', { bias: 'rpn.head.bbox_pred.bias', pad: 0 });
  g.op('Identity', [deltas], undefined, `deltas_${name}`);
  return [symbolic(`objectness_${name}`, anchors), symbolic(`deltas_${name}`, 4 * anchors)];
}

/** Builds the graphs from a state_dict in torchvision's layout. */
export function exportFasterRcnnToOnnx(
  weights: NamedTensors,
  architecture: ResnetFpnArchitecture,
  metadata: Record<string, string> = {},
): ExportedGraphs {
  const anchors = architecture.anchorsPerLocation ?? 3;
  const g = new GraphBuilder(weights);
  const levels = fpn(g, resnetBody(g, 'images', architecture.depth));
  const outputs: OnnxValueInfo[] = [];
  levels.forEach((level, i) => {
    const name = FPN_LEVELS[i];
    g.op('Identity', [level], undefined, `feature_${name}`);
    outputs.push(symbolic(`feature_${name}`, 256));
    outputs.push(...rpnHead(g, level, name, anchors));
  });
  const features = encodeOnnxModel({
    graphName: 'fedcxr_faster_rcnn_features',
    opset: OPSET,
    nodes: g.nodes,
    initializers: g.initializers,
    inputs: [{ name: 'images', dataType: OnnxDataType.FLOAT, shape: ['batch', 3, 'height', 'width'] }],
    outputs,
    docString: 'fedcxr Faster R-CNN: normalized padded images -> FPN features and RPN head outputs (NCHW)',
    metadata,
  });

  // The RPN head alone, on given feature maps (AblationCAM re-runs it on ablated features).
  const r = new GraphBuilder(weights);
  const rpnOutputs = FPN_LEVELS.flatMap((name) => rpnHead(r, `feature_${name}`, name, anchors));
  const rpnHeadGraph = encodeOnnxModel({
    graphName: 'fedcxr_faster_rcnn_rpn_head',
    opset: OPSET,
    nodes: r.nodes,
    initializers: r.initializers,
    inputs: FPN_LEVELS.map((name) => symbolic(`feature_${name}`, 256)),
    outputs: rpnOutputs,
  });

  // The classifier's slots (background + foreground classes) are the predictor's: read from its weights.
  const clsScore = weights.get('roi_heads.box_predictor.cls_score.weight');
  if (!clsScore)
    throw new FedcxrError(
      'onnx_export_missing_weight',
      'weight "roi_heads.box_predictor.cls_score.weight" is missing from the model',
    );
  const classSlots = clsScore.shape[0];
  const h = new GraphBuilder(weights);
  const flat = h.op('Flatten', ['pooled'], { axis: { int: 1 } });
  const fc6 = h.op('Relu', [h.linear(flat, 'roi_heads.box_head.fc6')]);
  const fc7 = h.op('Relu', [h.linear(fc6, 'roi_heads.box_head.fc7')]);
  h.op('Identity', [h.linear(fc7, 'roi_heads.box_predictor.cls_score')], undefined, 'class_logits');
  h.op('Identity', [h.linear(fc7, 'roi_heads.box_predictor.bbox_pred')], undefined, 'box_regression');
  const boxHead = encodeOnnxModel({
    graphName: 'fedcxr_faster_rcnn_box_head',
    opset: OPSET,
    nodes: h.nodes,
    initializers: h.initializers,
    inputs: [{ name: 'pooled', dataType: OnnxDataType.FLOAT, shape: ['rois', 256, 7, 7] }],
    outputs: [
      { name: 'class_logits', dataType: OnnxDataType.FLOAT, shape: ['rois', classSlots] },
      { name: 'box_regression', dataType: OnnxDataType.FLOAT, shape: ['rois', 4 * classSlots] },
    ],
  });

  const roiAlign = exportRoiAlignGraph(7, 2);
  return { features, rpnHead: rpnHeadGraph, boxHead, roiAlign };
}

/** ONNX RoiAlign for one FPN level (boxes pre-scaled to the level; torchvision's aligned=False). */
export function exportRoiAlignGraph(outputSize: number, samplingRatio: number): Uint8Array {
  return encodeOnnxModel({
    graphName: 'fedcxr_roi_align',
    opset: OPSET,
    nodes: [
      {
        opType: 'RoiAlign',
        inputs: ['feature', 'rois', 'batch_indices'],
        outputs: ['pooled'],
        attributes: {
          mode: 'avg',
          output_height: { int: outputSize },
          output_width: { int: outputSize },
          sampling_ratio: { int: samplingRatio },
          spatial_scale: 1,
          coordinate_transformation_mode: 'output_half_pixel',
        },
      },
    ],
    initializers: [],
    inputs: [
      { name: 'feature', dataType: OnnxDataType.FLOAT, shape: ['batch', 'channels', 'height', 'width'] },
      { name: 'rois', dataType: OnnxDataType.FLOAT, shape: ['rois', 4] },
      { name: 'batch_indices', dataType: OnnxDataType.INT64, shape: ['rois'] },
    ],
    outputs: [{ name: 'pooled', dataType: OnnxDataType.FLOAT, shape: ['rois', 'channels', outputSize, outputSize] }],
  });
}
