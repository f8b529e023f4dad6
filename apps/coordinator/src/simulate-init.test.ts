/**
 * `cxr fed simulate --init <model dir>`: the starting weights both the federation and the centralized baseline
 * take from a checkpoint, and the checkpoints it refuses (another detector, other classes, a missing or
 * differently shaped weight), each naming what differs.
 */
import { join } from 'node:path';
import { FedcxrError, type NamedTensors, saveModelDir, TORCHVISION_PREPROCESSING } from '@fedcxr/core';
import { afterAll, describe, expect, it } from 'vitest';
import { initialWeightsFrom } from './simulate-detector.js';
import { tempDir } from './testing.js';

const dir = tempDir('fedcxr-fedsim-init-');
afterAll(() => dir.remove());

const tensor = (shape: number[], values: number[]) => ({
  dtype: 'float32' as const,
  shape,
  data: Float32Array.from(values),
});
const expected: NamedTensors = new Map([
  ['backbone.conv.weight', tensor([2, 1], [0, 0])],
  ['roi_heads.box_predictor.cls_score.bias', tensor([3], [0, 0, 0])],
]);
const model = { backbone: 'resnet18_fpn', categories: ['a', 'b'] };

async function checkpoint(name: string, overrides: { backbone?: string; classes?: string[] }, weights: NamedTensors) {
  const out = join(dir.path, name);
  await saveModelDir(
    out,
    {
      architecture: 'faster_rcnn',
      backbone: overrides.backbone ?? 'resnet18_fpn',
      classes: overrides.classes ?? ['__background__', 'a', 'b'],
      preprocessing: { ...TORCHVISION_PREPROCESSING, inputChannels: 1 },
      provenance: { createdAt: '2026-12-03T00:00:00.000Z', createdBy: 'test' },
    },
    weights,
  );
  return out;
}

async function refusal(promise: Promise<unknown>): Promise<FedcxrError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(FedcxrError);
  expect((error as FedcxrError).code).toBe('init_mismatch');
  return error as FedcxrError;
}

describe('fed simulate --init', () => {
  it("takes every weight of the sites' model from the checkpoint (extra checkpoint entries are not sent)", async () => {
    const weights: NamedTensors = new Map([
      ['backbone.conv.weight', tensor([2, 1], [0.5, -2])],
      ['roi_heads.box_predictor.cls_score.bias', tensor([3], [1, 2, 3])],
      ['backbone.bn.running_mean', tensor([1], [7])],
    ]);
    const initial = await initialWeightsFrom(await checkpoint('good', {}, weights), expected, model);
    expect([...initial.keys()]).toEqual([...expected.keys()]);
    expect(Array.from(initial.get('backbone.conv.weight')?.data ?? [])).toEqual([0.5, -2]);
    expect(Array.from(initial.get('roi_heads.box_predictor.cls_score.bias')?.data ?? [])).toEqual([1, 2, 3]);
  });

  it('refuses a checkpoint of another backbone, other classes, or missing or differently shaped weights', async () => {
    const good = new Map(expected);
    expect(
      (await refusal(initialWeightsFrom(await checkpoint('r50', { backbone: 'resnet50_fpn' }, good), expected, model)))
        .message,
    ).toContain('resnet50_fpn');
    const classes = await refusal(
      initialWeightsFrom(await checkpoint('classes', { classes: ['__background__', 'a', 'c'] }, good), expected, model),
    );
    expect(classes.message).toContain('a, c');
    const missing = await refusal(
      initialWeightsFrom(await checkpoint('missing', {}, new Map([...expected].slice(0, 1))), expected, model),
    );
    expect(missing.message).toContain('roi_heads.box_predictor.cls_score.bias');
    const shaped = await refusal(
      initialWeightsFrom(
        await checkpoint(
          'shape',
          {},
          new Map([...expected, ['roi_heads.box_predictor.cls_score.bias', tensor([4], [0, 0, 0, 0])]]),
        ),
        expected,
        model,
      ),
    );
    expect(shaped.message).toContain('[4]');
    expect(shaped.file).toBe(join(dir.path, 'shape', 'model.json'));
  });
});
