import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { createHash } from 'node:crypto';
import { throwIfAborted, type ProgressCallback } from '@alki/core';
import { DecoderSession, loadTokenizer } from '@alki/runtime';
import { readEvalText } from './eval-text.js';
import { assertComparable, chooseWindows, type EvalWindows } from './windows.js';
import { measureIsolated } from './isolated.js';
import { evaluateQuality } from './quality.js';
import { makeReport, type EvalTarget, type Evaluation, type EvaluationReport } from './report.js';
import { machineInfo, type SpeedOptions } from './speed.js';
import { validateEvaluateOptions, type MetricName } from './options.js';

export interface EvaluateOptions {
  metrics: MetricName[];
  /** The reference (usually fp32) the ratios, KL and top-1 are computed against. */
  baseline?: EvalTarget;
  /** Evaluation text; without it, quality is measured on text sampled from the baseline. */
  textPath?: string;
  /** Window length (default min(512, maxPositions)). */
  context?: number;
  maxPositions?: number;
  maxWindows?: number;
  /**
   * How many windows to sample from the baseline when there is no text, unless `maxWindows` is given (default 8; each
   * of `context` tokens when given, else min(the default context, 128)).
   */
  sampledWindowCount?: number;
  sampleSeed?: number;
  speed?: Partial<Omit<SpeedOptions, 'vocabSize'>>;
  vocabSize: number;
  maxPerplexityIncrease?: number;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

/** Resolves the windows everyone is evaluated on (the same for all models). */
export async function evaluationWindows(o: EvaluateOptions, tokenizerDir: string, baselineSession?: DecoderSession): Promise<EvalWindows> {
  let text: { name: string; content: string } | undefined;
  if (o.textPath) {
    const content = readEvalText(o.textPath);
    text = { name: `${basename(o.textPath)} (sha256 ${createHash('sha256').update(content).digest('hex').slice(0, 12)}…)`, content };
  }
  return chooseWindows(o, loadTokenizer(tokenizerDir), text, baselineSession);
}

/** The tokenizer.json of a bundle as one comparable string (its hash), or undefined when it has none. */
function tokenizerKey(dir: string): string | undefined {
  const p = join(dir, 'tokenizer.json');
  return existsSync(p) ? createHash('sha256').update(readFileSync(p)).digest('hex') : undefined;
}

/**
 * Measures every target (and the baseline) on the requested metrics: quality
 * on one shared set of windows, speed and memory each in a fresh process.
 */
export async function evaluateTargets(targets: EvalTarget[], o: EvaluateOptions): Promise<EvaluationReport> {
  validateEvaluateOptions(o);
  const evals: Evaluation[] = targets.map((target) => ({ target }));
  const base: Evaluation | undefined = o.baseline ? { target: o.baseline } : undefined;
  if (o.metrics.includes('perplexity')) {
    const baseSession = base ? await DecoderSession.load(base.target.modelPath) : undefined;
    const sessions: DecoderSession[] = [];
    try {
      for (const t of targets) sessions.push(await DecoderSession.load(t.modelPath));
      if (base && baseSession)
        for (let i = 0; i < targets.length; i++)
          assertComparable(
            { name: targets[i].name, vocabSize: sessions[i].vocabSize, tokenizer: tokenizerKey(targets[i].dir) },
            { name: base.target.name, vocabSize: baseSession.vocabSize, tokenizer: tokenizerKey(base.target.dir) },
          );
      const windows = await evaluationWindows(o, (base ?? evals[0]).target.dir, baseSession);
      const q = await evaluateQuality(sessions, windows, { baseline: baseSession, onProgress: o.onProgress, signal: o.signal });
      q.results.forEach((r, i) => (evals[i].quality = r));
      if (base) base.quality = q.baseline;
    } finally {
      for (const s of sessions) await s.release();
      await baseSession?.release();
    }
  }
  if (o.metrics.includes('speed') || o.metrics.includes('memory')) {
    const todo = base ? [base, ...evals] : evals;
    const onlyMemory = !o.metrics.includes('speed');
    for (let i = 0; i < todo.length; i++) {
      throwIfAborted(o.signal);
      o.onProgress?.({ step: 'speed', done: i, total: todo.length, detail: todo[i].target.name });
      const res = await measureIsolated(
        todo[i].target.modelPath,
        { ...(onlyMemory ? { runs: 1, warmupRuns: 0 } : {}), ...o.speed, vocabSize: o.vocabSize },
        o.signal,
      );
      if (!onlyMemory) todo[i].speed = res.speed;
      if (o.metrics.includes('memory')) todo[i].memory = { peakRssBytes: res.peakRssBytes, startRssBytes: res.startRssBytes };
    }
    o.onProgress?.({ step: 'speed', done: todo.length, total: todo.length });
  }
  return makeReport(evals, base, evals.find((e) => e.speed)?.speed?.machine ?? machineInfo(), o.maxPerplexityIncrease ?? 0.1);
}
