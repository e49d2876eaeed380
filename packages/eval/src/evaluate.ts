import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { createHash } from 'node:crypto';
import { AlkiError, throwIfAborted, type ProgressCallback } from '@alki/core';
import { DecoderSession, loadTokenizer } from '@alki/runtime';
import { readEvalText } from './eval-text.js';
import { sampledWindows, textWindows, type EvalWindows } from './windows.js';
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
  /** Windows sampled from the baseline when there is no text (default 8, of min(context, 128) tokens). */
  sampledWindowCount?: number;
  sampleSeed?: number;
  speed?: Partial<Omit<SpeedOptions, 'vocabSize'>>;
  vocabSize: number;
  maxPerplexityIncrease?: number;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

/**
 * KL and top-1 compare two distributions over the same tokens: a baseline of another vocabulary or tokenizer
 * would give numbers that mean nothing.
 */
function assertComparable(t: EvalTarget, s: DecoderSession, b: EvalTarget, bs: DecoderSession): void {
  if (s.vocabSize !== undefined && bs.vocabSize !== undefined && s.vocabSize !== bs.vocabSize) {
    throw new AlkiError('BAD_INPUT', `${t.name} has a ${s.vocabSize}-token vocabulary and the baseline ${b.name} one of ${bs.vocabSize}: they are different models`, 'compare a bundle with a baseline built from the same model (usually its fp32 bundle)');
  }
  const tokenizerHash = (dir: string) => {
    const p = join(dir, 'tokenizer.json');
    return existsSync(p) ? createHash('sha256').update(readFileSync(p)).digest('hex') : undefined;
  };
  const [a, c] = [tokenizerHash(t.dir), tokenizerHash(b.dir)];
  if (a && c && a !== c) {
    throw new AlkiError('BAD_INPUT', `${t.name} and the baseline ${b.name} have different tokenizers, so their predictions cannot be compared token by token`, 'compare a bundle with a baseline built from the same model (usually its fp32 bundle)');
  }
}

/** Resolves the windows everyone is evaluated on (the same for all models). */
export async function evaluationWindows(o: EvaluateOptions, tokenizerDir: string, baselineSession?: DecoderSession): Promise<EvalWindows> {
  const context = o.context ?? Math.min(512, o.maxPositions ?? 512);
  if (o.textPath) {
    const text = readEvalText(o.textPath);
    const sha = createHash('sha256').update(text).digest('hex').slice(0, 12);
    return textWindows(loadTokenizer(tokenizerDir), text, context, o.maxWindows, `${basename(o.textPath)} (sha256 ${sha}…)`);
  }
  if (!baselineSession) {
    throw new AlkiError('BAD_OPTION', 'perplexity needs an evaluation text: Alki ships none', 'pass --text FILE (plain UTF-8 text), or --baseline BUNDLE to measure agreement on text sampled from the baseline');
  }
  const tok = loadTokenizer(tokenizerDir);
  if (tok.bosTokenId === undefined) throw new AlkiError('BAD_INPUT', 'the model has no BOS token to start sampled text from', 'pass --text FILE');
  return sampledWindows(baselineSession, tok.bosTokenId, Math.min(context, 128), o.sampledWindowCount ?? 8, o.sampleSeed ?? 0);
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
      if (base && baseSession) for (let i = 0; i < targets.length; i++) assertComparable(targets[i], sessions[i], base.target, baseSession);
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
      const res = await measureIsolated(todo[i].target.modelPath, { ...(onlyMemory ? { runs: 1, warmupRuns: 0 } : {}), ...o.speed, vocabSize: o.vocabSize }, o.signal);
      if (!onlyMemory) todo[i].speed = res.speed;
      if (o.metrics.includes('memory')) todo[i].memory = { peakRssBytes: res.peakRssBytes, startRssBytes: res.startRssBytes };
    }
    o.onProgress?.({ step: 'speed', done: todo.length, total: todo.length });
  }
  return makeReport(evals, base, evals.find((e) => e.speed)?.speed?.machine ?? machineInfo(), o.maxPerplexityIncrease ?? 0.1);
}
