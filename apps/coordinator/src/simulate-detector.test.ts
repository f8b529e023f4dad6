/**
 * Faster R-CNN federated for real: a coordinator and two site processes on loopback, each training the
 * detector (ResNet-18-FPN, wasm) on its own patient-disjoint shard of synthetic PNGs, then the centralized
 * baseline with the same recipe. Sized for CI (64 px, 2 rounds); `cxr fed simulate --model faster_rcnn`
 * runs the full-size comparison (README "Measured").
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CocoDataset } from '@fedcxr/core';
import { afterAll, describe, expect, it } from 'vitest';
import { simulateDetector } from './simulate-detector.js';
import { renderSimulationReport } from './simulation-report.js';
import { tempDir } from './testing.js';

const dir = tempDir('fedcxr-fedsim-det-');
afterAll(() => dir.remove());

function read(file: string): CocoDataset {
  return JSON.parse(readFileSync(join(dir.path, file), 'utf8')) as CocoDataset;
}

function patients(file: string): Set<string> {
  return new Set(read(file).images.map((image) => String(image.patient_id)));
}

describe('cxr fed simulate --model faster_rcnn', () => {
  it('federates Faster R-CNN across two site processes and scores it beside centralized training', async () => {
    const log: string[] = [];
    const report = await simulateDetector({
      sites: 2,
      data: 'synthetic',
      split: 'patient',
      rounds: 2,
      images: 24,
      size: 64,
      seed: 2,
      backend: 'wasm',
      workDir: dir.path,
      onProgress: (m) => log.push(m),
    });
    // Every round aggregated both sites: none was silently dropped.
    expect(report.rounds.map((r) => r.outcome)).toEqual(['aggregated', 'aggregated']);
    expect(report.rounds.map((r) => r.sites.length)).toEqual([2, 2]);
    // The sites learn: the mean training loss of round 2 is below round 1's.
    expect(report.rounds[1].train.loss).toBeLessThan(report.rounds[0].train.loss);
    expect(report.totalEpochs).toBe(2);
    expect(report.model).toEqual({ detector: 'faster_rcnn', backbone: 'resnet18_fpn', size: 64 });

    // The test split, and each site's shard, are patient-disjoint; the centralized run saw exactly the sites' images.
    const test = patients('test.json');
    const site1 = new Set([...patients('site-1.train.json'), ...patients('site-1.val.json')]);
    const site2 = new Set([...patients('site-2.train.json'), ...patients('site-2.val.json')]);
    for (const p of test) expect(site1.has(p) || site2.has(p)).toBe(false);
    for (const p of site1) expect(site2.has(p)).toBe(false);
    expect(read('centralized.train.json').images.length).toBe(report.sites.reduce((n, s) => n + s.trainImages, 0));
    expect(report.testImages).toBe(read('test.json').images.length);
    // 24 images with shapes + 3 negatives, each in exactly one place.
    expect(report.sites.reduce((n, s) => n + s.trainImages + s.validationImages, 0) + report.testImages).toBe(27);

    for (const scores of [report.federated, report.centralized]) {
      for (const v of [scores.ap, scores.ap50, scores.ar100]) {
        expect(v).toBeGreaterThanOrEqual(0);
        expect(v).toBeLessThanOrEqual(1);
      }
    }
    expect(report.mapRatio).toBe(report.centralized.ap > 0 ? report.federated.ap / report.centralized.ap : null);
    // Every site with two or more patients validates on at least one of them.
    for (const site of report.sites) if (site.patients > 1) expect(site.validationImages).toBeGreaterThan(0);
    expect(log.some((m) => m.includes('centralized baseline: 2 epochs'))).toBe(true);

    // The HTML report: the ratio, both bars, one table row and one chart point per round.
    const html = renderSimulationReport(report);
    expect(html).toContain(
      `federated / centralized mAP: ${report.mapRatio === null ? 'n/a' : report.mapRatio.toFixed(4)}`,
    );
    expect(html).toContain(`federated ${report.federated.ap.toFixed(4)}`);
    expect(html).toContain(`centralized ${report.centralized.ap.toFixed(4)}`);
    expect(html.match(/<tr><td>\d+<\/td><td>site-1, site-2<\/td>/g)?.length).toBe(2);
    expect(html.match(/<svg/g)?.length).toBe(3);
    // The rounds show the sites' validation mAP beside AP50 (AP50 saturates early on easy data).
    expect(html).toContain('<th>mAP</th><th>AP50</th>');
    expect(html).toContain(`<td>${(report.rounds[1].validation.ap ?? Number.NaN).toFixed(4)}</td>`);
  }, 300_000);
});
