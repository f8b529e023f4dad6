import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { backbones, type NamedTensors, writeSafetensors } from '@fedcxr/core';
import { loadModelDir } from '@fedcxr/models-frcnn';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../testing.js';

const dir = mkdtempSync(join(tmpdir(), 'cxr-weights-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const tinyPth = fileURLToPath(new URL('../../../../tools/reference/fixtures/backbones/pth/tiny.pth', import.meta.url));

/** An ImageNet-layout ResNet-18 checkpoint (no backbone.body. prefix, an fc head), as .safetensors. */
async function writeImagenetResnet18(): Promise<{ file: string; source: NamedTensors }> {
  const backbone = backbones.build('resnet18_fpn', {});
  const source: NamedTensors = new Map();
  for (const [key, tensor] of backbone.getWeights?.() ?? []) {
    if (key.startsWith('backbone.body.')) source.set(key.slice('backbone.body.'.length), tensor);
  }
  backbone.dispose?.();
  source.set('fc.weight', { dtype: 'float32', shape: [1000, 512], data: new Float32Array(512_000) });
  source.set('fc.bias', { dtype: 'float32', shape: [1000], data: new Float32Array(1000) });
  const file = join(dir, 'resnet18-imagenet.safetensors');
  await writeSafetensors(file, source);
  return { file, source };
}

describe('cxr weights', () => {
  it('import: an ImageNet ResNet-18 .safetensors becomes a model directory', async () => {
    const { file, source } = await writeImagenetResnet18();
    const out = join(dir, 'model');
    const run = await runCli([
      'weights',
      'import',
      file,
      '--arch',
      'resnet18_fpn',
      '--classes',
      'opacity',
      '--out',
      out,
      '--json',
    ]);
    expect(run.exitCode, run.stderr).toBe(0);
    const summary = run.json<{ tensors: number; layout: string; dropped: string[]; classes: string[] }>();
    expect(summary.layout).toBe('imagenet');
    expect(summary.dropped).toEqual(['fc.weight', 'fc.bias']);
    expect(summary.classes).toEqual(['__background__', 'opacity']);
    expect(summary.tensors).toBe(source.size - 2);
    const { card, weights } = await loadModelDir(out);
    expect(card.backbone).toBe('resnet18_fpn');
    expect(card.weights.uninitialized).toEqual(['backbone.fpn.', 'rpn.', 'roi_heads.']);
    expect(weights.get('backbone.body.layer4.1.conv2.weight')).toEqual(source.get('layer4.1.conv2.weight'));

    const human = await runCli([
      'weights',
      'import',
      file,
      '--arch',
      'resnet18_fpn',
      '--num-classes',
      '2',
      '--out',
      out,
    ]);
    expect(human.exitCode).toBe(0);
    expect(human.stdout).toMatch(/resnet18_fpn, 2 classes, \d+ tensors from a imagenet checkpoint/);
    expect(human.stdout).toMatch(/dropped: fc.weight, fc.bias/);
  });

  it('import: wrong architecture, bad flags and non-checkpoints fail with the file and the problem', async () => {
    const wrong = await runCli([
      'weights',
      'import',
      tinyPth,
      '--arch',
      'resnet18_fpn',
      '--num-classes',
      '1',
      '--out',
      join(dir, 'x'),
    ]);
    expect(wrong.exitCode).toBe(3);
    expect(wrong.stderr).toMatch(/^cxr: .*tiny.pth: not a resnet18_fpn imagenet checkpoint/);
    const flags = await runCli([
      'weights',
      'import',
      tinyPth,
      '--arch',
      'resnet18_fpn',
      '--num-classes',
      '0',
      '--out',
      join(dir, 'x'),
    ]);
    expect(flags.exitCode).toBe(2);
    expect(flags.stderr).toMatch(
      /--num-classes counts the foreground classes \(not the background\): an integer ≥ 1, got "0"/,
    );
    const arch = await runCli(['weights', 'import', tinyPth, '--arch', 'vgg16', '--out', join(dir, 'x'), '--json']);
    expect(arch.exitCode).toBe(2);
    expect(arch.json<{ error: { message: string } }>().error.message).toMatch(/unknown architecture "vgg16"/);
  });

  it('download: says clearly when offline', async () => {
    const run = await runCli([
      'weights',
      'download',
      'fasterrcnn_resnet50_fpn_coco',
      '--dir',
      dir,
      '--base-url',
      'http://127.0.0.1:9/models',
      '--timeout',
      '5',
    ]);
    expect(run.exitCode).toBe(3);
    expect(run.stderr).toMatch(/cannot download .*fasterrcnn_resnet50_fpn_coco-258fb6c6.pth: no connection/);
    expect(run.stderr).toMatch(/cxr weights import fasterrcnn_resnet50_fpn_coco-258fb6c6.pth --arch resnet50_fpn/);
    const unknown = await runCli(['weights', 'download', 'vgg16']);
    expect(unknown.exitCode).toBe(2);
  });

  it('list: official files and registered backbones', async () => {
    const run = await runCli(['weights', 'list', '--json']);
    expect(run.exitCode).toBe(0);
    const data = run.json<{ official: { name: string }[]; backbones: { name: string }[] }>();
    expect(data.official.map((o) => o.name)).toContain('swin_t');
    expect(data.backbones.map((b) => b.name)).toEqual(
      expect.arrayContaining(['resnet18_fpn', 'resnet50_fpn', 'resnet101_fpn', 'swin_t_fpn']),
    );
  });
});
