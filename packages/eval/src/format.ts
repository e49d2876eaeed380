import type { EvaluationReport, Evaluation } from './report.js';
import { describeRatios } from './report.js';

export function bytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

const num = (x: number | undefined, digits = 1) => (x === undefined ? '—' : x.toFixed(digits));

/** The baseline (first) and every evaluated model. */
export function allEvals(r: EvaluationReport): Evaluation[] {
  return r.baseline && !r.evaluations.includes(r.baseline) ? [r.baseline, ...r.evaluations] : r.evaluations;
}

/** One row per model: the columns of the comparison table. */
export function tableRows(r: EvaluationReport): string[][] {
  return allEvals(r).map((e) => [
    e.target.name,
    bytes(e.target.modelBytes),
    e.quality ? e.quality.perplexity.toFixed(4) : '—',
    e.quality?.agreement ? e.quality.agreement.meanKl.toExponential(2) : '—',
    e.quality?.agreement ? `${(e.quality.agreement.top1 * 100).toFixed(1)}%` : '—',
    e.speed ? `${num(e.speed.prefillTokensPerSecond.median)}` : '—',
    e.speed ? `${num(e.speed.decodeTokensPerSecond.median)} (${num(e.speed.decodeTokensPerSecond.min)}–${num(e.speed.decodeTokensPerSecond.max)})` : '—',
    e.speed ? num(e.speed.timeToFirstTokenMs.median) : '—',
    e.memory ? bytes(e.memory.peakRssBytes) : '—',
  ]);
}

export const TABLE_HEADER = ['model', 'size', 'perplexity', 'KL', 'top-1', 'prefill tok/s', 'decode tok/s (min–max)', 'TTFT ms', 'peak RSS'];

/** The header of a report's table: a browser's memory column is its WebAssembly memory, not a process's RSS. */
export function tableHeader(r: EvaluationReport): string[] {
  return 'browser' in r ? [...TABLE_HEADER.slice(0, -1), 'WASM memory'] : TABLE_HEADER;
}

/** A plain-text table with the ratio lines and how it was measured. */
export function formatTerminal(r: EvaluationReport): string {
  const header = tableHeader(r);
  const rows = [header, ...tableRows(r)];
  const widths = header.map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  const line = (row: string[]) => row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ');
  const out = [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)];
  if (r.baseline) {
    out.push('');
    for (const [name, ratios] of Object.entries(r.ratios)) out.push(`${name}: ${describeRatios(ratios)} (vs ${r.baseline.target.name})`);
  }
  out.push('', ...howMeasured(r));
  if (r.recommendation) out.push('', `recommended: ${r.recommendation.name} — ${r.recommendation.reason}`);
  return out.join('\n');
}

/** Lines that say how the figures were measured. */
export function howMeasured(r: EvaluationReport): string[] {
  const q = r.evaluations.find((e) => e.quality)?.quality;
  const s = r.evaluations.find((e) => e.speed)?.speed;
  const lines: string[] = [];
  if (q) lines.push(`perplexity: ${q.protocol}, ${q.windows} windows × ${q.context} tokens, ${q.scoredTokens} scored tokens, text: ${q.textSource}`);
  const web = (
    r as { browser?: { backend: string; threads: number; crossOriginIsolated: boolean; onnxruntimeWeb: string; userAgent: string; memoryMethod?: string } }
  ).browser;
  const where = web
    ? `in the browser (onnxruntime-web ${web.onnxruntimeWeb}, ${web.crossOriginIsolated ? 'cross-origin isolated' : 'not cross-origin isolated: 1 thread'})`
    : 'each model in its own process';
  if (s)
    lines.push(
      `speed: prompt ${s.promptTokens} tokens, ${s.newTokens} new tokens with KV cache, median of ${s.runs} runs after ${s.warmupRuns} warm-up, ${s.threads} threads, ${s.executionProvider} EP, ${where}`,
    );
  const loads = allEvals(r)
    .filter((e) => e.speed)
    .map((e) => `${e.target.name} ${e.speed!.loadMs.toFixed(0)} ms`);
  if (loads.length) lines.push(`session creation (model bytes → ready): ${loads.join(', ')}`);
  if (web?.memoryMethod) lines.push(`memory: ${web.memoryMethod}`);
  if (web) lines.push(`browser: ${web.userAgent}`);
  lines.push(
    `machine: ${r.machine.cpu}${r.machine.features ? ` (${r.machine.features.join(' ') || 'no listed features'})` : ''}, ${r.machine.cores} cores, ${bytes(r.machine.memoryBytes)}, ${r.machine.os}${web ? '' : `, Node ${r.machine.node}`}, onnxruntime ${r.machine.onnxruntime}`,
  );
  return lines;
}

/** A Markdown table (for bundle READMEs and docs). */
export function formatMarkdown(r: EvaluationReport): string {
  const rows = tableRows(r);
  const header = tableHeader(r);
  const out = [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...rows.map((row) => `| ${row.join(' | ')} |`)];
  if (r.baseline) {
    out.push('');
    for (const [name, ratios] of Object.entries(r.ratios)) out.push(`- **${name}**: ${describeRatios(ratios)} (vs ${r.baseline.target.name})`);
  }
  out.push('', ...howMeasured(r).map((l) => `_${l}_  `));
  if (r.recommendation) out.push('', `**Recommended: ${r.recommendation.name}** — ${r.recommendation.reason}`);
  return out.join('\n');
}
