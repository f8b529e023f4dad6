/**
 * Inline SVG line charts for the training report: no scripts, no fonts or styles from elsewhere, so the
 * page is one self-contained file that opens anywhere (an air-gapped hospital workstation included).
 */

export interface LineSeries {
  name: string;
  /** [x, y] points; non-finite or negative-sentinel (-1) values are skipped by the caller's choice. */
  points: readonly (readonly [number, number])[];
  color?: string;
  dashed?: boolean;
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly LineSeries[];
  width?: number;
  height?: number;
  /** Logarithmic x axis (base 2), e.g. FP/image in FROC plots. */
  logX?: boolean;
  yRange?: [number, number];
  xRange?: [number, number];
}

export const SERIES_COLORS = [
  '#1f77b4',
  '#ff7f0e',
  '#2ca02c',
  '#d62728',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf',
];

export function lineChart(options: LineChartOptions): string {
  const width = options.width ?? 520;
  const height = options.height ?? 300;
  const margin = { left: 56, right: 16, top: 30, bottom: 44 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const fx = (x: number) => (options.logX ? Math.log2(x) : x);
  const usable = options.series.map((s) => ({
    ...s,
    points: s.points.filter(([x, y]) => Number.isFinite(y) && Number.isFinite(fx(x))),
  }));
  const xs = usable.flatMap((s) => s.points.map(([x]) => fx(x)));
  const ys = usable.flatMap((s) => s.points.map(([, y]) => y));
  let [x0, x1] = options.xRange ? options.xRange.map(fx) : [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = options.yRange ?? [Math.min(0, ...ys), Math.max(...ys)];
  if (!Number.isFinite(x0) || !Number.isFinite(x1)) [x0, x1] = [0, 1];
  if (!Number.isFinite(y0) || !Number.isFinite(y1)) [y0, y1] = [0, 1];
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) y1 = y0 + 1;
  const px = (x: number) => margin.left + ((fx(x) - x0) / (x1 - x0)) * plotW;
  const py = (y: number) => margin.top + (1 - (y - y0) / (y1 - y0)) * plotH;
  const parts: string[] = [];
  parts.push(
    `<rect x="${margin.left}" y="${margin.top}" width="${plotW}" height="${plotH}" fill="#fff" stroke="#ccc"/>`,
  );
  for (const t of ticks(y0, y1, 5)) {
    const y = py(t).toFixed(1);
    parts.push(`<line x1="${margin.left}" x2="${margin.left + plotW}" y1="${y}" y2="${y}" stroke="#eee"/>`);
    parts.push(
      `<text x="${margin.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${formatTick(t)}</text>`,
    );
  }
  const xTicks = options.logX
    ? ticks(Math.ceil(x0), Math.floor(x1), Math.max(1, Math.floor(x1) - Math.ceil(x0) + 1)).map((e) => 2 ** e)
    : ticks(x0, x1, 6);
  for (const t of xTicks) {
    const x = px(t).toFixed(1);
    parts.push(`<line x1="${x}" x2="${x}" y1="${margin.top}" y2="${margin.top + plotH}" stroke="#f3f3f3"/>`);
    parts.push(`<text x="${x}" y="${margin.top + plotH + 14}" text-anchor="middle">${formatTick(t)}</text>`);
  }
  usable.forEach((s, i) => {
    if (s.points.length === 0) return;
    const color = s.color ?? SERIES_COLORS[i % SERIES_COLORS.length];
    const d = s.points.map(([x, y], k) => `${k === 0 ? 'M' : 'L'}${px(x).toFixed(2)},${py(y).toFixed(2)}`).join(' ');
    parts.push(
      `<path class="series" data-series="${escapeHtml(s.name)}" data-points="${s.points.length}" d="${d}" fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`,
    );
    if (s.points.length === 1) {
      const [x, y] = s.points[0];
      parts.push(`<circle cx="${px(x).toFixed(2)}" cy="${py(y).toFixed(2)}" r="3" fill="${color}"/>`);
    }
  });
  const legend = usable
    .map((s, i) => {
      const color = s.color ?? SERIES_COLORS[i % SERIES_COLORS.length];
      const y = margin.top + 8 + i * 14;
      const x = margin.left + plotW - 150;
      return `<line x1="${x}" x2="${x + 16}" y1="${y}" y2="${y}" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/><text x="${x + 20}" y="${y}" dominant-baseline="middle">${escapeHtml(s.name)}</text>`;
    })
    .join('');
  return `<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeHtml(options.title)}" font-family="sans-serif" font-size="11">
<text x="${width / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">${escapeHtml(options.title)}</text>
${parts.join('\n')}
${legend}
<text x="${margin.left + plotW / 2}" y="${height - 8}" text-anchor="middle">${escapeHtml(options.xLabel)}</text>
<text transform="translate(14 ${margin.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeHtml(options.yLabel)}</text>
</svg>`;
}

function ticks(low: number, high: number, count: number): number[] {
  const span = high - low;
  if (!(span > 0)) return [low];
  const raw = span / Math.max(1, count);
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => span / s <= count) ?? raw;
  const out: number[] = [];
  for (let t = Math.ceil(low / step) * step; t <= high + step * 1e-9; t += step) out.push(Number(t.toPrecision(12)));
  return out;
}

function formatTick(value: number): string {
  if (value !== 0 && Math.abs(value) < 0.01) return value.toExponential(0);
  if (Math.abs(value) < 1 && value !== 0) return String(Number(value.toFixed(3)));
  return String(Number(value.toFixed(2)));
}

export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
