/**
 * The training report: `runs/<name>/report.html`, one self-contained file (inline SVG charts, images as
 * PNG data URLs, no scripts, no network): loss curves, metrics per epoch, the per-class AP table, PR and
 * FROC curves, predictions against ground truth on validation images, and a slot for heat maps.
 */
import { join } from 'node:path';
import { writeFileAtomic } from '@fedcxr/base';
import type { CocoCategory } from '../coco.js';
import type { DetectorImage } from '../model.js';
import { CLASS_COLORS, drawBoxes, encodeRgbPng, greyToRgb, type OverlayBox } from '../overlay.js';
import type { EpochRecord, ValidationDetail } from '../train/loop.js';
import { escapeHtml, type LineSeries, lineChart } from './charts.js';

export interface ReportImage {
  title: string;
  /** `data:image/png;base64,…` */
  src: string;
  caption?: string;
}

export interface TrainingReportInput {
  title: string;
  /** Key facts shown at the top (detector, backbone, data, recipe…). */
  facts: Record<string, string | number>;
  history: readonly EpochRecord[];
  best: { epoch: number; metric: string; value: number } | null;
  /** Validation detail of the best epoch (PR and FROC curves). */
  validation?: ValidationDetail;
  predictions: readonly ReportImage[];
  /** Explanation heat maps (EigenCAM/AblationCAM) when available. */
  heatmaps?: readonly ReportImage[];
  generatedAt?: string;
}

const METRIC_COLUMNS = ['AP', 'AP50', 'AP75', 'APl', 'AR100', 'FROC', 'loss'] as const;

export function renderTrainingReport(input: TrainingReportInput): string {
  const h = input.history;
  const lossNames = [...new Set(h.flatMap((r) => Object.keys(r.train)))]
    .filter((n) => n !== 'grad_norm')
    .sort((a, b) => (a === 'loss' ? -1 : b === 'loss' ? 1 : a.localeCompare(b)));
  const lossSeries: LineSeries[] = lossNames.map((name) => ({
    name: name === 'loss' ? 'train loss' : name,
    points: h.map((r) => [r.epoch, r.train[name]] as const),
  }));
  const valLoss = h.filter((r) => r.val?.loss !== undefined).map((r) => [r.epoch, r.val?.loss as number] as const);
  if (valLoss.length > 0) lossSeries.push({ name: 'val loss', points: valLoss, dashed: true, color: '#000' });
  const metricSeries: LineSeries[] = ['AP', 'AP50', 'AP75', 'AR100', 'FROC'].map((name) => ({
    name,
    points: h.filter((r) => r.val && (r.val[name] ?? -1) >= 0).map((r) => [r.epoch, r.val?.[name] as number] as const),
  }));
  const sections: string[] = [];
  sections.push(
    `<section id="losses"><h2>Losses</h2>${lineChart({ title: 'Loss per epoch', xLabel: 'epoch', yLabel: 'loss', series: lossSeries })}</section>`,
  );
  sections.push(
    `<section id="metrics"><h2>Validation metrics</h2>${
      metricSeries.some((s) => s.points.length > 0)
        ? lineChart({
            title: 'COCO metrics per epoch',
            xLabel: 'epoch',
            yLabel: 'value',
            series: metricSeries,
            yRange: [0, 1],
          })
        : '<p class="empty">No validation set: no metrics.</p>'
    }${epochTable(h, input.best?.epoch)}</section>`,
  );
  const bestRecord = h.find((r) => r.epoch === input.best?.epoch) ?? [...h].reverse().find((r) => r.perCategory);
  sections.push(
    `<section id="per-class"><h2>Per-class AP${bestRecord ? ` (epoch ${bestRecord.epoch})` : ''}</h2>${perClassTable(bestRecord)}</section>`,
  );
  const v = input.validation;
  const prChart = v?.pr.length
    ? lineChart({
        title: `Precision–recall at IoU 0.5 (epoch ${v.epoch})`,
        xLabel: 'recall',
        yLabel: 'precision',
        series: v.pr.map((c) => ({
          name: c.name,
          points: c.recall.map((r, i) => [r, c.precision[i]] as const).filter(([, p]) => p >= 0),
        })),
        xRange: [0, 1],
        yRange: [0, 1],
      })
    : '<p class="empty">No validation curves yet.</p>';
  const frocPoints = v
    ? v.froc.fpsPerImage.map((fp, i) => [fp, v.froc.sensitivity[i]] as const).filter(([fp]) => fp > 0)
    : [];
  const frocChart =
    v && frocPoints.length > 0
      ? lineChart({
          title: `FROC (score ${v.froc.score.toFixed(3)})`,
          xLabel: 'false positives per image',
          yLabel: 'sensitivity',
          series: [
            { name: 'FROC curve', points: frocPoints },
            {
              name: 'LUNA16 points',
              points: v.froc.fpRates.map((r, i) => [r, v.froc.sensitivities[i]] as const),
              dashed: true,
            },
          ],
          logX: true,
          xRange: [0.125, 8],
          yRange: [0, 1],
        })
      : '<p class="empty">No false positives or no targets: no FROC curve.</p>';
  sections.push(
    `<section id="curves"><h2>PR and FROC curves</h2><div class="row">${prChart}${frocChart}</div></section>`,
  );
  sections.push(
    `<section id="predictions"><h2>Predictions vs ground truth</h2><p>Ground truth in green; predictions (score ≥ 0.3) in class colours.</p>${imageGrid(input.predictions, 'No validation images to show.')}</section>`,
  );
  sections.push(
    `<section id="heatmaps" data-slot="heatmaps"><h2>Heat maps</h2>${imageGrid(
      input.heatmaps ?? [],
      'No heat maps yet: run <code>cxr explain</code> on the best model to add EigenCAM/AblationCAM maps here.',
    )}</section>`,
  );
  const facts = Object.entries(input.facts)
    .map(([k, value]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(String(value))}</td></tr>`)
    .join('');
  const best = input.best
    ? `<p class="best">Best epoch: <b>${input.best.epoch}</b> by ${escapeHtml(input.best.metric)} = ${formatNumber(input.best.value)}</p>`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(input.title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:17px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}
table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f6f6f6}table.facts th,table.facts td{text-align:left}tr.best td{background:#eef7ee;font-weight:bold}
.row{display:flex;flex-wrap:wrap;gap:16px}.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:12px}
figure{margin:0}figure img{width:100%;image-rendering:pixelated;border:1px solid #ccc}figcaption{font-size:12px;color:#555}
.empty{color:#777;font-style:italic}
</style></head><body>
<h1>${escapeHtml(input.title)}</h1>
<table class="facts">${facts}</table>
${best}
${sections.join('\n')}
<footer><p class="empty">Generated ${escapeHtml(input.generatedAt ?? new Date().toISOString())} by fedcxr.</p></footer>
</body></html>
`;
}

function epochTable(history: readonly EpochRecord[], bestEpoch: number | undefined): string {
  if (history.length === 0) return '';
  const head = `<tr><th>epoch</th><th>lr</th><th>train loss</th>${METRIC_COLUMNS.map((c) => `<th>${c === 'loss' ? 'val loss' : c}</th>`).join('')}<th>seconds</th></tr>`;
  const rows = history
    .map((r) => {
      const cells = METRIC_COLUMNS.map(
        (c) => `<td>${r.val?.[c] === undefined ? '' : formatNumber(r.val[c])}</td>`,
      ).join('');
      return `<tr${r.epoch === bestEpoch ? ' class="best"' : ''}><td>${r.epoch}</td><td>${r.lr.toExponential(2)}</td><td>${formatNumber(r.train.loss)}</td>${cells}<td>${r.seconds.toFixed(1)}</td></tr>`;
    })
    .join('');
  return `<table class="epochs">${head}${rows}</table>`;
}

function perClassTable(record: EpochRecord | undefined): string {
  if (!record?.perCategory?.length) return '<p class="empty">No per-class metrics yet.</p>';
  const rows = record.perCategory
    .map(
      (c) =>
        `<tr><td style="text-align:left">${escapeHtml(c.name)}</td><td>${c.id}</td><td>${formatNumber(c.AP)}</td><td>${formatNumber(c.AP50)}</td></tr>`,
    )
    .join('');
  return `<table class="per-class"><tr><th>class</th><th>id</th><th>AP</th><th>AP50</th></tr>${rows}</table>`;
}

function imageGrid(images: readonly ReportImage[], empty: string): string {
  if (images.length === 0) return `<p class="empty">${empty}</p>`;
  return `<div class="grid">${images
    .map(
      (im) =>
        `<figure><img alt="${escapeHtml(im.title)}" src="${im.src}"><figcaption>${escapeHtml(im.title)}${im.caption ? ` — ${escapeHtml(im.caption)}` : ''}</figcaption></figure>`,
    )
    .join('')}</div>`;
}

function formatNumber(value: number): string {
  if (value === -1) return 'n/a';
  return Number.isInteger(value) ? String(value) : value.toFixed(3);
}

/**
 * Pictures of predictions against ground truth, downscaled to at most `maxSide` pixels: ground truth in
 * green, predictions with score ≥ `minScore` in their class colour with name and score.
 */
export async function predictionImages(
  samples: ValidationDetail['samples'],
  loadImage: (index: number) => Promise<DetectorImage>,
  categories: readonly CocoCategory[],
  options: { maxSide?: number; minScore?: number; title?: (imageId: number) => string } = {},
): Promise<ReportImage[]> {
  const out: ReportImage[] = [];
  for (const sample of samples) {
    const image = await loadImage(sample.index);
    const { pixels, width, height, scale } = downscale(image, options.maxSide ?? 320);
    const boxes: OverlayBox[] = [];
    for (let i = 0; i < sample.labels.length; i++) {
      const b = sample.boxes.slice(i * 4, i * 4 + 4).map((v) => v * scale);
      boxes.push({ box: b as [number, number, number, number], color: [0, 200, 0] });
    }
    const shown = sample.detections.filter((d) => d.score >= (options.minScore ?? 0.3));
    for (const d of shown) {
      const name = categories[d.label - 1]?.name ?? String(d.label);
      boxes.push({
        box: d.box.map((v) => v * scale) as [number, number, number, number],
        text: `${name} ${d.score.toFixed(2)}`,
        color: CLASS_COLORS[(d.label - 1 + 3) % CLASS_COLORS.length],
      });
    }
    const png = encodeRgbPng(drawBoxes(greyToRgb(pixels, width, height), boxes));
    out.push({
      title: options.title?.(sample.imageId) ?? `image ${sample.imageId}`,
      src: `data:image/png;base64,${Buffer.from(png).toString('base64')}`,
      caption: `${sample.labels.length} true, ${shown.length} predicted`,
    });
  }
  return out;
}

/**
 * Resizes a grey (or averaged colour) image for display so its longer side is about `maxSide`: a box
 * filter when shrinking, whole-pixel replication when enlarging (small images would otherwise be dwarfed
 * by their box labels).
 */
function downscale(
  image: DetectorImage,
  maxSide: number,
): { pixels: Float32Array; width: number; height: number; scale: number } {
  const longer = Math.max(image.width, image.height);
  const c = image.channels;
  if (longer * 2 <= maxSide) {
    const factor = Math.floor(maxSide / longer);
    const width = image.width * factor;
    const height = image.height * factor;
    const pixels = new Float32Array(width * height);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const o = (Math.floor(y / factor) * image.width + Math.floor(x / factor)) * c;
        let sum = 0;
        for (let ch = 0; ch < c; ch++) sum += image.pixels[o + ch];
        pixels[y * width + x] = sum / c;
      }
    }
    return { pixels, width, height, scale: factor };
  }
  const factor = Math.max(1, Math.ceil(longer / maxSide));
  const width = Math.floor(image.width / factor);
  const height = Math.floor(image.height / factor);
  const pixels = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let sum = 0;
      for (let dy = 0; dy < factor; dy++) {
        for (let dx = 0; dx < factor; dx++) {
          const o = ((y * factor + dy) * image.width + x * factor + dx) * c;
          for (let ch = 0; ch < c; ch++) sum += image.pixels[o + ch];
        }
      }
      pixels[y * width + x] = sum / (factor * factor * c);
    }
  }
  return { pixels, width, height, scale: 1 / factor };
}

export async function writeTrainingReport(runDir: string, input: TrainingReportInput): Promise<string> {
  const path = join(runDir, 'report.html');
  await writeFileAtomic(path, renderTrainingReport(input));
  return path;
}
