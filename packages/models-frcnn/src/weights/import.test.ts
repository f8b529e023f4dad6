import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backbones, FedcxrError, type HostTensor, type NamedTensors } from '@fedcxr/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../backbones/index.js';
import { loadModelDir } from '@fedcxr/core';
import { cachedImportLayout, useFastestBackend } from '../backbones/testing.js';
import { COCO_CLASSES, convertCheckpoint, dropBoxPredictor, importCheckpoint } from './import.js';
import { readPth } from './pth.js';

let dir = '';
beforeAll(async () => {
  await useFastestBackend();
  dir = await mkdtemp(join(tmpdir(), 'import-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function sameTensor(a: HostTensor | undefined, b: HostTensor | undefined): boolean {
  if (!a || !b || a.shape.join() !== b.shape.join() || a.data.length !== b.data.length) return false;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) return false;
  return true;
}

const coco = cachedImportLayout('fasterrcnn_resnet50_fpn_coco-layout');
const resnet50 = cachedImportLayout('resnet50-imagenet-layout');
const swin = cachedImportLayout('swin_t-imagenet-layout');
const reason = coco.reason ?? resnet50.reason ?? swin.reason;
if (reason) console.log(`checkpoint import tests skipped: ${reason}`);

describe.skipIf(Boolean(reason))('importing torchvision checkpoints', () => {
  it('COCO Faster R-CNN layout (legacy torch.save): keeps every weight; a new class count drops the predictor', async () => {
    const source = await readPth(coco.path!);
    const out = join(dir, 'coco');
    const summary = await importCheckpoint(coco.path!, { arch: 'fasterrcnn_resnet50_fpn', out });
    expect(summary.layout).toBe('detector');
    expect(summary.classes).toEqual(COCO_CLASSES);
    expect(summary.dropped.every((k) => k.endsWith('num_batches_tracked'))).toBe(true);
    expect(summary.uninitialized).toEqual([]);
    const { card, weights } = await loadModelDir(out);
    expect(card.backbone).toBe('resnet50_fpn');
    expect(card.provenance.source?.layout).toBe('detector');
    expect(weights.size).toBe(source.size - summary.dropped.length);
    for (const [key, tensor] of weights) expect(sameTensor(tensor, source.get(key)), key).toBe(true);
    expect(weights.get('roi_heads.box_predictor.cls_score.weight')?.shape).toEqual([91, 1024]);
    expect(weights.get('rpn.head.conv.0.0.weight')?.shape).toEqual([256, 256, 3, 3]);
    // The backbone part loads strictly into the registered backbone.
    const backbone = backbones.build('resnet50_fpn', { randomInit: false });
    const report = backbone.loadWeights?.(weights, { strict: true });
    expect(report?.loaded.length).toBe(backbone.variables().size);
    backbone.dispose?.();

    const eight = join(dir, 'cxr8');
    const classes = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    const changed = await importCheckpoint(coco.path!, { arch: 'resnet50_fpn', classes, out: eight });
    expect(changed.dropped.filter((k) => k.startsWith('roi_heads.'))).toEqual([
      'roi_heads.box_predictor.cls_score.weight',
      'roi_heads.box_predictor.cls_score.bias',
      'roi_heads.box_predictor.bbox_pred.weight',
      'roi_heads.box_predictor.bbox_pred.bias',
    ]);
    expect(changed.uninitialized).toEqual(['roi_heads.box_predictor.']);
    const loaded = await loadModelDir(eight);
    expect(loaded.card.classes).toEqual(['__background__', ...classes]);
    expect([...loaded.weights.keys()].some((k) => k.startsWith('roi_heads.box_predictor.'))).toBe(false);
    expect(
      sameTensor(loaded.weights.get('roi_heads.box_head.fc6.weight'), source.get('roi_heads.box_head.fc6.weight')),
    ).toBe(true);
  });

  it('ImageNet ResNet-50 and Swin-T layouts: prefixed into backbone.body, classifier dropped', async () => {
    for (const [checkpoint, arch, dropped] of [
      [resnet50.path!, 'resnet50_fpn', ['fc.weight', 'fc.bias']],
      [swin.path!, 'swin_t_fpn', ['norm.weight', 'norm.bias', 'head.weight', 'head.bias']],
    ] as const) {
      const source = await readPth(checkpoint);
      const out = join(dir, arch);
      const summary = await importCheckpoint(checkpoint, { arch, numClasses: 7, out });
      expect(summary.layout).toBe('imagenet');
      expect(summary.dropped.filter((k) => !k.endsWith('num_batches_tracked'))).toEqual(dropped);
      expect(summary.uninitialized).toEqual(['backbone.fpn.', 'rpn.', 'roi_heads.']);
      expect(summary.classes).toHaveLength(8);
      const { weights } = await loadModelDir(out);
      for (const [key, tensor] of weights) {
        expect(key.startsWith('backbone.body.'), key).toBe(true);
        expect(sameTensor(tensor, source.get(key.slice('backbone.body.'.length))), key).toBe(true);
      }
      const backbone = backbones.build(arch, { randomInit: false });
      const report = backbone.loadWeights?.(weights);
      expect(report?.unexpected).toEqual([]);
      expect(report?.missing.every((k) => k.startsWith('backbone.fpn.'))).toBe(true);
      backbone.dispose?.();
    }
  });

  it('a published file, known by name to its registry entry, brings its URL and preprocessing to the card', async () => {
    const published = join(dir, 'resnet50-0676ba61.pth');
    await copyFile(resnet50.path!, published);
    const out = join(dir, 'published');
    await importCheckpoint(published, { arch: 'fasterrcnn_resnet50_fpn', numClasses: 1, out });
    const { card } = await loadModelDir(out);
    expect(card.backbone).toBe('resnet50_fpn');
    expect(card.provenance.source?.url).toBe('https://download.pytorch.org/models/resnet50-0676ba61.pth');
    expect(card.preprocessing).toEqual(backbones.entry('resnet50_fpn').weights.resnet50.preprocessing);
    expect(card.classes).toEqual(['__background__', 'class_1']);
  });

  it('refuses a checkpoint of another architecture, naming the key', async () => {
    const source = await readPth(resnet50.path!);
    expect(() => convertCheckpoint(source, 'resnet101_fpn', 'r50.pth')).toThrow(/missing/);
    expect(() => convertCheckpoint(source, 'resnet18_fpn', 'r50.pth')).toThrow(
      /r50.pth: backbone.body.layer1.0.conv1.weight has shape \[64,64,1,1\] but resnet18_fpn needs \[64,64,3,3\]/,
    );
    await expect(importCheckpoint(resnet50.path!, { arch: 'resnet50_fpn', out: join(dir, 'x') })).rejects.toThrow(
      /no detector head: give --num-classes/,
    );
    await expect(importCheckpoint(resnet50.path!, { arch: 'vgg16', out: join(dir, 'x') })).rejects.toThrow(FedcxrError);
  });
});

describe('dropBoxPredictor', () => {
  const t = (shape: number[]): HostTensor => ({
    dtype: 'float32',
    shape,
    data: new Float32Array(shape.reduce((a, b) => a * b, 1)),
  });
  const weights: NamedTensors = new Map([
    ['roi_heads.box_head.fc7.weight', t([4, 4])],
    ['roi_heads.box_predictor.cls_score.weight', t([91, 4])],
    ['roi_heads.box_predictor.bbox_pred.weight', t([364, 4])],
  ]);
  it('keeps a predictor of the same class count and drops one of another', () => {
    expect(dropBoxPredictor(weights, 90)).toMatchObject({ dropped: [], kept: true });
    const changed = dropBoxPredictor(weights, 8);
    expect(changed.dropped).toEqual([
      'roi_heads.box_predictor.cls_score.weight',
      'roi_heads.box_predictor.bbox_pred.weight',
    ]);
    expect([...changed.weights.keys()]).toEqual(['roi_heads.box_head.fc7.weight']);
  });
});
