import { backbones, type Detector, detectors, FedcxrError, initEngine } from '@fedcxr/core';
import { describe, expect, it } from 'vitest';
import '../backbones/index.js';
import { registerFasterRcnn } from './faster-rcnn.js';

describe('faster_rcnn built from config through the registries', async () => {
  await initEngine({ backend: 'wasm' });
  registerFasterRcnn();

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
