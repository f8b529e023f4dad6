/**
 * The dashboard in headless Chromium against a running simulation: after signing in at /login, the page
 * loads (only from the coordinator: no external request), lists the simulation's sites online, and its chart gains points as
 * rounds complete, pushed live over socket.io.
 */
import { join } from 'node:path';
import { CHROMIUM, hasChromium, withChromiumPage } from '@fedcxr/core/testing';
import { describe, expect, it } from 'vitest';
import type { Coordinator } from './coordinator.js';
import { simulate } from './simulate.js';
import { tempDir } from './testing.js';

/** Evaluated in the page (a string: these tests are typed without the DOM lib). */
const chartPoints = "Number(document.querySelector('#chart').getAttribute('data-points'))";

describe('dashboard', () => {
  if (!hasChromium) {
    it.skip(`needs ${CHROMIUM} (Debian chromium) for the headless browser test`, () => {});
    return;
  }
  it('shows a running simulation’s sites and its chart updates live', async () => {
    const dir = tempDir('fedcxr-dash-');
    await withChromiumPage(async (page, requests) => {
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      let origin = '';
      const t0 = performance.now();
      const mark = (what: string) =>
        process.env.FED_DEBUG && console.log(what, ((performance.now() - t0) / 1000).toFixed(1));
      let resolveCoordinator: (c: Coordinator) => void = () => {};
      const started = new Promise<Coordinator>((resolve) => {
        resolveCoordinator = resolve;
      });
      const points = () => page.getAttribute('#chart', 'data-points').then(Number);
      const seen: number[] = [];
      const simulation = simulate({
        sites: 2,
        data: 'synthetic',
        split: 'iid',
        rounds: 3,
        rows: 400,
        workDir: join(dir.path, 'sim'),
        onCoordinator: resolveCoordinator,
        onProgress: (m) => mark(m),
        // Round by round: the page must show the previous round's points (pushed live) before the next starts.
        beforeRound: async (round) => {
          if (round === 1) {
            await page.waitForFunction(
              "document.querySelectorAll('#sites tr[data-site] td.online').length === 2",
              undefined,
              {
                timeout: 60_000,
              },
            );
            mark('sites online');
          } else {
            const before = seen[seen.length - 1] ?? 0;
            await page.waitForFunction(`${chartPoints} > ${before}`, undefined, { timeout: 60_000 });
          }
          seen.push(await points());
        },
      });
      const coordinator = await started;
      mark('coordinator');
      origin = coordinator.url;
      // The dashboard needs a credential: the page sends the browser to /login, which sets the session cookie.
      await page.goto(`${coordinator.url}/`);
      expect(page.url()).toBe(`${coordinator.url}/login`);
      await page.fill('input[name=token]', coordinator.config.adminToken);
      await Promise.all([page.waitForURL(`${coordinator.url}/`), page.click('button[type=submit]')]);
      expect(await page.title()).toBe('fedcxr coordinator');
      const report = await simulation;
      mark('simulation done');
      await page.waitForFunction(`${chartPoints} > ${seen[2]}`, undefined, { timeout: 30_000 });
      seen.push(await points());
      const sites = await page.$$eval('#sites tr[data-site]', (rows) => rows.map((r) => r.getAttribute('data-site')));
      expect(sites.sort()).toEqual(['site-1', 'site-2']);
      expect(seen[0]).toBe(0);
      for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1]);
      expect(report.rounds).toHaveLength(3);
      expect(await page.$$eval('#chart polyline.series', (lines) => lines.length)).toBeGreaterThan(1);
      expect(await page.textContent('#audit')).toMatch(/round_aggregated/);
      expect(requests.filter((url) => !url.startsWith(origin) && !url.startsWith('ws://127.0.0.1'))).toEqual([]);
      expect(errors).toEqual([]);
    }).finally(() => dir.remove());
  });
});
