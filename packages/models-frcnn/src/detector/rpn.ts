/**
 * torchvision's region proposal network: AnchorGenerator, RPNHead (3×3 conv + ReLU, 1×1 objectness and
 * box-delta convs), proposal selection (per-level pre-NMS top-n, decode, clip, remove small, score
 * threshold, per-level NMS, post-NMS top-n) and the RPN losses (sampled BCE + smooth-L1 β = 1/9).
 *
 * The parts (`AnchorGenerator`, `RpnHead`, `RegionProposalNetwork`) own their parameters; the host-side
 * steps stay free functions, which the ONNX runtime shares.
 */
import { FedcxrError, tf } from '@fedcxr/core';
import {
  argsortDescending,
  BoxCoder,
  batchedNms,
  boxIou,
  clipBoxesInPlace,
  removeSmallBoxes,
  selectBoxes,
} from '../ops/boxes.js';
import { BalancedSampler, BETWEEN_THRESHOLDS, Matcher, type Permutation } from '../ops/matcher.js';
import { smoothL1Elements, type Tensors } from './losses.js';
import { LeafPart, type NamedParameters, normal001, type Part, prefixed } from './part.js';

const f = Math.fround;

/** Anchors centred on 0 for one level: every aspect ratio × every size, rounded (torchvision's generate_anchors). */
export function baseAnchors(sizes: readonly number[], aspectRatios: readonly number[]): Float32Array {
  const out: number[] = [];
  for (const ratio of aspectRatios) {
    const hRatio = f(Math.sqrt(f(ratio)));
    const wRatio = f(1 / hRatio);
    for (const size of sizes) {
      const ws = f(wRatio * size);
      const hs = f(hRatio * size);
      out.push(
        roundHalfEven(f(-ws / 2)),
        roundHalfEven(f(-hs / 2)),
        roundHalfEven(f(ws / 2)),
        roundHalfEven(f(hs / 2)),
      );
    }
  }
  return Float32Array.from(out);
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Anchors for one feature map of [height, width] cells: (y, x, anchor) order, as torchvision's grid_anchors. */
export function gridAnchors(
  base: Float32Array,
  gridHeight: number,
  gridWidth: number,
  strideY: number,
  strideX: number,
): Float32Array {
  const perCell = base.length / 4;
  const out = new Float32Array(gridHeight * gridWidth * perCell * 4);
  let k = 0;
  for (let y = 0; y < gridHeight; y++) {
    for (let x = 0; x < gridWidth; x++) {
      const sx = x * strideX;
      const sy = y * strideY;
      for (let a = 0; a < perCell; a++) {
        out[k++] = f(sx + base[a * 4]);
        out[k++] = f(sy + base[a * 4 + 1]);
        out[k++] = f(sx + base[a * 4 + 2]);
        out[k++] = f(sy + base[a * 4 + 3]);
      }
    }
  }
  return out;
}

export interface RpnOptions {
  anchorSizes: readonly (readonly number[])[];
  aspectRatios: readonly (readonly number[])[];
  preNmsTopN: { training: number; testing: number };
  postNmsTopN: { training: number; testing: number };
  nmsThresh: number;
  scoreThresh: number;
  minSize: number;
}

/** Head outputs for a batch, flattened over levels in (level, y, x, anchor) order. */
export interface RpnHeadOutput {
  /** [N, totalAnchors] objectness logits. */
  objectness: tf.Tensor2D;
  /** [N, totalAnchors, 4] box deltas. */
  deltas: tf.Tensor3D;
  anchorsPerLevel: number[];
}

export const RPN_BOX_CODER = new BoxCoder([1, 1, 1, 1]);

/** Anchors for the padded batch: one array for all levels, and the count per level. */
export function anchorsForBatch(
  options: Pick<RpnOptions, 'anchorSizes' | 'aspectRatios'>,
  batchSize: readonly [number, number],
  featureSizes: readonly (readonly [number, number])[],
): { anchors: Float32Array; perLevel: number[] } {
  const levels = featureSizes.map(([h, w], level) => {
    const base = baseAnchors(options.anchorSizes[level], options.aspectRatios[level]);
    return gridAnchors(base, h, w, Math.floor(batchSize[0] / h), Math.floor(batchSize[1] / w));
  });
  const anchors = new Float32Array(levels.reduce((n, a) => n + a.length, 0));
  let offset = 0;
  for (const level of levels) {
    anchors.set(level, offset);
    offset += level.length;
  }
  return { anchors, perLevel: levels.map((a) => a.length / 4) };
}

/**
 * torchvision's RegionProposalNetwork.filter_proposals for one batch, on the host. objectness: [N × A]
 * logits; deltas: [N × A × 4]. Returns the proposals per image (and their scores, for inspection).
 */
export function selectProposals(
  objectness: Float32Array,
  deltas: Float32Array,
  anchors: Float32Array,
  anchorsPerLevel: readonly number[],
  imageSizes: readonly (readonly [number, number])[],
  options: RpnOptions,
  training: boolean,
): { boxes: Float32Array; scores: Float32Array }[] {
  const total = anchors.length / 4;
  const preNms = training ? options.preNmsTopN.training : options.preNmsTopN.testing;
  const postNms = training ? options.postNmsTopN.training : options.postNmsTopN.testing;
  return imageSizes.map(([height, width], image) => {
    const logits = objectness.subarray(image * total, (image + 1) * total);
    const picked: number[] = [];
    const levelOf: number[] = [];
    let start = 0;
    anchorsPerLevel.forEach((count, level) => {
      const indices = Array.from({ length: count }, (_, i) => start + i);
      const top = argsortDescending(logits, indices).slice(0, Math.min(preNms, count));
      for (const index of top) {
        picked.push(index);
        levelOf.push(level);
      }
      start += count;
    });
    const pickedDeltas = new Float32Array(picked.length * 4);
    picked.forEach((index, k) => {
      pickedDeltas.set(deltas.subarray((image * total + index) * 4, (image * total + index + 1) * 4), k * 4);
    });
    const boxes = clipBoxesInPlace(RPN_BOX_CODER.decode(pickedDeltas, selectBoxes(anchors, picked)), height, width);
    const scores = Float32Array.from(picked, (index) => f(1 / (1 + Math.exp(-logits[index]))));
    const threshold = f(options.scoreThresh);
    const keep = removeSmallBoxes(boxes, options.minSize).filter((k) => scores[k] >= threshold);
    const keptBoxes = selectBoxes(boxes, keep);
    const keptScores = Float32Array.from(keep, (k) => scores[k]);
    const keptLevels = Int32Array.from(keep, (k) => levelOf[k]);
    const survivors = batchedNms(keptBoxes, keptScores, keptLevels, options.nmsThresh).slice(0, postNms);
    return { boxes: selectBoxes(keptBoxes, survivors), scores: Float32Array.from(survivors, (k) => keptScores[k]) };
  });
}

/**
 * RPN training targets for one image (assign_targets_to_anchors): label 1 foreground, 0 background,
 * -1 ignored; regression targets toward the matched ground-truth box.
 */
export function rpnTargets(
  anchors: Float32Array,
  gtBoxes: Float32Array,
  matcher: Matcher,
): { labels: Int32Array; targets: Float32Array } {
  const numAnchors = anchors.length / 4;
  const labels = new Int32Array(numAnchors);
  if (gtBoxes.length === 0) return { labels, targets: new Float32Array(numAnchors * 4) };
  const numGt = gtBoxes.length / 4;
  const matches = matcher.match(boxIou(gtBoxes, anchors), numGt, numAnchors);
  const matched = new Float32Array(numAnchors * 4);
  for (let i = 0; i < numAnchors; i++) {
    const m = Math.max(matches[i], 0);
    matched.set(gtBoxes.subarray(m * 4, m * 4 + 4), i * 4);
    labels[i] = matches[i] >= 0 ? 1 : matches[i] === BETWEEN_THRESHOLDS ? -1 : 0;
  }
  return { labels, targets: RPN_BOX_CODER.encode(matched, anchors) };
}

/** torchvision's RegionProposalNetwork.compute_loss. */
export function rpnLosses(
  head: RpnHeadOutput,
  anchors: Float32Array,
  gtBoxesPerImage: readonly Float32Array[],
  matcher: Matcher,
  sampler: BalancedSampler,
): { lossObjectness: tf.Scalar; lossRpnBoxReg: tf.Scalar } {
  const numAnchors = anchors.length / 4;
  const positive: number[] = [];
  const negative: number[] = [];
  const labelsAll = new Float32Array(gtBoxesPerImage.length * numAnchors);
  const targetsAll = new Float32Array(gtBoxesPerImage.length * numAnchors * 4);
  gtBoxesPerImage.forEach((gt, image) => {
    const { labels, targets } = rpnTargets(anchors, gt, matcher);
    const sampled = sampler.sample(labels);
    const offset = image * numAnchors;
    for (let i = 0; i < numAnchors; i++) {
      if (sampled.positive[i]) positive.push(offset + i);
      if (sampled.negative[i]) negative.push(offset + i);
      labelsAll[offset + i] = labels[i];
    }
    targetsAll.set(targets, offset * 4);
  });
  const sampledMask = new Float32Array(labelsAll.length);
  const positiveMask = new Float32Array(labelsAll.length);
  for (const i of positive) {
    sampledMask[i] = 1;
    positiveMask[i] = 1;
  }
  for (const i of negative) sampledMask[i] = 1;
  const numSampled = positive.length + negative.length;
  return tf.tidy(() => {
    const logits = tf.reshape(head.objectness, [-1]);
    const perAnchor = binaryCrossEntropyWithLogitsElements(logits, tf.tensor1d(labelsAll.map((l) => Math.max(l, 0))));
    const lossObjectness = tf.div(tf.sum(tf.mul(perAnchor, tf.tensor1d(sampledMask))), numSampled) as tf.Scalar;
    const boxTerms = smoothL1Elements(
      tf.reshape(head.deltas, [-1, 4]),
      tf.tensor2d(targetsAll, [labelsAll.length, 4]),
      1 / 9,
    );
    const masked = tf.mul(boxTerms, tf.tensor2d(positiveMask, [labelsAll.length, 1]));
    const lossRpnBoxReg = tf.div(tf.sum(masked), numSampled) as tf.Scalar;
    return { lossObjectness, lossRpnBoxReg } satisfies Tensors;
  });
}

/** F.binary_cross_entropy_with_logits per element, in its numerically stable form. */
export function binaryCrossEntropyWithLogitsElements(logits: tf.Tensor, labels: tf.Tensor): tf.Tensor {
  return tf.tidy(() =>
    tf.add(tf.sub(tf.relu(logits), tf.mul(logits, labels)), tf.log1p(tf.exp(tf.neg(tf.abs(logits))))),
  );
}

/** Every RPN setting: proposal selection (RpnOptions) and training (matcher thresholds, sampler). */
export interface RpnSettings extends RpnOptions {
  fgIouThresh: number;
  bgIouThresh: number;
  batchSizePerImage: number;
  positiveFraction: number;
}

/** torchvision's AnchorGenerator: per level, every size × every aspect ratio at each cell. */
export class AnchorGenerator {
  constructor(
    readonly sizes: readonly (readonly number[])[],
    readonly aspectRatios: readonly (readonly number[])[],
  ) {
    if (sizes.length !== aspectRatios.length) {
      throw new FedcxrError(
        'invalid_config',
        `anchor sizes for ${sizes.length} levels but aspect ratios for ${aspectRatios.length}`,
      );
    }
  }

  /** Anchors per cell of each level (torchvision's num_anchors_per_location). */
  numAnchorsPerLocation(): number[] {
    return this.sizes.map((s, level) => s.length * this.aspectRatios[level].length);
  }

  /** Anchors for a padded batch of [height, width] with feature maps of the given sizes. */
  anchors(
    batchSize: readonly [number, number],
    featureSizes: readonly (readonly [number, number])[],
  ): { anchors: Float32Array; perLevel: number[] } {
    return anchorsForBatch({ anchorSizes: this.sizes, aspectRatios: this.aspectRatios }, batchSize, featureSizes);
  }
}

/** What the RPN needs of a head: objectness and box deltas per anchor on every level. */
export interface RpnHeadPart extends Part {
  /** Anchors per feature-map cell the head predicts for. */
  readonly numAnchors: number;
  /** Head outputs on every level, flattened in (level, y, x, anchor) order. */
  apply(levels: readonly tf.Tensor4D[]): RpnHeadOutput;
}

/**
 * torchvision's RPNHead: a shared 3×3 conv + ReLU, then 1×1 convs for objectness and box deltas. Weights
 * `conv.0.0.*`, `cls_logits.*`, `bbox_pred.*`; convs ~ N(0, 0.01) drawn from seed + 1…3, biases 0.
 */
export class RpnHead extends LeafPart implements RpnHeadPart {
  constructor(
    readonly inChannels: number,
    readonly numAnchors: number,
    options: { seed?: number } = {},
  ) {
    super();
    const seed = options.seed ?? 0;
    const p = this.params;
    p.add('conv.0.0.weight', normal001([3, 3, inChannels, inChannels], seed + 1), 'conv', true);
    p.add('conv.0.0.bias', tf.zeros([inChannels]), 'plain', true);
    p.add('cls_logits.weight', normal001([1, 1, inChannels, numAnchors], seed + 2), 'conv', true);
    p.add('cls_logits.bias', tf.zeros([numAnchors]), 'plain', true);
    p.add('bbox_pred.weight', normal001([1, 1, inChannels, numAnchors * 4], seed + 3), 'conv', true);
    p.add('bbox_pred.bias', tf.zeros([numAnchors * 4]), 'plain', true);
  }

  apply(levels: readonly tf.Tensor4D[]): RpnHeadOutput {
    const w = (name: string) => this.params.get(name);
    return tf.tidy(() => {
      const objectness: tf.Tensor2D[] = [];
      const deltas: tf.Tensor3D[] = [];
      const counts: number[] = [];
      for (const level of levels) {
        const [n, h, width] = level.shape;
        const hidden = tf.relu(
          tf.add(tf.conv2d(level, w('conv.0.0.weight') as tf.Tensor4D, 1, 'same'), w('conv.0.0.bias')),
        ) as tf.Tensor4D;
        const logits = tf.add(
          tf.conv2d(hidden, w('cls_logits.weight') as tf.Tensor4D, 1, 'valid'),
          w('cls_logits.bias'),
        );
        const boxes = tf.add(tf.conv2d(hidden, w('bbox_pred.weight') as tf.Tensor4D, 1, 'valid'), w('bbox_pred.bias'));
        const a = logits.shape[3] ?? 0;
        objectness.push(tf.reshape(logits, [n, h * width * a]));
        deltas.push(tf.reshape(boxes, [n, h * width * a, 4]));
        counts.push(h * width * a);
      }
      return {
        objectness: objectness.length === 1 ? objectness[0] : tf.concat(objectness, 1),
        deltas: deltas.length === 1 ? deltas[0] : tf.concat(deltas, 1),
        anchorsPerLevel: counts,
      };
    });
  }
}

/**
 * torchvision's RegionProposalNetwork: an anchor generator, a head (its parameters under `head.`), proposal
 * selection and, in training, anchor matching, balanced sampling and the RPN losses.
 */
export class RegionProposalNetwork implements Part {
  readonly anchorGenerator: AnchorGenerator;
  private currentHead: RpnHeadPart;
  private readonly matcher: Matcher;
  private readonly sampler: BalancedSampler;
  private readonly selection: Omit<RpnSettings, 'anchorSizes' | 'aspectRatios'>;

  constructor(parts: {
    anchorGenerator: AnchorGenerator;
    head: RpnHeadPart;
    /** Selection and training settings (anchor sizes and ratios, if present, are the generator's business). */
    settings: Omit<RpnSettings, 'anchorSizes' | 'aspectRatios'>;
    /** Draws the balanced sampler's permutations (torch.randperm's role). */
    permutation: Permutation;
  }) {
    const s = parts.settings;
    this.anchorGenerator = parts.anchorGenerator;
    this.selection = {
      preNmsTopN: s.preNmsTopN,
      postNmsTopN: s.postNmsTopN,
      nmsThresh: s.nmsThresh,
      scoreThresh: s.scoreThresh,
      minSize: s.minSize,
      fgIouThresh: s.fgIouThresh,
      bgIouThresh: s.bgIouThresh,
      batchSizePerImage: s.batchSizePerImage,
      positiveFraction: s.positiveFraction,
    };
    this.matcher = new Matcher(s.fgIouThresh, s.bgIouThresh, true);
    this.sampler = new BalancedSampler(s.batchSizePerImage, s.positiveFraction, parts.permutation);
    this.currentHead = RegionProposalNetwork.checkHead(parts.head, parts.anchorGenerator);
  }

  get head(): RpnHeadPart {
    return this.currentHead;
  }

  /** Every setting, the anchor generator's sizes and ratios included (what the ONNX runtime reads). */
  get settings(): RpnSettings {
    return {
      anchorSizes: this.anchorGenerator.sizes,
      aspectRatios: this.anchorGenerator.aspectRatios,
      ...this.selection,
    };
  }

  /** Puts another head in place (torchvision's `model.rpn.head = …`); returns the previous one, not disposed. */
  setHead(head: RpnHeadPart): RpnHeadPart {
    const previous = this.currentHead;
    this.currentHead = RegionProposalNetwork.checkHead(head, this.anchorGenerator);
    return previous;
  }

  private static checkHead(head: RpnHeadPart, anchors: AnchorGenerator): RpnHeadPart {
    const perLocation = anchors.numAnchorsPerLocation();
    if (perLocation.some((n) => n !== head.numAnchors)) {
      throw new FedcxrError(
        'invalid_config',
        `the RPN head predicts ${head.numAnchors} anchors per location but the anchor generator makes ${perLocation.join(', ')}`,
      );
    }
    return head;
  }

  /** The head on every level: device work only, no host read. */
  applyHead(levels: readonly tf.Tensor4D[]): RpnHeadOutput {
    return this.currentHead.apply(levels);
  }

  /** Anchors and proposal selection on the host (reads the head's outputs). */
  propose(
    head: RpnHeadOutput,
    batchSize: readonly [number, number],
    featureSizes: readonly (readonly [number, number])[],
    imageSizes: readonly (readonly [number, number])[],
    training: boolean,
  ): { anchors: Float32Array; proposals: { boxes: Float32Array; scores: Float32Array }[] } {
    const { anchors } = this.anchorGenerator.anchors(batchSize, featureSizes);
    const proposals = selectProposals(
      head.objectness.dataSync() as Float32Array,
      head.deltas.dataSync() as Float32Array,
      anchors,
      head.anchorsPerLevel,
      imageSizes,
      this.settings,
      training,
    );
    return { anchors, proposals };
  }

  /** torchvision's RegionProposalNetwork.compute_loss, with this RPN's matcher and sampler. */
  losses(
    head: RpnHeadOutput,
    anchors: Float32Array,
    gtBoxesPerImage: readonly Float32Array[],
  ): { lossObjectness: tf.Scalar; lossRpnBoxReg: tf.Scalar } {
    return rpnLosses(head, anchors, gtBoxesPerImage, this.matcher, this.sampler);
  }

  parameters(): NamedParameters {
    return prefixed('head.', this.currentHead.parameters());
  }

  dispose(): void {
    this.currentHead.dispose();
  }
}
