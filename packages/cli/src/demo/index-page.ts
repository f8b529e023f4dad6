/** The demo's landing page: what ran, how long it took, the metrics, and every picture it produced. */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

export interface DemoStage {
  name: string;
  seconds: number;
}

/** One heat map of the explain stage: its PNG under explain/, and whether its hottest pixel is in the box. */
export interface DemoExplanation {
  file: string;
  title: string;
  peakInBox: boolean;
  /** Drawn inside the box only (its hottest point is then in the box by construction, so none is claimed). */
  withinBox: boolean;
}

export interface DemoSummary {
  out: string;
  stages: DemoStage[];
  total: number;
  metrics: { stats: number[]; froc?: { score: number } | null };
  /** The phantom: its patients and labelled images, the classes it drew, and the seed's classes it left out. */
  phantom: { patients: number; images: number; classes?: string[]; omitted?: string[] };
  /** The training run's validation AP/AP50 per epoch (log.jsonl), shown as a table. */
  epochs?: { epoch: number; ap: number; ap50: number; loss: number }[];
  explanations: DemoExplanation[];
  federated: Record<string, unknown>;
}

const escapeHtml = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

async function listPngs(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((f) => f.endsWith('.png')).sort();
  } catch {
    return [];
  }
}

export async function demoIndexHtml(summary: DemoSummary): Promise<string> {
  const overlays = await listPngs(join(summary.out, 'predict', 'overlays'));
  const [ap, ap50, ap75] = summary.metrics.stats;
  const maxSeconds = Math.max(...summary.stages.map((s) => s.seconds), 1);
  const rows = summary.stages
    .map(
      (s) =>
        `<tr><td>${escapeHtml(s.name)}</td><td class="num">${s.seconds.toFixed(1)} s</td><td><svg width="220" height="12"><rect width="${((220 * s.seconds) / maxSeconds).toFixed(1)}" height="12" fill="#4e79a7"/></svg></td></tr>`,
    )
    .join('\n');
  const figure = (src: string, caption: string) =>
    `<figure><img src="${escapeHtml(src)}" alt="${escapeHtml(caption)}"><figcaption>${escapeHtml(caption)}</figcaption></figure>`;
  const federatedJson = escapeHtml(JSON.stringify(summary.federated, null, 2).slice(0, 4000));
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fedcxr demo</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem} table{border-collapse:collapse} td,th{padding:.25rem .6rem;border-bottom:1px solid #eee;text-align:left}
.num{text-align:right;font-variant-numeric:tabular-nums} .grid{display:flex;flex-wrap:wrap;gap:1rem}
figure{margin:0} figure img{width:256px;image-rendering:pixelated;border:1px solid #ccc} figcaption{font-size:12px;color:#555}
.cards{display:flex;gap:1rem;flex-wrap:wrap} .card{border:1px solid #ddd;border-radius:6px;padding:.6rem 1rem;min-width:9rem}
.card b{display:block;font-size:1.6rem} .card small{display:block;font-size:12px;color:#555;max-width:22rem} .warn{color:#a33} pre{background:#f6f6f6;padding:.6rem;overflow:auto;max-height:16rem}
</style></head><body>
<h1>fedcxr demo</h1>
<p>A synthetic chest-phantom hospital export (${summary.phantom.images} labelled DICOM images of ${summary.phantom.patients} patients)
taken through every stage, each one the real <code>cxr</code> command, in ${summary.total.toFixed(0)} s.</p>
${classesNote(summary.phantom)}
<h2>Detector on the validation split</h2>
<div class="cards">
<div class="card">AP50<b>${ap50.toFixed(3)}</b></div>
<div class="card">mAP (AP@[.5:.95])<b>${ap.toFixed(3)}</b></div>
<div class="card">AP75<b>${ap75.toFixed(3)}</b></div>
${summary.metrics.froc ? `<div class="card">FROC score<b>${summary.metrics.froc.score.toFixed(3)}</b></div>` : ''}
</div>
${epochTable(summary.epochs)}
<h2>Reports</h2>
<ul>
<li><a href="train/report.html">Training report</a> — loss curves, metrics per epoch, per-class AP, PR and FROC curves, predictions on validation images</li>
<li><a href="dataset-stats.html">Dataset statistics</a> — boxes per class, box sizes, images per patient</li>
<li><a href="predict/results.json">COCO results</a>, <a href="predict/detections.csv">CSV</a>, DICOM Structured Reports in <code>predict/sr/</code></li>
<li>ONNX model: <code>model/detector.onnx</code></li>
</ul>
<h2>Predictions on the unlabelled test images</h2>
<div class="grid">${overlays.map((f) => figure(`predict/overlays/${f}`, f)).join('\n')}</div>
<h2>Explanations</h2>
<p>What the most confident test detection rests on. <b>Occlusion</b> covers the image with a patch of its mean
grey, window by window, and maps how far the box's score falls: it reads only the detector's output. <b>EigenCAM</b>
(the first principal component of the feature pyramid, class-agnostic) and <b>AblationCAM</b> (how much the box's
score drops when each feature channel is ablated, times that channel's activation) weight activation magnitudes:
in a detector trained from random weights for minutes those are largest at the body's outline and the image's
border, so over the whole image they need not point at the finding even when the detector does. Inside the box,
pytorch-grad-cam's <code>renormalize_cam_in_bounding_boxes</code> shows which part of the box they weight.</p>
<div class="grid">${summary.explanations.map((e) => figure(`explain/${e.file}`, `${e.title}${e.withinBox ? '' : e.peakInBox ? ' — hottest inside the box' : ' — hottest outside the box'}`)).join('\n')}</div>
<h2>Federated simulation</h2>
<p><a href="federated.html">Federated Faster R-CNN report</a> — two hospitals with patients of their own (a second
phantom cohort that the detector above never saw) each ran a site process on its patient-disjoint shard, starting from
the detector trained above, as hospitals start from a shared pretrained model; the coordinator aggregated with FedAvg.
Beside it, the same detector from the same start trained centrally on the pooled shards for the same epochs; all three
are scored on the cohort's held-out test patients.</p>
${federatedCards(summary.federated)}
<details><summary>JSON</summary><pre>${federatedJson}</pre></details>
<h2>Stages</h2>
<table><thead><tr><th>stage</th><th class="num">time</th><th></th></tr></thead><tbody>
${rows}
</tbody></table>
</body></html>
`;
}

/** Which of the seed's classes the phantom drew, and which it left out (a smaller demo says so). */
function classesNote(phantom: DemoSummary['phantom']): string {
  if (!phantom.classes) return '';
  const list = (names: string[]) => names.map((n) => `<code>${escapeHtml(n)}</code>`).join(', ');
  const findings = phantom.classes.filter((c) => c !== 'normal');
  const omitted = phantom.omitted ?? [];
  return `<p id="classes">Classes: ${list(findings)}${phantom.classes.includes('normal') ? ' and <code>normal</code> images without findings' : ''}, each drawn large and high-contrast in its own place so that a detector trained from random weights learns them in CPU minutes.${
    omitted.length > 0
      ? ` This demo leaves out ${omitted.length} of the seed's ${findings.length + omitted.length} findings (${list(omitted)}): a smaller detector trains in the time budget; <code>cxr train</code> takes all of them.`
      : ''
  }</p>`;
}

/** Validation AP50 and mAP per epoch: the detector learning. */
function epochTable(epochs: DemoSummary['epochs']): string {
  if (!epochs || epochs.length === 0) return '';
  const rows = epochs
    .map(
      (e) =>
        `<tr><td class="num">${e.epoch}</td><td class="num">${e.loss.toFixed(3)}</td><td class="num">${e.ap50.toFixed(3)}</td><td class="num">${e.ap.toFixed(3)}</td></tr>`,
    )
    .join('');
  return `<details id="epochs"><summary>Validation per epoch</summary><table><thead><tr><th>epoch</th><th class="num">train loss</th><th class="num">AP50</th><th class="num">mAP</th></tr></thead><tbody>${rows}</tbody></table></details>`;
}

/**
 * Federated against centralized mAP as cards (what `fed simulate --model faster_rcnn --json` reports): both
 * numbers with their ratio, "n/a" with the reason where the centralized mAP is 0 (never 0/0 as 0), and why a
 * site has no validation images where one has none.
 */
export function federatedCards(report: Record<string, unknown>): string {
  const ap = (key: string): number | undefined => {
    const value = (report[key] as { ap?: unknown } | undefined)?.ap;
    return typeof value === 'number' ? value : undefined;
  };
  const federated = ap('federated');
  const centralized = ap('centralized');
  const initial = ap('initial');
  const show = (v: number | undefined) => (v === undefined ? '–' : v.toFixed(3));
  const ratioDefined = typeof report.mapRatio === 'number' && centralized !== undefined && centralized > 0;
  const ratio = ratioDefined ? (report.mapRatio as number).toFixed(3) : 'n/a';
  const reason = ratioDefined
    ? `${show(federated)} / ${show(centralized)}`
    : typeof report.ratioNote === 'string'
      ? report.ratioNote.replace(/^n\/a: /, '')
      : centralized === undefined
        ? 'no centralized score was reported'
        : `the centralized mAP is 0 (federated ${show(federated)}): a ratio of zeros means nothing`;
  const sites = Array.isArray(report.sites)
    ? (report.sites as { id?: unknown; validationImages?: unknown; note?: unknown; patients?: unknown }[])
    : [];
  const without = sites.filter((s) => s.validationImages === 0);
  const siteNote =
    without.length === 0
      ? sites.length > 0
        ? `<p id="site-validation">Every site validated each round on its own held-out patients (${sites.map((s) => `${escapeHtml(String(s.id))}: ${String(s.validationImages)} images`).join(', ')}).</p>`
        : ''
      : `<p id="site-validation" class="warn">${without
          .map(
            (s) =>
              `${escapeHtml(String(s.id))} has no validation images: ${escapeHtml(typeof s.note === 'string' ? s.note : `its shard (${String(s.patients)} patient(s)) is too small to hold one out`)}; its rounds are validated by the other sites only.`,
          )
          .join(' ')}</p>`;
  const startCard =
    initial === undefined
      ? ''
      : `<div class="card" id="fed-start">starting model mAP<b>${show(initial)}</b><small>${typeof report.init === 'string' ? 'the checkpoint both sides started from' : 'random weights'}, on the same test split</small></div>`;
  return `<div class="cards">${startCard}<div class="card">federated mAP<b>${show(federated)}</b></div><div class="card">centralized mAP<b>${show(centralized)}</b></div><div class="card" id="fed-ratio">federated / centralized<b>${ratio}</b><small>${escapeHtml(reason)}</small></div></div>
${siteNote}`;
}
