import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModelDir, readModelCard, saveModelDir, TORCHVISION_PREPROCESSING, validateCard } from './model-dir.js';
import type { NamedTensors } from './tensors.js';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'model-dir-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const weights: NamedTensors = new Map([
  ['backbone.body.conv1.weight', { dtype: 'float32', shape: [2, 3, 1, 1], data: Float32Array.of(1, 2, 3, 4, 5, 6) }],
  ['rpn.head.conv.0.0.bias', { dtype: 'float32', shape: [2], data: Float32Array.of(-1, 0.5) }],
]);
const input = {
  architecture: 'faster_rcnn',
  backbone: 'resnet18_fpn',
  classes: ['__background__', 'cardiac_hypertrophy', 'scoliosis'],
  preprocessing: { ...TORCHVISION_PREPROCESSING, minSize: 512, maxSize: 512, inputChannels: 1 as const },
  recipe: { optimizer: 'sgd', lr: 0.003, nesterov: true, epochs: 18 },
  metrics: { 'AP@[.5:.95]': 0.257 },
  provenance: { createdAt: '2026-11-26T00:00:00.000Z', createdBy: 'test' },
};

describe('model directory', () => {
  it('saves and loads weights and card, nothing else needed', async () => {
    const out = join(dir, 'm1');
    const card = await saveModelDir(out, input, weights);
    expect(card.weights.tensors).toBe(2);
    const loaded = await loadModelDir(out);
    expect(loaded.card).toEqual(card);
    expect(loaded.card.recipe).toEqual(input.recipe);
    expect(loaded.weights).toEqual(weights);
    expect((await readModelCard(out)).classes).toEqual(input.classes);
  });

  it('detects weights that do not belong to the card, and names bad card fields', async () => {
    const out = join(dir, 'm2');
    await saveModelDir(out, input, weights);
    const other = join(dir, 'm3');
    await saveModelDir(other, input, new Map([...weights].slice(0, 1)));
    await writeFile(join(out, 'weights.safetensors'), await readFile(join(other, 'weights.safetensors')));
    await expect(loadModelDir(out)).rejects.toThrow(/weights.safetensors: weights do not match model.json/);
    await expect(loadModelDir(join(dir, 'nowhere'))).rejects.toThrow(/not a model directory/);
    const card = JSON.parse(await readFile(join(other, 'model.json'), 'utf8'));
    expect(() => validateCard({ ...card, classes: ['a', 'b'] }, 'c.json')).toThrow(
      /c.json: classes\[0\]: must be "__background__"/,
    );
    expect(() => validateCard({ ...card, preprocessing: { ...card.preprocessing, imageStd: [1] } })).toThrow(
      /preprocessing.imageStd: expected 3 numbers/,
    );
    await expect(saveModelDir(join(dir, 'm4'), { ...input, classes: [] }, weights)).rejects.toThrow(/classes/);
  });
});
