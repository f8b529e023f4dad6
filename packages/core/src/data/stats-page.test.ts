import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { CocoDataset } from '../coco.js';
import { hasChromium, withChromiumPage } from '../testing/chromium.js';
import { datasetStats, statsHtml } from './stats.js';

/** 12 images of 6 patients, two classes, some images without boxes. */
function dataset(): CocoDataset {
  const images = Array.from({ length: 12 }, (_, i) => ({
    id: i + 1,
    file_name: `${i}.png`,
    width: 256,
    height: 256,
    patient_id: `P${Math.floor(i / 2)}`,
  }));
  const annotations = images
    .filter((im) => im.id % 3 !== 0)
    .flatMap((im, k) =>
      Array.from({ length: 1 + (k % 3) }, (_, j) => ({
        id: im.id * 10 + j,
        image_id: im.id,
        category_id: 1 + ((k + j) % 2),
        bbox: [10 + j * 20, 20, 8 + 6 * k, 12 + 4 * j] as [number, number, number, number],
        area: (8 + 6 * k) * (12 + 4 * j),
        iscrowd: 0 as const,
      })),
    );
  return {
    images,
    annotations,
    categories: [
      { id: 1, name: 'cardiac_hypertrophy' },
      { id: 2, name: 'scoliosis' },
    ],
  };
}

describe('dataset statistics page', () => {
  it.skipIf(!hasChromium)(
    'renders in headless Chromium with four drawn histograms and no external requests',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'stats-page-'));
      const file = join(dir, 'stats.html');
      const stats = datasetStats(dataset());
      await writeFile(file, statsHtml(stats, 'test data'));
      await withChromiumPage(async (page, requests) => {
        await page.goto(pathToFileURL(file).href);
        const charts = await page.$$eval('svg', (svgs) =>
          svgs.map((svg) => ({
            width: svg.getBoundingClientRect().width,
            bars: [...svg.querySelectorAll('rect')].filter((r) => r.getBoundingClientRect().height > 0.5).length,
          })),
        );
        expect(charts).toHaveLength(4);
        for (const chart of charts) {
          expect(chart.width).toBeGreaterThan(100);
          expect(chart.bars).toBeGreaterThan(0);
        }
        const cards = await page.$$eval('.card b', (bs) => bs.map((b) => b.textContent));
        expect(cards.slice(0, 3)).toEqual([String(stats.images), String(stats.patients), String(stats.annotations)]);
        expect(requests.filter((url) => !url.startsWith('file:'))).toEqual([]);
      });
    },
    60_000,
  );
});
