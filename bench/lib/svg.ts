/**
 * Minimal SVG charts (no dependencies): line charts with min-max whiskers on a log or linear x
 * axis, composed as small multiples, and horizontal bar charts. Plain SVG 1.1, readable on
 * GitHub.
 */
export interface Pt { x: number; y: number; lo?: number; hi?: number }
export interface Series { name: string; points: Pt[] }
export interface LineChart { title: string; xLabel: string; yLabel: string; series: Series[]; logX?: boolean; hline?: { y: number; label: string }; yMin?: number }

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fmt = (v: number) => (Math.abs(v) >= 1000 ? `${+(v / 1000).toPrecision(3)}k`.replace('000k', 'M') : `${+v.toPrecision(3)}`);

/** Axis top and tick step: at most 6 ticks at 1, 2 or 5 x 10^k. */
function niceAxis(v: number): { max: number; step: number } {
  const raw = v / 5;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((x) => x >= raw)!;
  return { max: Math.ceil(v / step) * step, step };
}

/** One chart, w x h, as an SVG group (no outer <svg>). */
export function lineChartGroup(c: LineChart, w: number, h: number): string {
  const m = { l: 52, r: 22, t: 28, b: 40 };
  const pw = w - m.l - m.r, ph = h - m.t - m.b;
  const xs = c.series.flatMap((s) => s.points.map((p) => p.x));
  const ys = c.series.flatMap((s) => s.points.flatMap((p) => [p.y, p.hi ?? p.y])).concat(c.hline ? [c.hline.y] : []);
  const tx = (x: number) => (c.logX ? Math.log10(x) : x);
  const x0 = Math.min(...xs.map(tx)), x1 = Math.max(...xs.map(tx));
  const y0 = c.yMin ?? 0;
  const ax = niceAxis(Math.max(...ys) * 1.05 - y0);
  const y1 = y0 + ax.max;
  const X = (x: number) => m.l + (x1 === x0 ? pw / 2 : ((tx(x) - x0) / (x1 - x0)) * pw);
  const Y = (y: number) => m.t + ph - ((y - y0) / (y1 - y0)) * ph;
  const out: string[] = [];
  out.push(`<text x="${w / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">${esc(c.title)}</text>`);
  out.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
  for (let v = y0; v <= y1 + 1e-9; v += ax.step) {
    out.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${Y(v)}" y2="${Y(v)}" stroke="#eee"/>`);
    out.push(`<text x="${m.l - 4}" y="${Y(v) + 4}" text-anchor="end" font-size="10">${fmt(v)}</text>`);
  }
  for (const x of [...new Set(xs)].sort((a, b) => a - b)) {
    out.push(`<text x="${X(x)}" y="${m.t + ph + 14}" text-anchor="middle" font-size="10">${fmt(x)}</text>`);
  }
  out.push(`<text x="${m.l + pw / 2}" y="${h - 6}" text-anchor="middle" font-size="11">${esc(c.xLabel)}</text>`);
  out.push(`<text transform="translate(12 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle" font-size="11">${esc(c.yLabel)}</text>`);
  if (c.hline) {
    out.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${Y(c.hline.y)}" y2="${Y(c.hline.y)}" stroke="#888" stroke-dasharray="4 3"/>`);
    out.push(`<text x="${m.l + pw - 2}" y="${Y(c.hline.y) - 3}" text-anchor="end" font-size="10" fill="#666">${esc(c.hline.label)}</text>`);
  }
  c.series.forEach((s, i) => {
    const col = COLORS[i % COLORS.length]!;
    const pts = [...s.points].sort((a, b) => a.x - b.x);
    out.push(`<polyline fill="none" stroke="${col}" stroke-width="2" points="${pts.map((p) => `${X(p.x).toFixed(1)},${Y(p.y).toFixed(1)}`).join(' ')}"/>`);
    for (const p of pts) {
      if (p.lo !== undefined && p.hi !== undefined) out.push(`<line x1="${X(p.x)}" x2="${X(p.x)}" y1="${Y(p.lo)}" y2="${Y(p.hi)}" stroke="${col}" stroke-opacity="0.5"/>`);
      out.push(`<circle cx="${X(p.x)}" cy="${Y(p.y)}" r="3" fill="${col}"/>`);
    }
    if (c.series.length > 1) out.push(`<text x="${m.l + 6}" y="${m.t + 14 + i * 13}" font-size="10" fill="${col}">${esc(s.name)}</text>`);
  });
  return out.join('\n');
}

/** Small multiples: charts in a grid of `cols` columns. */
export function chartGrid(charts: LineChart[], cols: number, w = 360, h = 240): string {
  const rows = Math.ceil(charts.length / cols);
  const body = charts.map((c, i) => `<g transform="translate(${(i % cols) * w} ${Math.floor(i / cols) * h})">\n${lineChartGroup(c, w, h)}\n</g>`).join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${cols * w}" height="${rows * h}" viewBox="0 0 ${cols * w} ${rows * h}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n${body}\n</svg>\n`;
}

export interface Bar { label: string; value: number; lo?: number; hi?: number; target?: number; note?: string }

/** Horizontal bars with min-max whiskers and an optional target tick per bar; a log scale
 *  (from 1) when the values span more than 20x. */
export function barChart(title: string, unit: string, bars: Bar[], w = 860): string {
  const rowH = 22, m = { l: 360, r: 130, t: 30, b: 30 };
  const h = m.t + m.b + bars.length * rowH;
  const top = Math.max(...bars.flatMap((b) => [b.hi ?? b.value, b.target ?? 0]));
  const low = Math.min(...bars.map((b) => b.value));
  const log = low >= 1 && top / low > 20;
  const pw = w - m.l - m.r;
  const ax = niceAxis(top * 1.05);
  const lmax = 10 ** Math.ceil(Math.log10(top * 1.05));
  const X = log ? (v: number) => m.l + (Math.log10(Math.max(1, v)) / Math.log10(lmax)) * pw : (v: number) => m.l + (v / ax.max) * pw;
  const ticks = log ? [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000].filter((t) => t <= lmax) : Array.from({ length: Math.round(ax.max / ax.step) + 1 }, (_, i) => i * ax.step);
  const out: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif">`, '<rect width="100%" height="100%" fill="white"/>'];
  out.push(`<text x="${w / 2}" y="18" text-anchor="middle" font-size="13" font-weight="bold">${esc(title)}</text>`);
  for (const v of ticks) {
    out.push(`<line x1="${X(v)}" x2="${X(v)}" y1="${m.t}" y2="${h - m.b}" stroke="#eee"/>`);
    out.push(`<text x="${X(v)}" y="${h - m.b + 14}" text-anchor="middle" font-size="10">${fmt(v)}</text>`);
  }
  if (log) unit += ' (log scale)';
  out.push(`<text x="${m.l + pw / 2}" y="${h - 4}" text-anchor="middle" font-size="11">${esc(unit)}</text>`);
  bars.forEach((b, i) => {
    const y = m.t + i * rowH;
    const col = b.target !== undefined ? (b.value <= b.target ? '#2ca02c' : '#d62728') : '#1f77b4';
    out.push(`<text x="${m.l - 6}" y="${y + 15}" text-anchor="end" font-size="11">${esc(b.label)}</text>`);
    out.push(`<rect x="${m.l}" y="${y + 4}" width="${Math.max(1, X(b.value) - m.l)}" height="${rowH - 8}" fill="${col}" fill-opacity="0.75"/>`);
    if (b.lo !== undefined && b.hi !== undefined) out.push(`<line x1="${X(b.lo)}" x2="${X(b.hi)}" y1="${y + rowH / 2}" y2="${y + rowH / 2}" stroke="#333"/>`);
    if (b.target !== undefined) out.push(`<line x1="${X(b.target)}" x2="${X(b.target)}" y1="${y + 1}" y2="${y + rowH - 1}" stroke="#000" stroke-width="2"/>`);
    out.push(`<text x="${Math.max(X(b.value), X(b.hi ?? 0)) + 4}" y="${y + 15}" font-size="10">${esc(b.note ?? fmt(b.value))}</text>`);
  });
  out.push('</svg>\n');
  return out.join('\n');
}
