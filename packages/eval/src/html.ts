import { allEvals, bytes, howMeasured, tableHeader, tableRows } from './format.js';
import { describeRatios, type Evaluation, type EvaluationReport } from './report.js';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const COLORS = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#0891b2', '#be185d', '#4b5563'];

/** Perplexity (y) against model size on disk (x), one labelled point per model. */
function scatter(evals: Evaluation[]): string {
  const pts = evals.filter((e) => e.quality);
  if (pts.length === 0) return '<p class="note">No perplexity was measured.</p>';
  const W = 560,
    H = 320,
    L = 70,
    R = 45,
    T = 20,
    B = 50;
  const xs = pts.map((e) => e.target.modelBytes);
  const ys = pts.map((e) => e.quality!.perplexity);
  const [x0, x1] = [0, Math.max(...xs) * 1.1];
  const ymin = Math.min(...ys),
    ymax = Math.max(...ys);
  const pad = (ymax - ymin) * 0.15 || ymax * 0.05;
  const [y0, y1] = [ymin - pad, ymax + pad];
  const px = (x: number) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const py = (y: number) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  const ticks = (a: number, b: number, n: number) => Array.from({ length: n + 1 }, (_, i) => a + ((b - a) * i) / n);
  const grid = [
    ...ticks(x0, x1, 4).map(
      (x) =>
        `<line x1="${px(x)}" y1="${T}" x2="${px(x)}" y2="${H - B}" class="grid"/><text x="${px(x)}" y="${H - B + 18}" text-anchor="middle">${esc(bytes(x))}</text>`,
    ),
    ...ticks(y0, y1, 4).map(
      (y) =>
        `<line x1="${L}" y1="${py(y)}" x2="${W - R}" y2="${py(y)}" class="grid"/><text x="${L - 8}" y="${py(y) + 4}" text-anchor="end">${y.toFixed(3)}</text>`,
    ),
  ].join('');
  const dots = pts
    .map(
      (e, i) =>
        `<circle cx="${px(e.target.modelBytes)}" cy="${py(e.quality!.perplexity)}" r="6" fill="${COLORS[i % COLORS.length]}"><title>${esc(`${e.target.name}: ${bytes(e.target.modelBytes)}, perplexity ${e.quality!.perplexity.toFixed(4)}`)}</title></circle><text x="${px(e.target.modelBytes) + 9}" y="${py(e.quality!.perplexity) - 8}" class="label">${esc(e.target.name)}</text>`,
    )
    .join('');
  return `<svg id="chart-ppl-size" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="perplexity versus size">
<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" class="plot"/>${grid}${dots}
<text x="${(W + L) / 2}" y="${H - 8}" text-anchor="middle" class="axis">model size on disk</text>
<text x="16" y="${(H - B + T) / 2}" text-anchor="middle" class="axis" transform="rotate(-90 16 ${(H - B + T) / 2})">perplexity (lower is better)</text></svg>`;
}

/** Horizontal bars of a speed figure per model (median, with a min–max whisker). */
function bars(evals: Evaluation[], pick: (e: Evaluation) => { median: number; min: number; max: number } | undefined, id: string, label: string): string {
  const rows = evals.map((e) => ({ e, v: pick(e) })).filter((r) => r.v);
  if (rows.length === 0) return `<p class="note">No ${esc(label)} was measured.</p>`;
  const W = 560,
    rowH = 30,
    L = 110,
    R = 90,
    T = 10;
  const H = T + rows.length * rowH + 10;
  const max = Math.max(...rows.map((r) => r.v!.max)) * 1.05;
  const sx = (v: number) => L + (v / max) * (W - L - R);
  const body = rows
    .map(({ e, v }, i) => {
      const y = T + i * rowH;
      return `<text x="${L - 8}" y="${y + 18}" text-anchor="end">${esc(e.target.name)}</text>
<rect x="${L}" y="${y + 5}" width="${sx(v!.median) - L}" height="18" fill="${COLORS[i % COLORS.length]}"><title>${esc(`${e.target.name}: ${v!.median.toFixed(1)} (${v!.min.toFixed(1)}–${v!.max.toFixed(1)})`)}</title></rect>
<line x1="${sx(v!.min)}" y1="${y + 14}" x2="${sx(v!.max)}" y2="${y + 14}" class="whisker"/>
<text x="${sx(v!.max) + 6}" y="${y + 18}">${v!.median.toFixed(1)}</text>`;
    })
    .join('');
  return `<svg id="${id}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(label)}">${body}</svg>`;
}

/**
 * A self-contained HTML report (no scripts, no network): the comparison
 * table, ratio lines, how everything was measured, a perplexity-vs-size
 * scatter and tokens/s bars as inline SVG.
 */
export function formatHtml(r: EvaluationReport, title = 'Alki comparison'): string {
  const evals = allEvals(r);
  const rows = tableRows(r)
    .map((row) => `<tr>${row.map((c, i) => (i === 0 ? `<th scope="row">${esc(c)}</th>` : `<td>${esc(c)}</td>`)).join('')}</tr>`)
    .join('\n');
  const ratios = r.baseline
    ? Object.entries(r.ratios)
        .map(([n, x]) => `<li><b>${esc(n)}</b>: ${esc(describeRatios(x))} (vs ${esc(r.baseline!.target.name)})</li>`)
        .join('')
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#111827;margin:2rem auto;max-width:1000px;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:.4rem .6rem;border-bottom:1px solid #e5e7eb;text-align:right;white-space:nowrap}
th:first-child,thead th:first-child{text-align:left}thead th{background:#f3f4f6}
.rec{background:#ecfdf5;border:1px solid #a7f3d0;padding:.75rem 1rem;border-radius:6px}
.note,.how{color:#4b5563;font-size:.9rem}
svg text{font:12px system-ui,sans-serif;fill:#374151}svg .label{font-weight:600}svg .axis{fill:#111827}
svg .grid{stroke:#e5e7eb}svg .plot{fill:#fafafa;stroke:#d1d5db}svg .whisker{stroke:#111827;stroke-width:1.5}
.charts{display:flex;flex-wrap:wrap;gap:1.5rem}
</style></head><body>
<h1>${esc(title)}</h1>
${r.recommendation ? `<p class="rec" id="recommendation"><b>Recommended: ${esc(r.recommendation.name)}</b> — ${esc(r.recommendation.reason)}</p>` : ''}
<table id="comparison"><thead><tr>${tableHeader(r)
    .map((h) => `<th scope="col">${esc(h)}</th>`)
    .join('')}</tr></thead>
<tbody>
${rows}
</tbody></table>
${ratios ? `<ul id="ratios">${ratios}</ul>` : ''}
<h2>Perplexity vs size</h2>
<div class="charts">${scatter(evals)}</div>
<h2>Speed</h2>
<div class="charts"><div><h3 class="note">decode tokens/s</h3>${bars(evals, (e) => e.speed?.decodeTokensPerSecond, 'chart-decode', 'decode tokens per second')}</div>
<div><h3 class="note">prefill tokens/s</h3>${bars(evals, (e) => e.speed?.prefillTokensPerSecond, 'chart-prefill', 'prefill tokens per second')}</div></div>
<h2>How this was measured</h2>
<ul class="how">${howMeasured(r)
    .map((l) => `<li>${esc(l)}</li>`)
    .join('')}</ul>
<p class="note">Generated by Alki on ${esc(r.createdAt)}.</p>
</body></html>
`;
}
