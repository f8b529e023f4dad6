import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasChromium, withChromiumPage } from '../testing/chromium.js';
import type { EpochRecord, ValidationDetail } from '../train/loop.js';
import { synthesizeShapes } from '../train/synthetic.js';
import { predictionImages, renderTrainingReport, type TrainingReportInput, writeTrainingReport } from './html.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fedcxr-report-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function reportInput(): Promise<TrainingReportInput> {
  const set = synthesizeShapes({ count: 3, size: 64, seed: 4 });
  const history: EpochRecord[] = [1, 2, 3].map((epoch) => ({
    epoch,
    steps: 2,
    images: 3,
    lr: 0.003,
    seconds: 1.5,
    train: { loss: 3 / epoch, loss_classifier: 1 / epoch, loss_box_reg: 2 / epoch },
    val: {
      loss: 3.5 / epoch,
      AP: 0.2 * epoch,
      AP50: 0.3 * epoch,
      AP75: 0.1 * epoch,
      APl: -1,
      AR100: 0.25 * epoch,
      FROC: 0.2 * epoch,
    },
    perCategory: [
      { id: 1, name: 'square', AP: 0.1 * epoch, AP50: 0.2 * epoch },
      { id: 2, name: 'disc <b>', AP: 0.3, AP50: 0.4 },
    ],
  }));
  const samples: ValidationDetail['samples'] = set.coco.images.map((im, index) => {
    const anns = set.coco.annotations.filter((a) => a.image_id === im.id);
    const boxes = anns.flatMap((a) => [a.bbox[0], a.bbox[1], a.bbox[0] + a.bbox[2], a.bbox[1] + a.bbox[3]]);
    return {
      index,
      imageId: im.id,
      boxes,
      labels: anns.map((a) => a.category_id),
      detections: anns.map((a) => ({
        box: [a.bbox[0] + 1, a.bbox[1], a.bbox[0] + a.bbox[2], a.bbox[1] + a.bbox[3]] as [
          number,
          number,
          number,
          number,
        ],
        label: a.category_id,
        score: 0.9,
      })),
    };
  });
  const validation: ValidationDetail = {
    epoch: 3,
    pr: [
      { id: 1, name: 'square', recall: [0, 0.5, 1], precision: [1, 0.8, 0.5] },
      { id: 2, name: 'disc', recall: [0, 0.5, 1], precision: [1, 1, -1] },
    ],
    froc: {
      fpRates: [0.125, 0.25, 0.5, 1, 2, 4, 8],
      sensitivities: [0.1, 0.2, 0.4, 0.6, 0.7, 0.8, 0.8],
      score: 0.51,
      fpsPerImage: [4, 2, 1, 0.5, 0],
      sensitivity: [0.8, 0.7, 0.6, 0.4, 0],
    },
    samples,
    results: [],
  };
  const predictions = await predictionImages(samples, async (i) => set.images[i], set.coco.categories);
  return {
    title: 'run <test>',
    facts: { detector: 'tiny_grid', epochs: 3 },
    history,
    best: { epoch: 3, metric: 'AP', value: 0.6 },
    validation,
    predictions,
  };
}

describe('training report', () => {
  it('is one self-contained file: no scripts, no external resources, escaped names', async () => {
    const html = renderTrainingReport(await reportInput());
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//i);
    expect(html).toContain('disc &lt;b&gt;');
    expect(html).toContain('run &lt;test&gt;');
    expect(html.match(/<img /g)?.length).toBe(3);
    expect(html).toContain('data-slot="heatmaps"');
  });

  it.skipIf(!hasChromium)('renders in headless Chromium with every chart drawn and every image decoded', async () => {
    const file = await writeTrainingReport(root, await reportInput());
    expect((await readFile(file, 'utf8')).length).toBeGreaterThan(1000);
    await withChromiumPage(async (page, requests) => {
      const external = requests.filter((url) => !url.startsWith('file:'));
      await page.goto(pathToFileURL(file).href);
      const charts = await page.$$eval('svg.chart', (svgs) =>
        svgs.map((svg) => ({
          title: svg.getAttribute('aria-label'),
          width: svg.getBoundingClientRect().width,
          paths: [...svg.querySelectorAll('path.series')].map((p) => ({
            points: Number(p.getAttribute('data-points')),
            length: (p as unknown as { getTotalLength(): number }).getTotalLength(),
          })),
        })),
      );
      // Losses, metrics, PR, FROC: four charts, each with drawn lines of real length.
      expect(charts.map((c) => c.title)).toEqual([
        'Loss per epoch',
        'COCO metrics per epoch',
        'Precision–recall at IoU 0.5 (epoch 3)',
        'FROC (score 0.510)',
      ]);
      for (const chart of charts) {
        expect(chart.width).toBeGreaterThan(100);
        expect(chart.paths.length).toBeGreaterThan(0);
        for (const path of chart.paths) {
          expect(path.points).toBeGreaterThan(1);
          expect(path.length).toBeGreaterThan(10);
        }
      }
      const images = await page.$$eval('#predictions img', (imgs) =>
        imgs.map((img) => ({
          complete: (img as unknown as { complete: boolean }).complete,
          width: (img as unknown as { naturalWidth: number }).naturalWidth,
        })),
      );
      // 64-px images are enlarged 5× (to 320 px) so box labels stay legible.
      expect(images).toEqual([
        { complete: true, width: 320 },
        { complete: true, width: 320 },
        { complete: true, width: 320 },
      ]);
      expect(await page.$$eval('table.per-class tr', (rows) => rows.length)).toBe(3);
      expect(external).toEqual([]);
    });
  });
});
