/**
 * `cxr demo` end to end at a CI size: the real stages (phantom DICOM → import → split → train → eval → ONNX →
 * predict → explain → fed simulate) with one epoch and four rounds fewer than the demo, on the fastest backend
 * here, and the numbers the demo promises: the detector finds the phantom's findings (validation AP50, mAP),
 * the test predictions have boxes, every federated site validates, and the federated/centralized ratio is
 * either both numbers' quotient or n/a with its reason. Runs in CI (CI=true) or with FEDCXR_PROOF=1, like the
 * other training proofs.
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
      '--epochs',
      '6',
      '--size',
      '64',
      '--rounds',
      '2',
      '--backend',
      backend,
      '--json',
    ]);
    const seconds = (performance.now() - started) / 1000;
    expect(run.exitCode, run.stderr).toBe(0);
    const summary = run.json<{
      metrics: { stats: number[] };
      federated: { federated: number; centralized: number; mapRatio: number | null };
      detections: number;
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
    expect(ap).toBeGreaterThan(0.2);
    for (const site of fed.sites) expect(site.validationImages).toBeGreaterThan(0);
    const index = readFileSync(join(out, 'index.html'), 'utf8');
    if (summary.federated.centralized > 0) {
      expect(summary.federated.mapRatio).toBeCloseTo(summary.federated.federated / summary.federated.centralized, 6);
    } else {
      expect(summary.federated.mapRatio).toBeNull();
      expect(index).toContain('federated / centralized<b>n/a</b>');
    }
    // The detections drawn on the test images, and the page that shows them.
    expect(summary.detections).toBeGreaterThan(0);
    expect((await readdir(join(out, 'predict', 'overlays'))).length).toBeGreaterThan(0);
    expect(existsSync(join(out, 'explain', 'eigencam.png'))).toBe(true);
    expect(index).toContain('leaves out 4 of the seed');
    expect(index).toContain('Every site validated');
  }, 300_000);
});
