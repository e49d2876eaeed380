import type { EvaluationReport } from '@alki/eval';
import type { BundleManifest } from './manifest.js';

/** Turns an evaluation of one bundle (against its baseline) into alki.json metrics, each saying how it was measured. */
export function manifestMetrics(report: EvaluationReport): Partial<BundleManifest['metrics']> {
  const e = report.evaluations[0];
  const base = report.baseline;
  const out: Partial<BundleManifest['metrics']> = {};
  const q = e.quality;
  if (q) {
    const how = `${q.protocol}: ${q.windows} windows × ${q.context} tokens, ${q.scoredTokens} scored tokens, text: ${q.textSource}`;
    out.perplexity = { value: q.perplexity, method: how };
    if (base?.quality) out.baselinePerplexity = { value: base.quality.perplexity, method: `${how}; baseline ${base.target.name}` };
    if (q.agreement) {
      out.klDivergence = { value: q.agreement.meanKl, method: `mean per-token KL(${base?.target.name}‖this) over ${q.agreement.positions} positions` };
      out.top1Agreement = {
        value: q.agreement.top1,
        method: `share of ${q.agreement.positions} positions where this and ${base?.target.name} pick the same token`,
      };
    }
  }
  const s = e.speed;
  if (s) {
    const how = `median of ${s.runs} runs after ${s.warmupRuns} warm-up, ${s.threads} threads, ${s.executionProvider} EP, own process`;
    out.prefillTokensPerSecond = { value: s.prefillTokensPerSecond.median, method: `${s.promptTokens}-token prompt, ${how}` };
    out.decodeTokensPerSecond = {
      value: s.decodeTokensPerSecond.median,
      method: `${s.newTokens} tokens with KV cache after a ${s.promptTokens}-token prompt, ${how}`,
    };
    out.timeToFirstTokenMs = { value: s.timeToFirstTokenMs.median, method: `prefill of ${s.promptTokens} tokens + first token, ${how}` };
    if (base?.speed) out.baselineDecodeTokensPerSecond = { value: base.speed.decodeTokensPerSecond.median, method: `${base.target.name}, same protocol` };
  }
  if (e.memory)
    out.peakRssBytes = {
      value: e.memory.peakRssBytes,
      method: 'peak resident memory (VmHWM) of a child process that loads the bundle and generates (includes Node + onnxruntime)',
    };
  if (base?.memory) out.baselinePeakRssBytes = { value: base.memory.peakRssBytes, method: `${base.target.name}, same protocol` };
  if (base) out.baselineSizeBytes = { value: base.target.modelBytes, method: `bytes on disk of the ${base.target.name} ONNX files` };
  if (q || s || e.memory) out.measuredOn = { value: report.machine, method: 'the machine that ran the measurements' };
  return out;
}
