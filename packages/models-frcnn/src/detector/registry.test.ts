import {
  backbones,
  type Detector,
  detectors,
  FedcxrError,
  initEngine,
  TORCHVISION_PREPROCESSING,
  tf,
} from '@fedcxr/core';
import { describe, expect, it } from 'vitest';
import '../backbones/index.js';
import { COCO_CLASSES } from '../weights/known.js';
import { fasterRcnnOptionsSchema, registerFasterRcnn } from './faster-rcnn.js';

describe('faster_rcnn built from config through the registries', async () => {
  await initEngine({ backend: 'wasm' });
  registerFasterRcnn();

  it('entries carry their options schema, known weights, preprocessing and aliases', () => {
    const frcnn = detectors.entry('faster_rcnn');
    expect(frcnn.options).toBe(fasterRcnnOptionsSchema);
    expect(frcnn.preprocessing).toEqual(TORCHVISION_PREPROCESSING);
    expect(frcnn.weights.fasterrcnn_resnet50_fpn_coco).toMatchObject({
      url: 'https://download.pytorch.org/models/fasterrcnn_resnet50_fpn_coco-258fb6c6.pth',
      arch: 'resnet50_fpn',
      layout: 'detector',
      classes: COCO_CLASSES,
    });
    expect(detectors.resolve('fasterrcnn')).toBe('faster_rcnn');
    const expected: [string, string, string][] = [
      ['resnet18_fpn', 'resnet18', 'resnet18-f37072fd.pth'],
      ['resnet50_fpn', 'resnet50', 'resnet50-0676ba61.pth'],
      ['resnet101_fpn', 'resnet101', 'resnet101-63fe2227.pth'],
      ['swin_t_fpn', 'swin_t', 'swin_t-704ceda3.pth'],
    ];
    for (const [name, weights, file] of expected) {
      const entry = backbones.entry(name);
      expect(Object.keys(entry.weights)).toEqual([weights]);
      expect(entry.weights[weights]).toMatchObject({ arch: name, layout: 'imagenet' });
      expect(entry.weights[weights].url.endsWith(`/${file}`)).toBe(true);
      expect(entry.preprocessing).toEqual(TORCHVISION_PREPROCESSING);
      // torchvision's detector builder name resolves to the backbone (`--arch fasterrcnn_resnet50_fpn`).
      expect(entry.aliases).toEqual([`fasterrcnn_${name}`]);
      expect(backbones.resolve(`fasterrcnn_${name}`)).toBe(name);
    }
  });

  it('validates options through the schema before building anything, naming the option', () => {
    const tensors = tf.memory().numTensors;
    expect(() => detectors.build('faster_rcnn', { backbone: 'resnet18_fpn', numClasses: 0 })).toThrow(
      /numClasses: Too small/,
    );
    expect(() =>
      detectors.build('faster_rcnn', { backbone: 'resnet18_fpn', numClasses: 2, roi: { positiveFraction: 2 } }),
    ).toThrow(/roi\.positiveFraction: /);
    expect(() => detectors.build('faster_rcnn', { backbone: 'resnet18_fpn', numClasses: 2, minSize: '800' })).toThrow(
      /minSize: .*number/,
    );
    expect(() => detectors.build('faster_rcnn', { backbone: 'resnet18_fpn', numClasses: 2, permutation: 3 })).toThrow(
      /permutation: a function/,
    );
    expect(() => backbones.build('resnet18_fpn', { trainableLayers: 6 })).toThrow(/trainableLayers: Too big/);
    expect(() => backbones.build('swin_t_fpn', { stochasticDepthProb: 1.5 })).toThrow(/stochasticDepthProb: Too big/);
    expect(tf.memory().numTensors).toBe(tensors);
    // Settings the schema does not name pass through to the factory.
    expect(fasterRcnnOptionsSchema.parse({ backbone: 'x', numClasses: 1, random: 'kept' }).random).toBe('kept');
  });

  it('swaps backbones by name and keeps torchvision names and layouts (Swin-T tables stay 2-D as in torch)', () => {
    for (const backbone of ['resnet18_fpn', 'swin_t_fpn']) {
      // Zero-initialized backbones: building Swin-T with random draws costs seconds and proves nothing here.
      const model = detectors.build('faster_rcnn', { backbone, numClasses: 3, backboneOptions: { randomInit: false } });
      const weights = model.getWeights();
      expect(weights.get('rpn.head.conv.0.0.weight')?.shape).toEqual([256, 256, 3, 3]);
      expect(weights.get('rpn.head.cls_logits.weight')?.shape).toEqual([3, 256, 1, 1]);
      expect(weights.get('roi_heads.box_head.fc6.weight')?.shape).toEqual([1024, 256 * 7 * 7]);
      expect(weights.get('roi_heads.box_predictor.bbox_pred.weight')?.shape).toEqual([16, 1024]);
      if (backbone === 'swin_t_fpn') {
        const table = [...weights].find(([name]) => name.endsWith('relative_position_bias_table'));
        expect(table?.[0].startsWith('backbone.')).toBe(true);
        expect(table?.[1].shape).toEqual([169, 3]);
      } else {
        expect(weights.get('backbone.body.conv1.weight')?.shape).toEqual([64, 3, 7, 7]);
      }
      // A strict round trip through torch layouts is accepted (the tiny parity test checks the values).
      model.setWeights(weights);
      model.dispose();
    }
  });

  it('rejects a checkpoint with missing or misshapen weights, naming them', () => {
    const model = detectors.build('faster_rcnn', { backbone: 'resnet18_fpn', numClasses: 2 });
    const weights = model.getWeights();
    weights.delete('rpn.head.bbox_pred.bias');
    const fc7 = weights.get('roi_heads.box_head.fc7.weight');
    if (fc7) weights.set('roi_heads.box_head.fc7.weight', { ...fc7, shape: [512, 2048] });
    expect(() => model.setWeights(weights)).toThrow(/missing rpn\.head\.bbox_pred\.bias.*fc7\.weight: shape/);
    model.dispose();
  });

  it('predicts in original pixels for a grey image of any size, and validates targets', async () => {
    const model: Detector = detectors.build('faster_rcnn', {
      backbone: 'resnet18_fpn',
      numClasses: 2,
      minSize: 64,
      maxSize: 96,
    });
    const height = 150;
    const width = 110;
    const pixels = Float32Array.from({ length: height * width }, (_, i) => ((i * 7919) % 255) / 255);
    const [detections] = await model.predict([{ pixels, height, width, channels: 1 }]);
    expect(detections.length).toBeLessThanOrEqual(100);
    for (const d of detections) {
      expect(d.box[0]).toBeGreaterThanOrEqual(0);
      expect(d.box[2]).toBeLessThanOrEqual(width);
      expect(d.box[3]).toBeLessThanOrEqual(height);
      expect(d.score).toBeGreaterThan(0.05);
    }
    expect(() =>
      model.losses(
        [{ pixels, height, width, channels: 1 }],
        [{ boxes: Float32Array.from([5, 5, 2, 9]), labels: Int32Array.from([1]) }],
      ),
    ).toThrow(FedcxrError);
    expect(backbones.has('resnet50_fpn')).toBe(true);
    model.dispose();
  });

  it('answers no detections (not a wasm crash) when no proposal survives', async () => {
    // An objectness threshold no sigmoid reaches leaves zero proposals: the box head sees [0, 7, 7, C].
    const model = detectors.build('faster_rcnn', {
      backbone: 'resnet18_fpn',
      numClasses: 2,
      minSize: 64,
      maxSize: 64,
      rpn: { scoreThresh: 1.5 },
    });
    const pixels = Float32Array.from({ length: 64 * 64 }, (_, i) => (i % 13) / 13);
    const found = await model.predict([
      { pixels, height: 64, width: 64, channels: 1 },
      { pixels, height: 64, width: 64, channels: 1 },
    ]);
    expect(found).toEqual([[], []]);
    model.dispose();
  });
});
