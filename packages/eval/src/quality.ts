import { throwIfAborted, type ProgressCallback } from '@alki/core';
import type { Decoder as DecoderSession } from '@alki/runtime/web';
import { PPL_PROTOCOL, type EvalWindows } from './windows.js';
import { argmax64, klDivergence, logSoftmax } from './log-softmax.js';

/** Quality of one model on a set of windows. */
export interface QualityResult {
  protocol: string;
  perplexity: number;
  /** Mean negative log-likelihood (nats per token). */
  meanNll: number;
  scoredTokens: number;
  windows: number;
  context: number;
  textSource: string;
  /** Against the baseline, when one was given. */
  agreement?: { meanKl: number; top1: number; positions: number };
}

/**
 * Scores every model on the same windows under alki-ppl-v1: every token of a
 * window except its first is predicted from the tokens before it in the
 * window; perplexity = exp(mean NLL). With a baseline, also the mean per-token
 * KL(baseline‖model) and the share of positions where both pick the same
 * top-1 token. Windows are processed one at a time for all models, so memory
 * holds one window's logits per model.
 */
export async function evaluateQuality(
  models: DecoderSession[],
  windows: EvalWindows,
  options: { baseline?: DecoderSession; onProgress?: ProgressCallback; signal?: AbortSignal } = {},
): Promise<{ results: QualityResult[]; baseline?: QualityResult }> {
  const all = options.baseline ? [options.baseline, ...models] : models;
  const nll = new Float64Array(all.length);
  const kl = new Float64Array(all.length);
  const agree = new Float64Array(all.length);
  let scored = 0;
  let lpBase: Float64Array | undefined;
  const lp: Float64Array[] = [];
  for (let w = 0; w < windows.windows.length; w++) {
    throwIfAborted(options.signal);
    options.onProgress?.({ step: 'perplexity', done: w, total: windows.windows.length });
    const ids = windows.windows[w];
    const outs = [];
    for (const s of all) outs.push(await s.forward([ids], s.emptyCache(1), 0));
    const V = outs[0].vocabSize;
    if (lp.length === 0) for (let m = 0; m < all.length; m++) lp.push(new Float64Array(V));
    for (let t = 0; t < ids.length - 1; t++) {
      const target = ids[t + 1];
      for (let m = 0; m < all.length; m++) {
        logSoftmax(outs[m].logits, t * V, V, lp[m]);
        nll[m] -= lp[m][target];
      }
      if (options.baseline) {
        lpBase = lp[0];
        const top = argmax64(lpBase);
        for (let m = 1; m < all.length; m++) {
          kl[m] += klDivergence(lpBase, lp[m]);
          if (argmax64(lp[m]) === top) agree[m] += 1;
        }
      }
      scored++;
    }
  }
  options.onProgress?.({ step: 'perplexity', done: windows.windows.length, total: windows.windows.length });
  const result = (m: number): QualityResult => ({
    protocol: PPL_PROTOCOL,
    perplexity: Math.exp(nll[m] / scored),
    meanNll: nll[m] / scored,
    scoredTokens: scored,
    windows: windows.windows.length,
    context: windows.context,
    textSource: windows.source,
    ...(options.baseline && m > 0 ? { agreement: { meanKl: kl[m] / scored, top1: agree[m] / scored, positions: scored } } : {}),
  });
  const offset = options.baseline ? 1 : 0;
  return { results: models.map((_, i) => result(i + offset)), baseline: options.baseline ? result(0) : undefined };
}
