import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeGreyPng, NORMALIZATION_PRESETS, synthesizeShapes } from '@fedcxr/core';
import { PRESETS } from '@fedcxr/dicom';
import { loadModelDir } from '@fedcxr/models-frcnn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../testing.js';

let root: string;
let configFile: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fedcxr-cli-train-'));
  // A small COCO data set on disk, as `cxr dataset import` writes it: 8-bit grey PNGs + annotations.json.
  const set = synthesizeShapes({ count: 6, negatives: 2, size: 64, seed: 3 });
  for (const [i, image] of set.coco.images.entries()) {
    const data = Uint8Array.from(set.images[i].pixels, (v) => Math.round(v * 255));
    await writeFile(
      join(root, image.file_name),
      encodeGreyPng({ width: 64, height: 64, channels: 1, bitDepth: 8, data }),
    );
  }
  await writeFile(join(root, 'annotations.json'), JSON.stringify(set.coco));
  configFile = join(root, 'train.yaml');
  await writeFile(
    configFile,
    [
      'name: smoke',
      `runsDir: ${join(root, 'runs')}`,
      'epochs: 5',
      'batchSize: 4',
      'model: { detector: tiny_grid, backbone: tiny }',
      `data: { train: ${join(root, 'annotations.json')}, val: ${join(root, 'annotations.json')} }`,
      'optimizer: { lr: 0.005 }',
      'schedule: { warmupSteps: 2, type: step, milestones: [3] }',
      'engine: { backend: cpu }',
    ].join('\n'),
  );
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('cxr train', () => {
  it('trains from a config with flags overriding it, then --resume continues the run', async () => {
    const first = await runCli(['train', '--config', configFile, '--epochs', '2', '--json']);
    expect(first.stderr).toBe('');
    expect(first.exitCode).toBe(0);
    const out = first.json<{
      run: string;
      engine: string;
      steps: number;
      best: { epoch: number; metric: string; tag: string };
      checkpoints: { best: string };
      report: string;
      epochs: { epoch: number; train: { loss: number }; val: { AP: number; loss: number } }[];
    }>();
    expect(out.engine).toBe('cpu');
    expect(out.epochs.map((e) => e.epoch)).toEqual([1, 2]);
    expect(out.steps).toBe(4); // 8 images / batch 4 × 2 epochs
    expect(out.epochs[1].val.AP).toBeGreaterThanOrEqual(0);
    expect(out.best.metric).toBe('AP');
    // The best checkpoint is a model directory models-frcnn loads (card validated, weights' SHA-256 checked).
    const model = await loadModelDir(out.checkpoints.best);
    expect(model.card.classes).toEqual(['__background__', 'square', 'disc']);
    expect(model.card.architecture).toBe('tiny_grid');
    expect(model.weights.size).toBe(10);
    const html = await readFile(out.report, 'utf8');
    expect(html).toContain('Loss per epoch');
    expect(html.match(/<img /g)?.length).toBe(8);

    const resumed = await runCli(['train', '--config', configFile, '--epochs', '3', '--resume', '--json']);
    expect(resumed.exitCode).toBe(0);
    const after = resumed.json<{ epochs: { epoch: number }[]; steps: number }>();
    expect(after.epochs.map((e) => e.epoch)).toEqual([1, 2, 3]);
    expect(after.steps).toBe(6);
    const log = (await readFile(join(out.run, 'log.jsonl'), 'utf8')).trim().split('\n');
    expect(log.map((line) => JSON.parse(line).epoch)).toEqual([1, 2, 3]);
  });

  it('prints a human summary and per-epoch lines without --json', async () => {
    const run = await runCli(['train', '--config', configFile, '--name', 'human', '--epochs', '1']);
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toMatch(/^trained 1 epochs \(2 steps\) on 8 images with the cpu backend/);
    expect(run.stdout).toMatch(/report: .*human[/\\]report\.html/);
    expect(run.stderr).toMatch(/engine: cpu as configured/);
    expect(run.stderr).toMatch(/epoch 1: train loss \d+\.\d{3}; val loss \d+\.\d{3}, AP /);
  });

  it('reports a bad config naming the file and the field, with exit code 2', async () => {
    const bad = join(root, 'bad.yaml');
    await writeFile(bad, 'epochs: -3\noptimizer: { lr: fast }\n');
    const run = await runCli(['train', '--config', bad]);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toMatch(/^cxr: .*bad\.yaml: invalid config/);
    expect(run.stderr).toMatch(/epochs: /);
    expect(run.stderr).toMatch(/optimizer\.lr: /);
    expect(run.stderr).toMatch(/data: /);
    const none = await runCli(['train', '--json']);
    expect(none.exitCode).toBe(2);
    expect(none.json<{ error: { message: string } }>().error.message).toMatch(/--config/);
  });

  it('names a misspelt recipe field, a wrong normalization, and a field a federated site used to spell flat', async () => {
    const bad = join(root, 'typo.yaml');
    await writeFile(
      bad,
      [
        `data: { train: ${join(root, 'annotations.json')}, normalization: seed-lut }`,
        'schedule: { milestone: [3] }',
        'optimizer: { lr: 0.01, learningRate: 0.01 }',
      ].join('\n'),
    );
    const run = await runCli(['train', '--config', bad]);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toMatch(/schedule: Unrecognized key: "milestone"/);
    expect(run.stderr).toMatch(/optimizer: Unrecognized key: "learningRate"/);
    expect(run.stderr).toMatch(/data\.normalization: /);
  });

  it('types data.normalization with the presets `cxr dataset import` normalizes with', () => {
    expect([...NORMALIZATION_PRESETS]).toEqual([...PRESETS]);
  });

  it('fails clearly on missing images and on resuming a run that has no checkpoint', async () => {
    const broken = join(root, 'broken.json');
    await writeFile(
      broken,
      JSON.stringify({
        images: [{ id: 1, file_name: 'missing.png', width: 64, height: 64 }],
        annotations: [],
        categories: [{ id: 1, name: 'x' }],
      }),
    );
    const missing = await runCli([
      'train',
      '--train',
      broken,
      '--detector',
      'tiny_grid',
      '--backend',
      'cpu',
      '--runs-dir',
      join(root, 'runs'),
      '--name',
      'broken',
      '--epochs',
      '1',
    ]);
    expect(missing.exitCode).toBe(3);
    expect(missing.stderr).toMatch(/missing\.png/);
    const resume = await runCli(['train', '--config', configFile, '--name', 'never-ran', '--resume']);
    expect(resume.exitCode).toBe(3);
    expect(resume.stderr).toMatch(/never-ran: nothing to resume/);
  });
});
