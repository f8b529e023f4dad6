/**
 * Faster R-CNN as torchvision composes it (GeneralizedRCNN): parts that own their parameters, one named
 * state dict over all of them, a predictor swapped for transfer learning and other parts swapped in place.
 */
import { type DetectorImage, type DetectorTarget, initEngine, tf } from '@fedcxr/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ParamStore } from '../backbones/params.js';
import { TINY_TEST_DETECTOR } from '../testing.js';
import { FasterRcnn, type FasterRcnnOptions } from './faster-rcnn.js';
import type { NamedParameters } from './part.js';
import { type BoxHead, FastRcnnPredictor, TwoMlpHead } from './roi-heads.js';
import type { RpnHeadOutput, RpnHeadPart } from './rpn.js';
import { TinyTestBackbone } from './tiny-backbone.js';

const OPTIONS: FasterRcnnOptions = { ...TINY_TEST_DETECTOR, minSize: 96, maxSize: 128, seed: 5 };

function image(seed: number): DetectorImage {
  const height = 90;
  const width = 110;
  const pixels = Float32Array.from({ length: height * width }, (_, i) => ((i * 7919 + seed * 131) % 255) / 255);
  return { pixels, height, width, channels: 1 };
}

const images = [image(1), image(2)];
const targets: DetectorTarget[] = [
  { boxes: Float32Array.from([10, 10, 50, 60]), labels: Int32Array.from([1]) },
  { boxes: Float32Array.from([20, 5, 90, 70]), labels: Int32Array.from([2]) },
];

function build(): FasterRcnn {
  return new FasterRcnn(new TinyTestBackbone(3), OPTIONS);
}

function same(a: { shape: number[]; data: ArrayLike<number> }, b: { shape: number[]; data: ArrayLike<number> }) {
  return a.shape.join() === b.shape.join() && Array.from(a.data).every((v, i) => Object.is(v, b.data[i]));
}

/** The sum of the losses and the gradient of each trainable variable (by variable name). */
function lossGradients(model: FasterRcnn, batchTargets: DetectorTarget[] = targets) {
  const { value, grads } = tf.variableGrads(
    () => tf.addN(Object.values(model.losses(images, batchTargets))) as tf.Scalar,
    model.trainableVariables(),
  );
  const loss = value.dataSync()[0];
  value.dispose();
  return { loss, grads };
}

describe('Faster R-CNN composed of parts', () => {
  beforeAll(async () => {
    await initEngine({ backend: 'wasm' });
  });

  it('names every parameter once, by torchvision key, parts in torchvision state_dict order', () => {
    const model = build();
    const keys = [...model.getWeights().keys()];
    expect(keys.slice(0, 6).every((k) => k.startsWith('backbone.'))).toBe(true);
    expect(keys.slice(6)).toEqual([
      'rpn.head.conv.0.0.weight',
      'rpn.head.conv.0.0.bias',
      'rpn.head.cls_logits.weight',
      'rpn.head.cls_logits.bias',
      'rpn.head.bbox_pred.weight',
      'rpn.head.bbox_pred.bias',
      'roi_heads.box_head.fc6.weight',
      'roi_heads.box_head.fc6.bias',
      'roi_heads.box_head.fc7.weight',
      'roi_heads.box_head.fc7.bias',
      'roi_heads.box_predictor.cls_score.weight',
      'roi_heads.box_predictor.cls_score.bias',
      'roi_heads.box_predictor.bbox_pred.weight',
      'roi_heads.box_predictor.bbox_pred.bias',
    ]);
    // The parts own them: the detector's parameters are the parts' variables under their prefixes.
    const params = model.parameters();
    expect(params.get('rpn.head.cls_logits.weight')?.variable).toBe(
      model.rpn.head.parameters().get('cls_logits.weight')?.variable,
    );
    expect(params.get('roi_heads.box_predictor.bbox_pred.bias')?.variable).toBe(
      model.roiHeads.boxPredictor.parameters().get('bbox_pred.bias')?.variable,
    );
    expect(model.trainableVariables()).toHaveLength(keys.length);
    // Two detectors with the same keys coexist (the parts' variables get engine-unique names).
    const other = build();
    expect(
      same(
        other.getWeights().get('roi_heads.box_head.fc6.weight')!,
        model.getWeights().get('roi_heads.box_head.fc6.weight')!,
      ),
    ).toBe(true);
    other.dispose();
    model.dispose();
  });

  it('withPredictor: a fresh predictor for another class count, every other weight unchanged', async () => {
    const model = build();
    const before = model.getWeights();
    const tensorsBefore = tf.memory().numTensors;
    const classes = ['__background__', 'nodule', 'mass', 'effusion', 'opacity', 'fracture'];
    expect(model.withPredictor(5, { classes, seed: 9 })).toBe(model);
    // The old predictor's four variables went, the new one's four came: nothing leaked.
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    expect(model.numClasses).toBe(5);
    expect(model.classes).toEqual(classes);
    expect(model.settings.classes).toEqual(classes);

    const after = model.getWeights();
    expect([...after.keys()]).toEqual([...before.keys()]);
    expect(after.get('roi_heads.box_predictor.cls_score.weight')?.shape).toEqual([6, 32]);
    expect(after.get('roi_heads.box_predictor.cls_score.bias')?.shape).toEqual([6]);
    expect(after.get('roi_heads.box_predictor.bbox_pred.weight')?.shape).toEqual([24, 32]);
    expect(after.get('roi_heads.box_predictor.bbox_pred.bias')?.shape).toEqual([24]);
    for (const [key, tensor] of before) {
      if (key.startsWith('roi_heads.box_predictor.')) continue;
      expect(same(after.get(key)!, tensor), key).toBe(true);
    }
    // Freshly initialized as torchvision's FastRCNNPredictor(in_features, num_classes): nn.Linear's
    // U(±1/√in), the draws of a standalone predictor with the same seed.
    const fresh = new FastRcnnPredictor(32, 5, { seed: 9 });
    for (const [key, { variable }] of fresh.parameters()) {
      const mine = model.roiHeads.boxPredictor.parameters().get(key)!.variable;
      expect(Array.from(mine.dataSync()), key).toEqual(Array.from(variable.dataSync()));
      const values = Array.from(mine.dataSync());
      expect(Math.max(...values.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(32));
      expect(Math.max(...values.map(Math.abs))).toBeGreaterThan(0);
    }
    fresh.dispose();

    // The detector predicts over the new classes and trains them: label 5 is accepted, the gradient
    // reaches the new predictor and the backbone.
    const detections = await model.predict(images);
    expect(detections.flat().length).toBeGreaterThan(0);
    expect(detections.flat().every((d) => d.label >= 1 && d.label <= 5)).toBe(true);
    const { grads } = lossGradients(model, [targets[0], { ...targets[1], labels: Int32Array.from([5]) }]);
    const clsScore = model.parameters().get('roi_heads.box_predictor.cls_score.weight')!.variable;
    expect(grads[clsScore.name].shape).toEqual([32, 6]);
    expect(tf.max(tf.abs(grads[clsScore.name])).dataSync()[0]).toBeGreaterThan(0);
    const conv1 = model.parameters().get('backbone.conv1.weight')!.variable;
    expect(tf.max(tf.abs(grads[conv1.name])).dataSync()[0]).toBeGreaterThan(0);
    for (const g of Object.values(grads)) g.dispose();
    expect(() => model.losses(images, [targets[0], { ...targets[1], labels: Int32Array.from([6]) }])).toThrow(
      /label 6 outside 1\.\.5/,
    );

    // A checkpoint of the new layout loads strictly; the old one no longer fits the predictor.
    model.setWeights(after);
    expect(() => model.setWeights(before)).toThrow(/cls_score\.weight: shape \[3, 32\] but the model has \[6, 32\]/);
    // Default names when none are given.
    model.withPredictor(1);
    expect(model.classes).toEqual(['__background__', 'class_1']);
    expect(() => model.withPredictor(2, { classes: ['__background__', 'a'] })).toThrow(/2 names/);
    expect(() => model.withPredictor(0)).toThrow(/integer ≥ 1/);
    model.dispose();
  });

  it('swaps a box head for another part: its weights, its features, its gradients', async () => {
    const model = build();
    // Incompatible parts are refused, naming the mismatch.
    const wide = new TwoMlpHead(16, 7, 64);
    expect(() => model.replacePart('roi_heads.box_head', wide)).toThrow(/gives 64 features .* takes 32/);
    wide.dispose();

    const head = new OneLayerBoxHead(16 * 7 * 7, 32);
    model.replacePart('roi_heads.box_head', head);
    expect(model.roiHeads.boxHead).toBe(head);
    const keys = [...model.getWeights().keys()];
    expect(keys.filter((k) => k.startsWith('roi_heads.box_head.'))).toEqual([
      'roi_heads.box_head.fc.weight',
      'roi_heads.box_head.fc.bias',
    ]);
    expect(model.settings.roi.representationSize).toBe(32);
    const detections = await model.predict(images);
    expect(head.calls).toBeGreaterThan(0);
    expect(detections.flat().length).toBeGreaterThan(0);
    const { loss, grads } = lossGradients(model);
    expect(Number.isFinite(loss)).toBe(true);
    const fc = model.parameters().get('roi_heads.box_head.fc.weight')!.variable;
    expect(tf.max(tf.abs(grads[fc.name])).dataSync()[0]).toBeGreaterThan(0);
    for (const g of Object.values(grads)) g.dispose();
    model.dispose();
  });

  it('swaps the RPN head (the old one kept on request) and builds with given parts', async () => {
    const model = build();
    const reference = await model.predict(images);
    const original = model.rpn.head;
    const counting = new CountingRpnHead(original);
    model.replacePart('rpn.head', counting, { keepOld: true });
    // The same weights through the new part: the same detections, and the part did run.
    expect(await model.predict(images)).toEqual(reference);
    expect(counting.calls).toBe(1);
    expect(() => model.replacePart('rpn.head', new CountingRpnHead(original, 4))).toThrow(
      /predicts 4 anchors per location but the anchor generator makes 3/,
    );

    // torchvision's FasterRCNN(…, box_predictor=…): a given predictor must agree with numClasses.
    const predictor = new FastRcnnPredictor(32, 4);
    expect(() => new FasterRcnn(new TinyTestBackbone(3), { ...OPTIONS, parts: { boxPredictor: predictor } })).toThrow(
      /has 4 classes but numClasses says 2/,
    );
    const built = new FasterRcnn(new TinyTestBackbone(3), {
      ...OPTIONS,
      numClasses: 4,
      parts: { boxPredictor: predictor },
    });
    expect(built.roiHeads.boxPredictor).toBe(predictor);
    expect(built.getWeights().get('roi_heads.box_predictor.cls_score.weight')?.shape).toEqual([5, 32]);
    built.dispose();
    model.dispose();
  });
});

/** A box head of one linear layer + ReLU (a part defined outside the package, as a user would). */
class OneLayerBoxHead implements BoxHead {
  calls = 0;
  private readonly params = new ParamStore('');

  constructor(
    inFeatures: number,
    readonly outFeatures: number,
  ) {
    this.params.add(
      'fc.weight',
      tf.randomUniform([inFeatures, outFeatures], -0.05, 0.05, 'float32', 1),
      'linear',
      true,
    );
    this.params.add('fc.bias', tf.zeros([outFeatures]), 'plain', true);
  }

  apply(pooled: tf.Tensor4D): tf.Tensor2D {
    this.calls++;
    return tf.tidy(() => {
      const flat = tf.reshape(tf.transpose(pooled, [0, 3, 1, 2]), [pooled.shape[0], -1]) as tf.Tensor2D;
      return tf.relu(tf.add(tf.matMul(flat, this.params.get('fc.weight') as tf.Tensor2D), this.params.get('fc.bias')));
    }) as tf.Tensor2D;
  }

  parameters(): NamedParameters {
    return this.params.parameters();
  }

  dispose(): void {
    this.params.dispose();
  }
}

/** An RPN head that delegates to another and counts its calls. */
class CountingRpnHead implements RpnHeadPart {
  calls = 0;

  constructor(
    private readonly inner: RpnHeadPart,
    readonly numAnchors = inner.numAnchors,
  ) {}

  apply(levels: readonly tf.Tensor4D[]): RpnHeadOutput {
    this.calls++;
    return this.inner.apply(levels);
  }

  parameters(): NamedParameters {
    return this.inner.parameters();
  }

  dispose(): void {
    this.inner.dispose();
  }
}
