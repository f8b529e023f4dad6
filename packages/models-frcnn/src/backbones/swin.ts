/**
 * Swin-T (torchvision's `swin_t` layout: features.0 = patch embed conv 4×4 + LayerNorm; features.1/3/5/7 =
 * stages of SwinTransformerBlocks; features.2/4/6 = PatchMerging) feeding an FPN on the four stage outputs
 * (strides 4, 8, 16, 32; channels 96, 192, 384, 768) with LastLevelMaxPool. Shifted window attention follows
 * torchvision's `shifted_window_attention` step for step: zero padding to whole windows (padded tokens take
 * part, as there), no shift along a side the window covers, cyclic roll, the −100 region mask, relative
 * position bias. Stochastic depth (row mode) runs only in training. Keys: `backbone.body.features.*`.
 */
import { type BackboneOptions, type FeatureSpec, FedcxrError, Rng, tf } from '@fedcxr/core';
import { defineFpn, fpnOutputs } from './fpn.js';
import { FpnBackbone } from './fpn-backbone.js';
import { kaimingUniform, normal, ParamStore, truncatedNormal, xavierUniform } from './params.js';

export const SWIN_T = {
  patchSize: 4,
  embedDim: 96,
  depths: [2, 2, 6, 2],
  numHeads: [3, 6, 12, 24],
  windowSize: 7,
  mlpRatio: 4,
  stochasticDepthProb: 0.2,
  layerNormEps: 1e-5,
} as const;

export interface SwinTFpnOptions extends BackboneOptions {
  /** Stages that train, counted from the last: 1 = stage 4 (+ its patch merging) … 5 = also the patch embed. Default 3. */
  trainableLayers?: number;
  /** Stochastic depth rate at the last block (linearly from 0), training only; default 0.2 as swin_t. */
  stochasticDepthProb?: number;
  prefix?: string;
  /** false: zeros instead of random initial values (weights are loaded right after). Default true. */
  randomInit?: boolean;
  /**
   * The stream drop path draws from: training passes its step stream (core's `trainingRandomness`), which the
   * epoch engine reseeds from (seed, epoch, step), so a resumed run drops the same rows. Default: Rng(seed ?? 0).
   */
  random?: Rng;
}

/**
 * torchvision's stochastic_depth (mode "row"): one Bernoulli(1 − p) per sample, divided by 1 − p, drawn in
 * sample order from `rng` (u < 1 − p keeps the row).
 */
export function dropPathMask(batch: number, dropProb: number, rng: Rng): Float32Array {
  const keep = 1 - dropProb;
  return Float32Array.from({ length: batch }, () => Math.floor(rng.next() + keep) / keep);
}

interface BlockPlan {
  name: string;
  dim: number;
  heads: number;
  shift: number;
  dropProb: number;
}

export class SwinTFpnBackbone extends FpnBackbone {
  readonly outputs: readonly FeatureSpec[];
  protected readonly params: ParamStore;
  private readonly stages: BlockPlan[][] = [];
  /** One-hot [table rows, N·N] of relative_position_index: the table lookup as a matrix product. */
  private readonly relativeOneHot: tf.Tensor2D;
  private readonly masks = new Map<string, tf.Tensor>();
  /** Drop path's random stream (see `SwinTFpnOptions.random`). */
  private readonly random: Rng;

  constructor(
    readonly name: string,
    options: SwinTFpnOptions = {},
  ) {
    super();
    const trainable = options.trainableLayers ?? 3;
    if (!Number.isInteger(trainable) || trainable < 0 || trainable > 5) {
      throw new FedcxrError('invalid_config', `trainableLayers must be an integer 0–5, got ${String(trainable)}`);
    }
    const sdProb = options.stochasticDepthProb ?? SWIN_T.stochasticDepthProb;
    this.random = options.random ?? new Rng(typeof options.seed === 'number' ? options.seed : 0);
    const p = new ParamStore(options.prefix ?? 'backbone.');
    this.params = p;
    const { embedDim, patchSize, depths, numHeads, windowSize, mlpRatio } = SWIN_T;
    p.add('body.features.0.0.weight', kaimingUniform(patchSize, patchSize, 3, embedDim, Math.sqrt(5)), 'conv', true);
    p.add('body.features.0.0.bias', tf.zeros([embedDim]), 'plain', true);
    this.defineLayerNorm('body.features.0.2', embedDim);
    const index = relativePositionIndex(windowSize);
    this.relativeOneHot = tf.keep(oneHot(index, (2 * windowSize - 1) ** 2));
    const totalBlocks = depths.reduce((a, b) => a + b, 0);
    let blockId = 0;
    const stageChannels: number[] = [];
    depths.forEach((depth, stage) => {
      const dim = embedDim * 2 ** stage;
      if (stage > 0) {
        const merge = `body.features.${2 * stage}`;
        this.defineLayerNorm(`${merge}.norm`, 2 * dim);
        p.add(`${merge}.reduction.weight`, truncatedNormal([2 * dim, dim], 0.02), 'linear', true);
      }
      const blocks: BlockPlan[] = [];
      for (let i = 0; i < depth; i++) {
        const name = `body.features.${2 * stage + 1}.${i}`;
        const plan = {
          name,
          dim,
          heads: numHeads[stage],
          shift: i % 2 === 0 ? 0 : Math.floor(windowSize / 2),
          dropProb: (sdProb * blockId) / (totalBlocks - 1),
        };
        blockId++;
        this.defineLayerNorm(`${name}.norm1`, dim);
        p.add(`${name}.attn.qkv.weight`, truncatedNormal([dim, 3 * dim], 0.02), 'linear', true);
        p.add(`${name}.attn.qkv.bias`, tf.zeros([3 * dim]), 'plain', true);
        p.add(`${name}.attn.proj.weight`, truncatedNormal([dim, dim], 0.02), 'linear', true);
        p.add(`${name}.attn.proj.bias`, tf.zeros([dim]), 'plain', true);
        p.add(
          `${name}.attn.relative_position_bias_table`,
          truncatedNormal([(2 * windowSize - 1) ** 2, plan.heads], 0.02),
          'plain',
          true,
        );
        p.fixBuffer(`${name}.attn.relative_position_index`, index);
        this.defineLayerNorm(`${name}.norm2`, dim);
        const hidden = dim * mlpRatio;
        p.add(`${name}.mlp.0.weight`, xavierUniform(dim, hidden), 'linear', true);
        p.add(`${name}.mlp.0.bias`, normal([hidden], 1e-6), 'plain', true);
        p.add(`${name}.mlp.3.weight`, xavierUniform(hidden, dim), 'linear', true);
        p.add(`${name}.mlp.3.bias`, normal([dim], 1e-6), 'plain', true);
        blocks.push(plan);
      }
      this.stages.push(blocks);
      stageChannels.push(dim);
    });
    defineFpn(p, stageChannels);
    this.outputs = fpnOutputs([4, 8, 16, 32]);
    const groups = [['7', '6'], ['5', '4'], ['3', '2'], ['1'], ['0']].slice(0, trainable).flat();
    const body = `${p.prefix}body.features.`;
    p.setTrainable((key) => {
      if (!key.startsWith(body)) return true;
      const group = key.slice(body.length).split('.')[0];
      return groups.includes(group);
    });
  }

  private defineLayerNorm(name: string, dim: number): void {
    this.params.add(`${name}.weight`, tf.ones([dim]), 'plain', true);
    this.params.add(`${name}.bias`, tf.zeros([dim]), 'plain', true);
  }

  private layerNorm(x: tf.Tensor, name: string): tf.Tensor {
    const { mean, variance } = tf.moments(x, -1, true);
    const normalized = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, SWIN_T.layerNormEps)));
    return tf.add(tf.mul(normalized, this.params.get(`${name}.weight`)), this.params.get(`${name}.bias`));
  }

  /** x [..., in] · W [in, out] + b. */
  private linear(x: tf.Tensor, name: string, bias = true): tf.Tensor {
    const shape = x.shape;
    const inFeatures = shape[shape.length - 1];
    const weight = this.params.get(`${name}.weight`) as tf.Tensor2D;
    let out = matMulFastGrad(tf.reshape(x, [-1, inFeatures]), weight);
    if (bias) out = tf.add(out, this.params.get(`${name}.bias`));
    return tf.reshape(out, [...shape.slice(0, -1), weight.shape[1]]);
  }

  private patchMerging(x: tf.Tensor4D, name: string): tf.Tensor4D {
    const [batch, height, width, channels] = x.shape;
    if (height % 2 || width % 2)
      x = tf.pad(x, [
        [0, 0],
        [0, height % 2],
        [0, width % 2],
        [0, 0],
      ]);
    const h2 = Math.ceil(height / 2);
    const w2 = Math.ceil(width / 2);
    // [B·H/2, 2 (row parity), W/2, 2·C (column parity, channel)]
    const pairs = tf.reshape(x, [batch * h2, 2, w2, 2 * channels]);
    const evenRows = tf.reshape(tf.slice(pairs, [0, 0, 0, 0], [-1, 1, -1, -1]), [batch, h2, w2, 2 * channels]);
    const oddRows = tf.reshape(tf.slice(pairs, [0, 1, 0, 0], [-1, 1, -1, -1]), [batch, h2, w2, 2 * channels]);
    const [x0, x2] = tf.split(evenRows, 2, 3);
    const [x1, x3] = tf.split(oddRows, 2, 3);
    const merged = tf.concat([x0, x1, x2, x3], 3);
    return this.linear(this.layerNorm(merged, `${name}.norm`), `${name}.reduction`, false) as tf.Tensor4D;
  }

  private windowAttention(x: tf.Tensor4D, block: BlockPlan): tf.Tensor4D {
    const ws = SWIN_T.windowSize;
    const [batch, height, width, channels] = x.shape;
    const padBottom = (ws - (height % ws)) % ws;
    const padRight = (ws - (width % ws)) % ws;
    if (padBottom || padRight)
      x = tf.pad(x, [
        [0, 0],
        [0, padBottom],
        [0, padRight],
        [0, 0],
      ]);
    const padH = height + padBottom;
    const padW = width + padRight;
    const shiftH = ws >= padH ? 0 : block.shift;
    const shiftW = ws >= padW ? 0 : block.shift;
    if (shiftH) x = roll(x, -shiftH, 1);
    if (shiftW) x = roll(x, -shiftW, 2);
    const rowsOfWindows = padH / ws;
    const colsOfWindows = padW / ws;
    const windows = rowsOfWindows * colsOfWindows;
    const tokens = ws * ws;
    // partition: [B, nH, ws, nW, ws, C] → [B·nH·nW, ws·ws, C]
    let t: tf.Tensor = tf.reshape(x, [batch * rowsOfWindows, ws, colsOfWindows, ws * channels]);
    t = tf.reshape(tf.transpose(t, [0, 2, 1, 3]), [batch * windows, tokens, channels]);
    const heads = block.heads;
    const headDim = channels / heads;
    const qkv = this.linear(t, `${block.name}.attn.qkv`);
    const toHeads = (part: tf.Tensor) =>
      tf.transpose(tf.reshape(part, [batch * windows, tokens, heads, headDim]), [0, 2, 1, 3]);
    const [q, k, v] = tf.split(qkv, 3, 2).map(toHeads);
    let attn: tf.Tensor = matMulFastGrad(tf.mul(q, headDim ** -0.5), swapLastAxes(k));
    attn = tf.add(attn, this.relativeBias(block));
    if (shiftH || shiftW) {
      const mask = this.attentionMask(padH, padW, shiftH, shiftW);
      attn = tf.reshape(tf.add(tf.reshape(attn, [batch, windows, heads, tokens * tokens]), mask), [
        batch * windows,
        heads,
        tokens,
        tokens,
      ]);
    }
    attn = tf.softmax(attn, -1);
    let out: tf.Tensor = matMulFastGrad(attn, v);
    out = tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [batch * windows, tokens, channels]);
    out = this.linear(out, `${block.name}.attn.proj`);
    // reverse windows
    out = tf.reshape(out, [batch * rowsOfWindows, colsOfWindows, ws, ws * channels]);
    let y = tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [batch, padH, padW, channels]) as tf.Tensor4D;
    if (shiftH) y = roll(y, shiftH, 1);
    if (shiftW) y = roll(y, shiftW, 2);
    if (padBottom || padRight) y = tf.slice(y, [0, 0, 0, 0], [batch, height, width, channels]);
    return y;
  }

  /**
   * table[index] → [heads, N, N] (torchvision's _get_relative_position_bias), as tableᵀ · one-hot: exact
   * (one nonzero term per sum) and its gradient is a matrix product too, where a gather's gradient needs
   * UnsortedSegmentSum (bridged to the cpu backend on wasm: 70 % of a Swin-T training step there).
   */
  private relativeBias(block: BlockPlan): tf.Tensor {
    const tokens = SWIN_T.windowSize ** 2;
    const table = this.params.get(`${block.name}.attn.relative_position_bias_table`) as tf.Tensor2D;
    return tf.reshape(tf.matMul(table, this.relativeOneHot, true, false), [block.heads, tokens, tokens]);
  }

  /** The −100/0 mask [nW, 1, N·N] for shifted windows, built exactly as torchvision builds it. */
  private attentionMask(padH: number, padW: number, shiftH: number, shiftW: number): tf.Tensor {
    const key = `${padH}x${padW}/${shiftH},${shiftW}`;
    let mask = this.masks.get(key);
    if (!mask) {
      mask = tf.keep(tf.tensor(shiftedWindowMask(padH, padW, SWIN_T.windowSize, shiftH, shiftW), undefined, 'float32'));
      this.masks.set(key, mask);
    }
    const windows = (padH / SWIN_T.windowSize) * (padW / SWIN_T.windowSize);
    return tf.reshape(mask, [windows, 1, SWIN_T.windowSize ** 4]);
  }

  private block(x: tf.Tensor4D, block: BlockPlan, training: boolean): tf.Tensor4D {
    const dropPath = (branch: tf.Tensor): tf.Tensor => {
      if (!training || block.dropProb === 0) return branch;
      const batch = branch.shape[0];
      return tf.mul(branch, tf.tensor4d(dropPathMask(batch, block.dropProb, this.random), [batch, 1, 1, 1]));
    };
    const attended = this.windowAttention(this.layerNorm(x, `${block.name}.norm1`) as tf.Tensor4D, block);
    x = tf.add(x, dropPath(attended));
    let hidden = this.linear(this.layerNorm(x, `${block.name}.norm2`), `${block.name}.mlp.0`);
    hidden = gelu(hidden);
    x = tf.add(x, dropPath(this.linear(hidden, `${block.name}.mlp.3`)));
    return x;
  }

  /** The four stage outputs, NHWC. */
  applyBody(images: tf.Tensor4D, training: boolean): tf.Tensor4D[] {
    const p = this.params;
    const { patchSize } = SWIN_T;
    let x = tf.fused.conv2d({
      x: images,
      filter: p.get('body.features.0.0.weight') as tf.Tensor4D,
      strides: patchSize,
      pad: 'valid',
      bias: p.get('body.features.0.0.bias'),
    });
    x = this.layerNorm(x, 'body.features.0.2') as tf.Tensor4D;
    const features: tf.Tensor4D[] = [];
    this.stages.forEach((blocks, stage) => {
      if (stage > 0) x = this.patchMerging(x, `body.features.${2 * stage}`);
      for (const block of blocks) x = this.block(x, block, training);
      features.push(x);
    });
    return features;
  }

  override dispose(): void {
    super.dispose();
    this.relativeOneHot.dispose();
    for (const mask of this.masks.values()) mask.dispose();
    this.masks.clear();
  }
}

function swapLastAxes(t: tf.Tensor): tf.Tensor {
  const perm = [...Array(t.rank).keys()];
  [perm[t.rank - 2], perm[t.rank - 1]] = [perm[t.rank - 1], perm[t.rank - 2]];
  return tf.transpose(t, perm);
}

/**
 * a · b whose gradients are plain products of explicit transposes: tfjs' own matMul gradient uses the
 * transposeA/transposeB forms, which the wasm backend runs 5–10× slower than transpose + product.
 */
const matMulFastGradOp = tf.customGrad((x, y, save) => {
  const a = x as tf.Tensor;
  const b = y as tf.Tensor;
  (save as (tensors: tf.Tensor[]) => void)([a, b]);
  return {
    value: tf.matMul(a, b),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [
      tf.matMul(dy, swapLastAxes(saved[1])),
      tf.matMul(swapLastAxes(saved[0]), dy),
    ],
  };
});

function matMulFastGrad(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  return matMulFastGradOp(a, b);
}

function oneHot(index: Int32Array, rows: number): tf.Tensor2D {
  const values = new Float32Array(rows * index.length);
  index.forEach((row, column) => {
    values[row * index.length + column] = 1;
  });
  return tf.tensor2d(values, [rows, index.length]);
}

function roll(x: tf.Tensor4D, shift: number, axis: 1 | 2): tf.Tensor4D {
  const size = x.shape[axis];
  const s = ((shift % size) + size) % size;
  if (s === 0) return x;
  const begin = [0, 0, 0, 0];
  const head = [-1, -1, -1, -1];
  head[axis] = size - s;
  const tailBegin = [0, 0, 0, 0];
  tailBegin[axis] = size - s;
  // torch.roll(x, s): element i moves to i + s, so the last s entries come first.
  return tf.concat([tf.slice(x, tailBegin, [-1, -1, -1, -1]), tf.slice(x, begin, head)], axis);
}

/** torchvision's relative_position_index for a square window, flattened [(ws²)²]. */
export function relativePositionIndex(ws: number): Int32Array {
  const n = ws * ws;
  const index = new Int32Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const dy = Math.floor(i / ws) - Math.floor(j / ws) + ws - 1;
      const dx = (i % ws) - (j % ws) + ws - 1;
      index[i * n + j] = dy * (2 * ws - 1) + dx;
    }
  }
  return index;
}

/** Python slice bounds [start, stop) on a length-n axis (negative from the end, null = end). */
function pySlice(start: number, stop: number | null, n: number): [number, number] {
  const norm = (v: number) => (v < 0 ? Math.max(0, v + n) : Math.min(v, n));
  return [norm(start), stop === null ? n : norm(stop)];
}

/** The shifted-window attention mask [nW, N, N] (0 or −100), replaying torchvision's slice assignments. */
export function shiftedWindowMask(
  padH: number,
  padW: number,
  ws: number,
  shiftH: number,
  shiftW: number,
): Float32Array {
  const labels = new Float32Array(padH * padW);
  const hSlices: [number, number | null][] = [
    [0, -ws],
    [-ws, -shiftH],
    [-shiftH, null],
  ];
  const wSlices: [number, number | null][] = [
    [0, -ws],
    [-ws, -shiftW],
    [-shiftW, null],
  ];
  let count = 0;
  for (const h of hSlices) {
    for (const w of wSlices) {
      const [h0, h1] = pySlice(h[0], h[1], padH);
      const [w0, w1] = pySlice(w[0], w[1], padW);
      for (let y = h0; y < h1; y++) for (let x = w0; x < w1; x++) labels[y * padW + x] = count;
      count++;
    }
  }
  const rows = padH / ws;
  const cols = padW / ws;
  const n = ws * ws;
  const mask = new Float32Array(rows * cols * n * n);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const window = r * cols + c;
      const label = (t: number) => labels[(r * ws + Math.floor(t / ws)) * padW + c * ws + (t % ws)];
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) mask[(window * n + i) * n + j] = label(j) - label(i) !== 0 ? -100 : 0;
      }
    }
  }
  return mask;
}

function gelu(x: tf.Tensor): tf.Tensor {
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
}
