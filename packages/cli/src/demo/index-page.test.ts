import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { demoIndexHtml, federatedCards } from './index-page.js';

const scratch = await mkdtemp(join(tmpdir(), 'fedcxr-demo-index-'));
afterAll(() => rm(scratch, { recursive: true, force: true }));

const sites = (validation: [number, number], note?: string) => [
  { id: 'site-1', trainImages: 20, validationImages: validation[0], patients: 1, ...(note ? { note } : {}) },
  { id: 'site-2', trainImages: 18, validationImages: validation[1], patients: 9 },
];

describe('the demo index page', () => {
  it('shows the federated / centralized ratio with both numbers', () => {
    const html = federatedCards({
      federated: { ap: 0.42 },
      centralized: { ap: 0.6 },
      mapRatio: 0.7,
      sites: sites([3, 4]),
    });
    expect(html).toContain('federated mAP<b>0.420</b>');
    expect(html).toContain('centralized mAP<b>0.600</b>');
    expect(html).toMatch(/federated \/ centralized<b>0\.700<\/b><small>0\.420 \/ 0\.600<\/small>/);
    expect(html).toContain('Every site validated');
    expect(html).not.toContain('n/a');
  });

  it('shows a ratio of two zeros as n/a with the reason, never 0.000', () => {
    const reported = federatedCards({
      federated: { ap: 0 },
      centralized: { ap: 0 },
      mapRatio: null,
      ratioNote: 'n/a: both detectors scored mAP 0 on the test split (neither learnt to find the boxes)',
      sites: sites([3, 4]),
    });
    expect(reported).toContain('federated / centralized<b>n/a</b>');
    expect(reported).toContain('both detectors scored mAP 0');
    expect(reported).not.toContain('<b>0.000</b><small>');
    // An older report that still says 0 for 0/0: n/a all the same, with a reason.
    const legacy = federatedCards({ federated: { ap: 0 }, centralized: { ap: 0 }, mapRatio: 0, sites: sites([3, 4]) });
    expect(legacy).toContain('federated / centralized<b>n/a</b>');
    expect(legacy).toContain('the centralized mAP is 0');
  });

  it('says why a site has no validation images', () => {
    const noted = federatedCards({
      federated: { ap: 0.4 },
      centralized: { ap: 0.5 },
      mapRatio: 0.8,
      sites: sites([0, 4], 'no validation images: its only patient (of 1) is kept for training'),
    });
    expect(noted).toContain('site-1 has no validation images: no validation images: its only patient');
    expect(noted).toContain('validated by the other sites only');
    const unexplained = federatedCards({
      federated: { ap: 0.4 },
      centralized: { ap: 0.5 },
      mapRatio: 0.8,
      sites: sites([0, 4]),
    });
    expect(unexplained).toContain('site-1 has no validation images: its shard (1 patient(s)) is too small');
  });

  it('names the classes drawn and the ones the demo leaves out, and the AP per epoch', async () => {
    const html = await demoIndexHtml({
      out: scratch,
      stages: [{ name: 'train', seconds: 10 }],
      total: 12,
      metrics: { stats: [0.45, 0.81, 0.4], froc: { score: 0.7 } },
      phantom: {
        patients: 4,
        images: 8,
        classes: ['cardiac_hypertrophy', 'scoliosis', 'normal'],
        omitted: ['aortic_curvature'],
      },
      epochs: [
        { epoch: 1, ap: 0, ap50: 0, loss: 1.2 },
        { epoch: 2, ap: 0.45, ap50: 0.81, loss: 0.4 },
      ],
      explanations: [
        { file: 'occlusion.png', title: 'occlusion', peakInBox: true, withinBox: false },
        { file: 'eigencam.png', title: 'EigenCAM', peakInBox: false, withinBox: false },
        { file: 'eigencam-in-box.png', title: 'EigenCAM, inside its box', peakInBox: true, withinBox: true },
      ],
      federated: { federated: { ap: 0 }, centralized: { ap: 0 }, mapRatio: null },
    });
    expect(html).toContain('AP50<b>0.810</b>');
    expect(html).toContain('mAP (AP@[.5:.95])<b>0.450</b>');
    expect(html).toContain('<code>cardiac_hypertrophy</code>, <code>scoliosis</code> and <code>normal</code>');
    expect(html).toContain("leaves out 1 of the seed's 3 findings (<code>aortic_curvature</code>)");
    expect(html).toContain('<td class="num">2</td><td class="num">0.400</td><td class="num">0.810</td>');
    expect(html).toContain('federated / centralized<b>n/a</b>');
    // Each whole-image map says where its hottest point is; a map drawn inside the box claims nothing.
    expect(html).toContain('<figcaption>occlusion — hottest inside the box</figcaption>');
    expect(html).toContain('<figcaption>EigenCAM — hottest outside the box</figcaption>');
    expect(html).toContain('<figcaption>EigenCAM, inside its box</figcaption>');
    expect(html.indexOf('explain/occlusion.png')).toBeLessThan(html.indexOf('explain/eigencam.png'));
  });
});
