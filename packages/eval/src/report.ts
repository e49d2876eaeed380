import type { IsolatedResult } from './isolated.js';
import type { QualityResult } from './quality.js';
import type { MachineInfo, SpeedResult } from './speed.js';

/** A model to evaluate: an ONNX decoder plus the folder with its tokenizer. */
export interface EvalTarget {
  /** Short label, e.g. "fp32", "rtn int4". */
  name: string;
  /** Folder with tokenizer.json (a bundle). */
  dir: string;
  modelPath: string;
  method: string;
  bits: number;
  blockSize?: number | null;
  /** Bytes on disk of the ONNX files, and of the whole bundle. */
  modelBytes: number;
  bundleBytes: number;
}

/** Everything measured about one model. */
export interface Evaluation {
  target: EvalTarget;
  quality?: QualityResult;
  speed?: SpeedResult;
  memory?: Pick<IsolatedResult, 'peakRssBytes' | 'startRssBytes'>;
}

/** Ratios of a model against the baseline, as a person reads them. */
export interface Ratios {
  /** 0.74 = 74% smaller on disk (model files). */
  sizeReduction: number;
  decodeSpeedup?: number;
  prefillSpeedup?: number;
  /** 0.018 = +1.8% perplexity. */
  perplexityIncrease?: number;
  memoryReduction?: number;
}

export interface Recommendation {
  name: string;
  reason: string;
}

/** A full comparison: what was measured, how, where. */
export interface EvaluationReport {
  createdAt: string;
  machine: MachineInfo;
  baseline?: Evaluation;
  evaluations: Evaluation[];
  ratios: Record<string, Ratios>;
  recommendation?: Recommendation;
  /** Budget used for the recommendation, e.g. 0.1 = 10% perplexity increase. */
  maxPerplexityIncrease: number;
}

export function ratiosAgainst(e: Evaluation, base: Evaluation): Ratios {
  const r: Ratios = { sizeReduction: 1 - e.target.modelBytes / base.target.modelBytes };
  if (e.speed && base.speed) {
    r.decodeSpeedup = e.speed.decodeTokensPerSecond.median / base.speed.decodeTokensPerSecond.median;
    r.prefillSpeedup = e.speed.prefillTokensPerSecond.median / base.speed.prefillTokensPerSecond.median;
  }
  if (e.quality && base.quality) r.perplexityIncrease = e.quality.perplexity / base.quality.perplexity - 1;
  if (e.memory && base.memory) r.memoryReduction = 1 - e.memory.peakRssBytes / base.memory.peakRssBytes;
  return r;
}

/** "74% smaller, 2.3× faster decode, +1.8% perplexity". */
export function describeRatios(r: Ratios): string {
  const parts = [r.sizeReduction >= 0 ? `${Math.round(r.sizeReduction * 100)}% smaller` : `${Math.round(-r.sizeReduction * 100)}% larger`];
  const speed = (x: number, what: string) => (x >= 1 ? `${x.toFixed(2)}× faster ${what}` : `${(1 / x).toFixed(2)}× slower ${what}`);
  if (r.decodeSpeedup !== undefined) parts.push(speed(r.decodeSpeedup, 'decode'));
  if (r.prefillSpeedup !== undefined) parts.push(speed(r.prefillSpeedup, 'prefill'));
  if (r.perplexityIncrease !== undefined) parts.push(`${r.perplexityIncrease >= 0 ? '+' : ''}${(r.perplexityIncrease * 100).toFixed(1)}% perplexity`);
  if (r.memoryReduction !== undefined)
    parts.push(
      r.memoryReduction >= 0 ? `${Math.round(r.memoryReduction * 100)}% less peak memory` : `${Math.round(-r.memoryReduction * 100)}% more peak memory`,
    );
  return parts.join(', ');
}

/**
 * The smallest model whose perplexity stays within the budget over the
 * baseline; without perplexity, the smallest with ≥ 90% top-1 agreement,
 * else the baseline.
 */
export function recommend(evals: Evaluation[], base: Evaluation | undefined, maxIncrease: number): Recommendation | undefined {
  if (!base || evals.length === 0) return undefined;
  if (!base.quality) return undefined; // no quality figure: size and speed alone do not make a recommendation
  // Smallest first; among equal sizes, the better perplexity.
  const bySize = [...evals].sort(
    (a, b) => a.target.modelBytes - b.target.modelBytes || (a.quality?.perplexity ?? Infinity) - (b.quality?.perplexity ?? Infinity),
  );
  for (const e of bySize) {
    if (e === base) continue;
    const r = ratiosAgainst(e, base);
    if (r.perplexityIncrease !== undefined && r.perplexityIncrease <= maxIncrease) {
      return {
        name: e.target.name,
        reason: `the smallest bundle within the +${(maxIncrease * 100).toFixed(0)}% perplexity budget: ${describeRatios(r)} vs ${base.target.name}`,
      };
    }
  }
  const within = bySize.filter((e) => e !== base && e.quality?.agreement && e.quality.agreement.top1 >= 0.9);
  if (within.length > 0 && bySize.every((e) => !e.quality || e.quality.perplexity === undefined)) {
    return { name: within[0].target.name, reason: `the smallest bundle with ≥ 90% top-1 agreement with ${base.target.name}` };
  }
  return {
    name: base.target.name,
    reason: `no quantized bundle stays within the +${(maxIncrease * 100).toFixed(0)}% perplexity budget; try more bits, a smaller block or another method`,
  };
}

/** Assembles a report and its ratios. */
export function makeReport(evaluations: Evaluation[], baseline: Evaluation | undefined, machine: MachineInfo, maxPerplexityIncrease = 0.1): EvaluationReport {
  const ratios: Record<string, Ratios> = {};
  if (baseline) for (const e of evaluations) if (e !== baseline) ratios[e.target.name] = ratiosAgainst(e, baseline);
  return {
    createdAt: new Date().toISOString(),
    machine,
    baseline,
    evaluations,
    ratios,
    recommendation: recommend(evaluations, baseline, maxPerplexityIncrease),
    maxPerplexityIncrease,
  };
}
