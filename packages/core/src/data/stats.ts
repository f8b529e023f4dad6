/**
 * Dataset statistics (images, patients, boxes per class, boxes per image, box sizes, images per patient,
 * image sizes, COCO area ranges) and a self-contained HTML page with the histograms drawn as inline SVG.
 */
import type { CocoDataset } from '../coco.js';
import { patientOf } from './split.js';

export interface Distribution {
  count: number;
  min: number;
  p25: number;
  median: number;
  p75: number;
  max: number;
  mean: number;
}

export interface Histogram {
  /** Bin lower edges (for integer counts: the values themselves). */
  edges: number[];
  counts: number[];
  /** Human labels of the bins. */
  labels: string[];
}

export interface DatasetStats {
  images: number;
  patients: number;
  annotations: number;
  negatives: number;
  categories: { id: number; name: string; images: number; boxes: number }[];
  /** How many images have 0, 1, 2, … boxes. */
  boxesPerImage: Histogram;
  /** How many patients have 1, 2, … images. */
  imagesPerPatient: Histogram;
  boxWidth: Distribution;
  boxHeight: Distribution;
  /** sqrt(box area) in pixels: the scale COCO's small/medium/large ranges are defined on. */
  boxSide: Distribution;
  boxSideHistogram: Histogram;
  /** Box area as a fraction of its image's area. */
  boxRelativeArea: Distribution;
  /** COCO area ranges: small < 32², medium < 96², large ≥ 96² (pixels of the written images). */
  areaRanges: { small: number; medium: number; large: number };
  /** "WxH" → images. */
  imageSizes: Record<string, number>;
}

export function datasetStats(dataset: CocoDataset): DatasetStats {
  const imageById = new Map(dataset.images.map((image) => [image.id, image]));
  const perImage = new Map<number, number>();
  const categories = dataset.categories.map((c) => ({ id: c.id, name: c.name, images: 0, boxes: 0 }));
  const byId = new Map(categories.map((c) => [c.id, c]));
  const imagesWithCategory = new Map<number, Set<number>>();
  const widths: number[] = [];
  const heights: number[] = [];
  const sides: number[] = [];
  const relative: number[] = [];
  const areaRanges = { small: 0, medium: 0, large: 0 };
  for (const a of dataset.annotations) {
    perImage.set(a.image_id, (perImage.get(a.image_id) ?? 0) + 1);
    const category = byId.get(a.category_id);
    if (category) {
      category.boxes++;
      const set = imagesWithCategory.get(a.category_id) ?? new Set<number>();
      set.add(a.image_id);
      imagesWithCategory.set(a.category_id, set);
    }
    const [, , w, h] = a.bbox;
    const area = w * h;
    widths.push(w);
    heights.push(h);
    sides.push(Math.sqrt(area));
    const image = imageById.get(a.image_id);
    if (image) relative.push(area / (image.width * image.height));
    if (area < 32 * 32) areaRanges.small++;
    else if (area < 96 * 96) areaRanges.medium++;
    else areaRanges.large++;
  }
  for (const category of categories) category.images = imagesWithCategory.get(category.id)?.size ?? 0;
  const perPatient = new Map<string, number>();
  const imageSizes: Record<string, number> = {};
  for (const image of dataset.images) {
    perPatient.set(patientOf(image), (perPatient.get(patientOf(image)) ?? 0) + 1);
    const key = `${image.width}x${image.height}`;
    imageSizes[key] = (imageSizes[key] ?? 0) + 1;
  }
  return {
    images: dataset.images.length,
    patients: perPatient.size,
    annotations: dataset.annotations.length,
    negatives: dataset.images.filter((image) => !perImage.has(image.id)).length,
    categories,
    boxesPerImage: integerHistogram(dataset.images.map((image) => perImage.get(image.id) ?? 0)),
    imagesPerPatient: integerHistogram([...perPatient.values()]),
    boxWidth: describeDistribution(widths),
    boxHeight: describeDistribution(heights),
    boxSide: describeDistribution(sides),
    boxSideHistogram: binnedHistogram(sides, 12),
    boxRelativeArea: describeDistribution(relative),
    areaRanges,
    imageSizes,
  };
}

export function describeDistribution(values: number[]): Distribution {
  if (values.length === 0) return { count: 0, min: 0, p25: 0, median: 0, p75: 0, max: 0, mean: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const q = (p: number) => {
    const pos = (sorted.length - 1) * p;
    const lo = Math.floor(pos);
    const hi = Math.ceil(pos);
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
  };
  return {
    count: sorted.length,
    min: sorted[0],
    p25: q(0.25),
    median: q(0.5),
    p75: q(0.75),
    max: sorted[sorted.length - 1],
    mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
  };
}

function integerHistogram(values: number[]): Histogram {
  const max = values.length === 0 ? 0 : Math.max(...values);
  const min = values.length === 0 ? 0 : Math.min(...values);
  const edges = Array.from({ length: max - min + 1 }, (_, i) => min + i);
  const counts = edges.map(() => 0);
  for (const v of values) counts[v - min]++;
  return { edges, counts, labels: edges.map(String) };
}

function binnedHistogram(values: number[], bins: number): Histogram {
  if (values.length === 0) return { edges: [], counts: [], labels: [] };
  const min = Math.min(...values);
  const max = Math.max(...values);
  const width = max > min ? (max - min) / bins : 1;
  const edges = Array.from({ length: bins }, (_, i) => min + i * width);
  const counts = edges.map(() => 0);
  for (const v of values) counts[Math.min(bins - 1, Math.floor((v - min) / width))]++;
  return { edges, counts, labels: edges.map((e) => `${Math.round(e)}–${Math.round(e + width)}`) };
}

/** A self-contained HTML page (no scripts, no external files) with the numbers and SVG histograms. */
export function statsHtml(stats: DatasetStats, title: string): string {
  const classChart = barChart(
    'Boxes and images per class',
    stats.categories.map((c) => c.name),
    [
      { name: 'boxes', values: stats.categories.map((c) => c.boxes), color: '#3b6ea8' },
      { name: 'images', values: stats.categories.map((c) => c.images), color: '#e0913a' },
    ],
  );
  const dist = (name: string, d: Distribution, digits = 1) =>
    `<tr><th>${esc(name)}</th>${[d.count, d.min, d.p25, d.median, d.p75, d.max, d.mean]
      .map((v, i) => `<td>${i === 0 ? v : v.toFixed(digits)}</td>`)
      .join('')}</tr>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:70rem}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:right}
th{background:#f4f4f4}figure{margin:1.5rem 0}figcaption{font-weight:600;margin-bottom:.3rem}
.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;padding:.6rem 1rem}
.card b{display:block;font-size:1.6rem}
</style></head><body>
<h1>${esc(title)}</h1>
<div class="cards">
${[
  ['images', stats.images],
  ['patients', stats.patients],
  ['boxes', stats.annotations],
  ['images without boxes', stats.negatives],
  ['classes', stats.categories.length],
]
  .map(([k, v]) => `<div class="card"><b>${v}</b>${k}</div>`)
  .join('\n')}
</div>
<h2>Classes</h2>
<table><tr><th>class</th><th>boxes</th><th>images</th></tr>
${stats.categories.map((c) => `<tr><th>${esc(c.name)}</th><td>${c.boxes}</td><td>${c.images}</td></tr>`).join('\n')}
</table>
${classChart}
<h2>Boxes</h2>
<table><tr><th></th><th>n</th><th>min</th><th>25%</th><th>median</th><th>75%</th><th>max</th><th>mean</th></tr>
${dist('width (px)', stats.boxWidth)}
${dist('height (px)', stats.boxHeight)}
${dist('√area (px)', stats.boxSide)}
${dist('area / image area', stats.boxRelativeArea, 4)}
</table>
<p>COCO area ranges: small ${stats.areaRanges.small}, medium ${stats.areaRanges.medium}, large ${stats.areaRanges.large}.</p>
${barChart('Box size (√area, px)', stats.boxSideHistogram.labels, [{ name: 'boxes', values: stats.boxSideHistogram.counts, color: '#3b6ea8' }])}
${barChart('Boxes per image', stats.boxesPerImage.labels, [{ name: 'images', values: stats.boxesPerImage.counts, color: '#5a9e5a' }])}
<h2>Patients</h2>
${barChart('Images per patient', stats.imagesPerPatient.labels, [{ name: 'patients', values: stats.imagesPerPatient.counts, color: '#8a5aa8' }])}
<h2>Image sizes</h2>
<table><tr><th>size</th><th>images</th></tr>
${Object.entries(stats.imageSizes)
  .map(([k, v]) => `<tr><th>${esc(k)}</th><td>${v}</td></tr>`)
  .join('\n')}
</table>
</body></html>
`;
}

interface Series {
  name: string;
  values: number[];
  color: string;
}

function barChart(title: string, labels: string[], series: Series[]): string {
  const barWidth = 22;
  const gap = 10;
  const groupWidth = series.length * barWidth + gap;
  const height = 180;
  const left = 40;
  const bottom = 160;
  const top = 18;
  // Room on the right for the last rotated label.
  const width = left + Math.max(1, labels.length) * groupWidth + 160;
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  const bars: string[] = [];
  labels.forEach((label, i) => {
    series.forEach((s, k) => {
      const v = s.values[i] ?? 0;
      const h = (v / max) * height;
      const x = left + i * groupWidth + k * barWidth;
      bars.push(
        `<rect x="${x}" y="${top + height - h}" width="${barWidth - 2}" height="${h}" fill="${s.color}"><title>${esc(label)}: ${v} ${esc(s.name)}</title></rect>`,
        `<text x="${x + barWidth / 2 - 1}" y="${top - 4 + height - h}" font-size="9" text-anchor="middle">${v}</text>`,
      );
    });
    const cx = left + i * groupWidth + (series.length * barWidth) / 2;
    bars.push(
      `<text transform="translate(${cx},${top + height + 8}) rotate(40)" font-size="10">${esc(label.length > 28 ? `${label.slice(0, 27)}…` : label)}</text>`,
    );
  });
  const legend = series
    .map(
      (s, k) =>
        `<rect x="${left + k * 80}" y="${top + height + bottom - 12}" width="10" height="10" fill="${s.color}"/><text x="${left + k * 80 + 14}" y="${top + height + bottom - 3}" font-size="10">${esc(s.name)}</text>`,
    )
    .join('');
  return `<figure><figcaption>${esc(title)}</figcaption>
<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${top + height + bottom}" role="img" aria-label="${esc(title)}">
<line x1="${left - 4}" y1="${top + height}" x2="${width - 10}" y2="${top + height}" stroke="#999"/>
<text x="${left - 8}" y="${top + 6}" font-size="10" text-anchor="end">${max}</text><text x="${left - 8}" y="${top + height}" font-size="10" text-anchor="end">0</text>
${bars.join('\n')}
${legend}
</svg></figure>`;
}

function esc(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );
}
