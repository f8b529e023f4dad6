/**
 * bench/quality's report: results.json (every number) and report.html (one self-contained page): both sides'
 * training loss and validation AP/AP50 per epoch, overlaid per seed, then the test table — AP, AP50, AP75,
 * AR100 and FROC for torchvision and fedcxr, each scored by pycocotools and by `cxr eval`, the mean over seeds,
 * and the ratio ours/torchvision.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
// The chart module alone (no TensorFlow.js): the orchestrator is bundled small for the GPU machine.
import { escapeHtml, lineChart } from '../../packages/core/src/report/charts.js';
import type { BootstrapResult } from './bootstrap.js';
import type { SeedResult } from './quality.js';

const TABLE_METRICS = ['AP', 'AP50', 'AP75', 'AR100', 'FROC'] as const;
const TORCHVISION = '#1f77b4';
const OURS = '#d62728';

export interface QualitySummary {
  config: string;
  seeds: number[];
  backend: string;
  /** Mean over seeds, test split: torchvision and ours scored by pycocotools (FROC by `cxr eval`). */
  mean: { torchvision: Record<string, number>; ours: Record<string, number>; ratio: Record<string, number | null> };
  bestEpochs: { torchvision: number[]; ours: number[] };
  /** Epochs each side trained, per seed (fewer than planned when a time limit stopped fedcxr's run). */
  epochsTrained: { planned: number; torchvision: number[]; ours: number[] };
  minutes: { torchvision: number; ours: number };
  /**
   * Paired bootstrap over the test images of the ratio of the seeds' means (bootstrap.ts); null with the reason
   * when a seed's saved predictions are not in this run's folder.
   */
  bootstrap: BootstrapResult | { unavailable: string };
}

/** What the main table shows for one side: pycocotools' COCO numbers, FROC from `cxr eval` (pycocotools has none). */
function headline(side: SeedResult['ours']): Record<string, number> {
  return {
    AP: side.test.pycocotools.AP,
    AP50: side.test.pycocotools.AP50,
    AP75: side.test.pycocotools.AP75,
    AR100: side.test.pycocotools.AR100,
    FROC: side.test.fedcxr.FROC,
  };
}

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);

export function summarize(
  config: string,
  seeds: SeedResult[],
  planned: number,
  bootstrap: QualitySummary['bootstrap'],
): QualitySummary {
  const side = (pick: (s: SeedResult) => SeedResult['ours']) =>
    Object.fromEntries(TABLE_METRICS.map((m) => [m, mean(seeds.map((s) => headline(pick(s))[m]))]));
  const torchvision = side((s) => s.torchvision);
  const ours = side((s) => s.ours);
  return {
    config,
    seeds: seeds.map((s) => s.seed),
    backend: seeds[0]?.backend ?? 'auto',
    mean: {
      torchvision,
      ours,
      // No ratio of two zeros: a configuration that learned nothing on the torchvision side says so.
      ratio: Object.fromEntries(TABLE_METRICS.map((m) => [m, torchvision[m] > 0 ? ours[m] / torchvision[m] : null])),
    },
    bestEpochs: { torchvision: seeds.map((s) => s.torchvision.bestEpoch), ours: seeds.map((s) => s.ours.bestEpoch) },
    epochsTrained: {
      planned,
      torchvision: seeds.map((s) => s.torchvision.history.length),
      ours: seeds.map((s) => s.ours.history.length),
    },
    minutes: {
      torchvision: mean(seeds.map((s) => s.torchvision.seconds)) / 60,
      ours: mean(seeds.map((s) => s.ours.seconds)) / 60,
    },
    bootstrap,
  };
}

const fmt = (v: number | null | undefined, digits = 3) => (v === null || v === undefined ? 'n/a' : v.toFixed(digits));

export function writeQualityReport(
  outDir: string,
  run: { config: string; recipe: unknown; epochs: number; seeds: SeedResult[]; bootstrap: QualitySummary['bootstrap'] },
): QualitySummary {
  const summary = summarize(run.config, run.seeds, run.epochs, run.bootstrap);
  const trained = summary.epochsTrained;
  const unequal = [...trained.torchvision, ...trained.ours].some((n) => n !== trained.planned);
  writeFileSync(
    path.join(outDir, 'results.json'),
    `${JSON.stringify({ summary, recipe: run.recipe, seeds: run.seeds }, null, 1)}\n`,
  );
  const charts: string[] = [];
  for (const seed of run.seeds) {
    const curve = (side: SeedResult['ours'], pick: (h: SeedResult['ours']['history'][number]) => number | undefined) =>
      side.history.map((h) => [h.epoch, pick(h) ?? Number.NaN] as const);
    const pair = (
      title: string,
      yLabel: string,
      pick: (h: SeedResult['ours']['history'][number]) => number | undefined,
    ) =>
      lineChart({
        title: `${title} (seed ${seed.seed})`,
        xLabel: 'epoch',
        yLabel,
        series: [
          { name: 'torchvision', color: TORCHVISION, points: curve(seed.torchvision, pick) },
          { name: `fedcxr (${seed.backend})`, color: OURS, dashed: true, points: curve(seed.ours, pick) },
        ],
      });
    charts.push(
      pair('training loss', 'mean loss', (h) => h.train.loss),
      pair('validation AP', 'AP@[.5:.95]', (h) => h.val?.AP),
      pair('validation AP50', 'AP50', (h) => h.val?.AP50),
    );
  }
  const rows = (label: string, pick: (s: SeedResult) => Record<string, number>) =>
    run.seeds
      .map(
        (s) =>
          `<tr><td>${escapeHtml(label)}</td><td>${s.seed}</td>${TABLE_METRICS.map((m) => `<td>${fmt(pick(s)[m])}</td>`).join('')}</tr>`,
      )
      .join('');
  const cross = run.seeds
    .map(
      (s) =>
        `<tr><td>${s.seed}</td><td>${fmt(s.torchvision.test.pycocotools.AP, 4)}</td><td>${fmt(s.torchvision.test.fedcxr.AP, 4)}</td><td>${fmt(s.ours.test.pycocotools.AP, 4)}</td><td>${fmt(s.ours.test.fedcxr.AP, 4)}</td></tr>`,
    )
    .join('');
  const { mean: m } = summary;
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>fedcxr vs torchvision: ${escapeHtml(run.config)}</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;max-width:1200px}table{border-collapse:collapse;margin:12px 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}th{background:#f4f4f4}td:first-child{text-align:left}.charts{display:flex;flex-wrap:wrap;gap:8px}</style></head><body>
<h1>Does fedcxr learn as well as torchvision? (${escapeHtml(run.config)})</h1>
<p>Same RSNA patient split, normalization, resolution, recipe and initial weights (torchvision's, imported with
<code>cxr weights import</code>).${
    (run.recipe as { draws?: string }).draws === 'fedcxr'
      ? ' <b>Paired draws</b>: the torchvision side visited the images in fedcxr&rsquo;s order with fedcxr&rsquo;s augmentations and sampled fedcxr&rsquo;s anchors and RoIs, so the two runs differ by floating point only.'
      : ' Each side draws its own random numbers (image order, augmentations, sampled anchors and RoIs).'
  } Best epoch by validation AP; scored on the held-out test split. fedcxr engine:
<b>${escapeHtml(summary.backend)}</b>. Seeds ${summary.seeds.join(', ')}; mean minutes per run: torchvision
${fmt(summary.minutes.torchvision, 1)}, fedcxr ${fmt(summary.minutes.ours, 1)}.</p>
<h2>Test split, mean over seeds</h2>
<table><tr><th></th>${TABLE_METRICS.map((k) => `<th>${k}</th>`).join('')}</tr>
<tr><td>torchvision</td>${TABLE_METRICS.map((k) => `<td>${fmt(m.torchvision[k])}</td>`).join('')}</tr>
<tr><td>fedcxr</td>${TABLE_METRICS.map((k) => `<td>${fmt(m.ours[k])}</td>`).join('')}</tr>
<tr><td><b>ours / torchvision</b></td>${TABLE_METRICS.map((k) => `<td><b>${fmt(m.ratio[k], 2)}</b></td>`).join('')}</tr></table>
<p>COCO numbers by pycocotools; FROC (sensitivity at 1/8…8 false positives per image) by <code>cxr eval</code>. Best
epochs: torchvision ${summary.bestEpochs.torchvision.join(', ')}; fedcxr ${summary.bestEpochs.ours.join(', ')}.</p>
${unequal ? `<p style="color:#b00"><b>Not at equal epochs:</b> planned ${trained.planned}; torchvision trained ${trained.torchvision.join(', ')}, fedcxr ${trained.ours.join(', ')} (a time limit stopped a run): the ratios compare unequal training.</p>` : ''}
${bootstrapSection(summary.bootstrap)}
<h2>Per seed</h2>
<table><tr><th>side</th><th>seed</th>${TABLE_METRICS.map((k) => `<th>${k}</th>`).join('')}</tr>
${rows('torchvision', (s) => headline(s.torchvision))}${rows('fedcxr', (s) => headline(s.ours))}</table>
<h2>Each side scored by the other's evaluator (AP)</h2>
<table><tr><th>seed</th><th>torchvision by pycocotools</th><th>torchvision by cxr eval</th><th>fedcxr by pycocotools</th><th>fedcxr by cxr eval</th></tr>${cross}</table>
<h2>Curves</h2><div class="charts">${charts.join('')}</div>
</body></html>
`;
  writeFileSync(path.join(outDir, 'report.html'), html);
  return summary;
}

/** The ratios' 95 % intervals from the paired bootstrap, with how often a draw meets the goal. */
function bootstrapSection(bootstrap: QualitySummary['bootstrap']): string {
  if ('unavailable' in bootstrap) return `<p>No bootstrap interval: ${escapeHtml(bootstrap.unavailable)}</p>`;
  const rows = Object.entries(bootstrap.ratio)
    .map(
      ([metric, r]) =>
        `<tr><td>${escapeHtml(metric)}</td><td>${fmt(r.observed, 2)}</td><td>${fmt(r.low, 2)} – ${fmt(r.high, 2)}</td><td>${(100 * r.atLeastGoal).toFixed(0)} %</td></tr>`,
    )
    .join('');
  return `<h2>How sure: a paired bootstrap over the ${bootstrap.images} test images (seed${bootstrap.seeds.length > 1 ? 's' : ''} ${bootstrap.seeds.join(', ')})</h2>
<p>${bootstrap.resamples} draws of the test images with replacement; on each, both sides' saved predictions are scored on
the same draw and the seeds' mean ratio taken.${bootstrap.missing.length > 0 ? ` Left out: ${escapeHtml(bootstrap.missing.join('; '))}.` : ''} A 95 % interval that holds both 1 and the goal (${bootstrap.goal}) means
the test split cannot tell the two apart.</p>
<table><tr><th>ours / torchvision</th><th>on the test split</th><th>95 % interval</th><th>draws ≥ ${bootstrap.goal}</th></tr>${rows}</table>`;
}
