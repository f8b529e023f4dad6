/**
 * `cxr demo` end to end at a CI size: the real stages (phantom DICOM → import → split → train → eval → ONNX →
 * predict → explain → fed simulate) on fewer patients, at 64 px, on the fastest backend here, and the numbers
 * the demo promises: the detector finds the phantom's findings (validation AP50), the federated and the
 * centralized detectors both learn (mAP), their ratio is a number, every site validates. Runs in CI (CI=true)
 * or with FEDCXR_PROOF=1, like the other training proofs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTorch } from '@fedcxr/core';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../testing.js';

const enabled = Boolean(process.env.CI || process.env.FEDCXR_PROOF);
const backend = loadTorch().ok ? 'torch' : 'wasm';
const root = await mkdtemp(join(tmpdir(), 'fedcxr-demo-'));
afterAll(() => rm(root, { recursive: true, force: true }));

describe.skipIf(!enabled)(`cxr demo at CI size (${backend})`, () => {
  it('trains a detector that finds the findings, federated and centralized', async () => {
    const out = join(root, 'demo');
    const started = performance.now();
    const run = await runCli([
      'demo',
      '--out',
      out,
      '--patients',
      '20',
      '--epochs',
      '6',
      '--size',
      '64',
      '--rounds',
      '3',
      '--backend',
      backend,
      '--json',
    ]);
    const seconds = (performance.now() - started) / 1000;
    expect(run.exitCode, run.stderr).toBe(0);
    const summary = run.json<{
      metrics: { stats: number[] };
      federated: { federated: number; centralized: number; mapRatio: number | null };
      predictions: number;
    }>();
    const [ap, ap50] = summary.metrics.stats;
    const fed = JSON.parse(readFileSync(join(out, 'federated.json'), 'utf8')) as {
      sites: { validationImages: number }[];
    };
    console.log(
      `cxr demo (${backend}, 64 px) in ${seconds.toFixed(0)} s: val AP50 ${ap50.toFixed(3)}, AP ${ap.toFixed(3)}; ` +
        `federated mAP ${summary.federated.federated.toFixed(3)}, centralized ${summary.federated.centralized.toFixed(3)}`,
    );
    expect(ap50).toBeGreaterThanOrEqual(0.5);
    expect(ap).toBeGreaterThan(0.15);
    expect(summary.federated.federated).toBeGreaterThan(0.1);
    expect(summary.federated.centralized).toBeGreaterThan(0.1);
    expect(summary.federated.mapRatio).toBeCloseTo(summary.federated.federated / summary.federated.centralized, 6);
    for (const site of fed.sites) expect(site.validationImages).toBeGreaterThan(0);
    // The detections drawn on the test images, and the page that shows them.
    expect(summary.predictions).toBeGreaterThan(0);
    expect((await readdir(join(out, 'predict', 'overlays'))).length).toBeGreaterThan(0);
    expect(existsSync(join(out, 'explain', 'eigencam.png'))).toBe(true);
    const index = readFileSync(join(out, 'index.html'), 'utf8');
    expect(index).toContain('leaves out 4 of the seed');
    expect(index).not.toContain('federated / centralized<b>n/a</b>');
  }, 300_000);
});
