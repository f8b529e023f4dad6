/**
 * `cxr fed simulate --report sim.html`: one self-contained page (inline SVG, no scripts) with the rounds as
 * charts (training loss, the sites' validation metric of each round's starting model), the sites' shards,
 * and federated against centralized on the common test split as bars, with the ratio the issue asks for.
 */
import { escapeHtml, lineChart, SERIES_COLORS } from '@fedcxr/core';
import type { RoundSummary } from './coordinator.js';
import type { SimulationReport } from './simulate.js';
import type { DetectorSimulationReport } from './simulate-detector.js';

interface ReportView {
  title: string;
  subtitle: string;
  rounds: RoundSummary[];
  /** Validation metrics the sites report each round (charted together, one table column each). */
  roundMetrics: { key: string; label: string }[];
  comparison: { name: string; federated: number; centralized: number }[];
  /** null: not defined (a zero denominator); `note` says why. */
  ratio: { label: string; value: number | null; note?: string };
  sites: { id: string; train: number; validation: number; patients: number; note?: string }[];
  unit: string;
  /** Where both sides started, and how the starting model scores on the test split. */
  start?: string;
}

function viewOf(report: SimulationReport | DetectorSimulationReport): ReportView {
  const perRound = report.totalEpochs / Math.max(1, report.rounds.length);
  if ('model' in report) {
    return {
      title: `Federated Faster R-CNN (${report.model.backbone}, ${report.model.size} px)`,
      subtitle: `${report.sites.length} sites, ${report.split} split, ${report.rounds.length} rounds × ${perRound} local epoch(s), ${report.aggregation.rule} (server lr η = ${report.aggregation.serverLearningRate}, μ = ${report.aggregation.mu}); centralized: ${report.totalEpochs} epochs on the union; test split: ${report.testImages} images (${report.categories.join(', ')})`,
      rounds: report.rounds,
      // AP50 saturates early on easy data; mAP keeps showing progress.
      roundMetrics: [
        { key: 'ap', label: 'mAP' },
        { key: 'ap50', label: 'AP50' },
      ],
      comparison: [
        { name: 'mAP (AP@[.5:.95])', federated: report.federated.ap, centralized: report.centralized.ap },
        { name: 'AP50', federated: report.federated.ap50, centralized: report.centralized.ap50 },
        { name: 'AR@100', federated: report.federated.ar100, centralized: report.centralized.ar100 },
      ],
      ratio: { label: 'federated / centralized mAP', value: report.mapRatio, note: report.ratioNote },
      sites: report.sites.map((s) => ({
        id: s.id,
        train: s.trainImages,
        validation: s.validationImages,
        patients: s.patients,
        note: s.note,
      })),
      unit: 'images',
      start: `Both sides start from ${report.init ? `the checkpoint ${report.init}` : 'the same random weights'}: mAP ${report.initial.ap.toFixed(4)}, AP50 ${report.initial.ap50.toFixed(4)} on the test split before training.`,
    };
  }
  return {
    title: 'Federated small model (8×8 intensity grids)',
    subtitle: `${report.sites.length} sites, ${report.split} split, ${report.rounds.length} rounds × ${perRound} local epoch(s); test split: ${report.testRows} rows`,
    rounds: report.rounds,
    roundMetrics: [{ key: 'accuracy', label: 'accuracy' }],
    comparison: [{ name: 'accuracy', federated: report.federated.accuracy, centralized: report.centralized.accuracy }],
    ratio: { label: 'federated / centralized accuracy', value: report.accuracyRatio },
    sites: report.sites.map((s) => ({
      id: s.id,
      train: s.trainRows,
      validation: s.validationRows,
      patients: s.patients,
    })),
    unit: 'rows',
  };
}

/** Horizontal bars, federated beside centralized, one group per metric (values in [0, 1]). */
function comparisonBars(rows: ReportView['comparison']): string {
  const barH = 16;
  const groupH = barH * 2 + 18;
  const left = 150;
  const plotW = 320;
  const height = rows.length * groupH + 30;
  const parts: string[] = [];
  rows.forEach((row, i) => {
    const y = 10 + i * groupH;
    parts.push(`<text x="4" y="${y + barH + 4}" font-size="12">${escapeHtml(row.name)}</text>`);
    [
      ['federated', row.federated, SERIES_COLORS[0]],
      ['centralized', row.centralized, SERIES_COLORS[1]],
    ].forEach(([label, value, color], k) => {
      const v = Math.max(0, Math.min(1, Number(value)));
      const by = y + k * (barH + 2);
      parts.push(
        `<rect x="${left}" y="${by}" width="${(v * plotW).toFixed(1)}" height="${barH}" fill="${color}"><title>${label}: ${Number(value).toFixed(4)}</title></rect>`,
        `<text x="${left + v * plotW + 4}" y="${by + barH - 4}" font-size="11">${label} ${Number(value).toFixed(4)}</text>`,
      );
    });
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${left + plotW + 140}" height="${height}" role="img" aria-label="federated and centralized on the test split">${parts.join('')}</svg>`;
}

export function renderSimulationReport(report: SimulationReport | DetectorSimulationReport): string {
  const view = viewOf(report);
  const rounds = view.rounds;
  const loss = lineChart({
    title: 'Training loss per round (example-weighted over sites)',
    xLabel: 'round',
    yLabel: 'loss',
    series: [{ name: 'train loss', points: rounds.map((r) => [r.round, r.train.loss ?? Number.NaN] as const) }],
  });
  const metrics = view.roundMetrics;
  const metric = lineChart({
    title: `Sites’ validation ${metrics.map((m) => m.label).join(' and ')} of the model each round started from`,
    xLabel: 'round',
    yLabel: metrics.length === 1 ? metrics[0].key : 'score',
    yRange: [0, 1],
    series: metrics.map((m) => ({
      name: m.label,
      points: rounds.map((r) => [r.round, r.validation[m.key] ?? Number.NaN] as const),
    })),
  });
  const siteRows = view.sites
    .map(
      (s) =>
        `<tr><td>${escapeHtml(s.id)}</td><td>${s.train}</td><td>${s.validation}${s.note ? ` <small>(${escapeHtml(s.note)})</small>` : ''}</td><td>${s.patients}</td></tr>`,
    )
    .join('');
  const roundRows = rounds
    .map(
      (r) =>
        `<tr><td>${r.round}</td><td>${[...r.sites].sort().map(escapeHtml).join(', ')}</td><td>${r.numExamples}</td><td>${(r.train.loss ?? Number.NaN).toFixed(4)}</td>${metrics.map((m) => `<td>${(r.validation[m.key] ?? Number.NaN).toFixed(4)}</td>`).join('')}<td>${(r.durationMs / 1000).toFixed(1)}</td><td><code>${escapeHtml(r.modelHash.slice(0, 12))}</code></td></tr>`,
    )
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(view.title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}table{border-collapse:collapse;margin:8px 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
.ratio{font-size:28px;font-weight:600}.charts{display:flex;flex-wrap:wrap;gap:16px}</style></head>
<body><h1>${escapeHtml(view.title)}</h1><p>${escapeHtml(view.subtitle)}</p>
<section id="result"><h2>Federated against centralized (test split)</h2>
<p class="ratio" id="ratio">${escapeHtml(view.ratio.label)}: ${view.ratio.value === null ? `n/a</p><p id="ratio-note">${escapeHtml(view.ratio.note ?? 'the centralized score is 0')}` : view.ratio.value.toFixed(4)}</p>${view.start ? `<p id="start">${escapeHtml(view.start)}</p>` : ''}${comparisonBars(view.comparison)}</section>
<section id="rounds"><h2>Rounds</h2><div class="charts">${loss}${metric}</div>
<table><tr><th>round</th><th>sites</th><th>examples</th><th>train loss</th>${metrics.map((m) => `<th>${escapeHtml(m.label)}</th>`).join('')}<th>seconds</th><th>model</th></tr>${roundRows}</table></section>
<section id="sites"><h2>Sites (patient-disjoint shards)</h2><table><tr><th>site</th><th>train ${view.unit}</th><th>validation ${view.unit}</th><th>patients</th></tr>${siteRows}</table></section>
</body></html>
`;
}
