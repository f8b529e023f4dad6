/**
 * `cxr demo` end to end: the real stages (phantom DICOM → import → split → train → eval → ONNX → predict →
 * explain → a second cohort → fed simulate from the trained detector) at the demo's own size (64 px, 12
 * epochs, 3 rounds) with 24 patients instead of 32, on the fastest backend here, and the numbers the demo
 * promises: validation AP50 ≥ 0.6 with mAP beside it, a box of the right class on each test image with a
 * finding and none on the normal one, every federated site validating, federated and centralized mAP both
 * above 0.3 with their quotient as the ratio. Runs in CI (CI=true) or with FEDCXR_PROOF=1, like the other
 * training proofs.
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
    const run = await runCli(['demo', '--out', out, '--patients', '24', '--backend', backend, '--json']);
    const seconds = (performance.now() - started) / 1000;
    expect(run.exitCode, run.stderr).toBe(0);
    const summary = run.json<{
      metrics: { stats: number[] };
      federated: { initial: number; federated: number; centralized: number; mapRatio: number | null };
      detections: number;
      explanations: { file: string; peakInBox: boolean }[];
    }>();
    const [ap, ap50] = summary.metrics.stats;
    const fed = JSON.parse(readFileSync(join(out, 'federated.json'), 'utf8')) as {
      sites: { validationImages: number }[];
      init: string | null;
    };
    const { initial, federated, centralized, mapRatio } = summary.federated;
    console.log(
      `cxr demo (${backend}, 64 px, 24 patients) in ${seconds.toFixed(0)} s: val AP50 ${ap50.toFixed(3)}, AP ${ap.toFixed(3)}; ` +
        `federated mAP ${federated.toFixed(3)}, centralized ${centralized.toFixed(3)}, from ${initial.toFixed(3)}`,
    );
    expect(ap50).toBeGreaterThanOrEqual(0.6);
    expect(ap).toBeGreaterThan(0.3);
    // The federated stage starts from the trained detector, on patients it never saw.
    expect(fed.init).toBe(join(out, 'train', 'best'));
    for (const site of fed.sites) expect(site.validationImages).toBeGreaterThan(0);
    expect(federated).toBeGreaterThan(0.3);
    expect(centralized).toBeGreaterThan(0.3);
    expect(mapRatio).toBeCloseTo(federated / centralized, 6);
    const index = readFileSync(join(out, 'index.html'), 'utf8');
    expect(index).toContain(`federated / centralized<b>${(federated / centralized).toFixed(3)}</b>`);
    expect(index).toContain('starting model mAP');

    // The test images cycle through the demo's classes: a finding's image gets a box of its class (score ≥ 0.3,
    // predict's threshold in the demo), the normal image none.
    const rows = readFileSync(join(out, 'predict', 'detections.csv'), 'utf8')
      .trim()
      .split('\n')
      .slice(1);
    const classesOn = (n: number) =>
      new Set(rows.filter((r) => r.includes(`-000${n}_1.dcm`)).map((r) => r.split(',')[1].replace(/"/g, '')));
    expect(classesOn(1)).toContain('cardiac_hypertrophy');
    expect(classesOn(2)).toContain('lung_field_infiltration');
    expect(classesOn(3)).toContain('scoliosis');
    expect(classesOn(4).size).toBe(0);
    expect(summary.detections).toBeGreaterThan(0);
    expect((await readdir(join(out, 'predict', 'overlays'))).length).toBe(4);
    for (const name of ['occlusion', 'eigencam', 'eigencam-in-box', 'ablationcam', 'ablationcam-in-box'])
      expect(existsSync(join(out, 'explain', `${name}.png`)), name).toBe(true);
    // The occlusion map of the most confident test detection is hottest inside that detection's box.
    const occlusion = summary.explanations.find((e) => e.file === 'occlusion.png');
    expect(occlusion?.peakInBox).toBe(true);
    expect(index).toContain('occlusion (score drop under a sliding patch) — hottest inside the box');
    expect(index).toContain('leaves out 4 of the seed');
    expect(index).toContain('Every site validated');
  }, 300_000);
});
