import { AlkiError } from '@alki/core';
import { sampleSequences, type Decoder, type TextTokenizer } from '@alki/runtime/web';

/** Name and version of the perplexity protocol (see docs/evaluation.md). */
export const PPL_PROTOCOL = 'alki-ppl-v1';

/** Token windows to evaluate on, and where they came from. */
export interface EvalWindows {
  windows: number[][];
  context: number;
  /** e.g. "file tinystories-valid.txt (sha256 …)" or "sampled from the baseline model (seed 0)". */
  source: string;
  /** Tokens in the whole stream (before windowing). */
  streamTokens: number;
  /** Windows available before --max-windows. */
  availableWindows: number;
}

/**
 * alki-ppl-v1 windows: the whole text tokenized once (BOS once at the start,
 * as the tokenizer adds it), cut into consecutive non-overlapping windows of
 * `context` tokens; a last partial window is dropped.
 */
export function textWindows(tokenizer: TextTokenizer, text: string, context: number, maxWindows?: number, sourceName = 'text'): EvalWindows {
  if (!Number.isInteger(context) || context < 2) throw new AlkiError('BAD_OPTION', `--context must be at least 2 tokens, got ${context}`);
  const ids = tokenizer.encode(text);
  const available = Math.floor(ids.length / context);
  if (available === 0) {
    throw new AlkiError(
      'BAD_INPUT',
      `the evaluation text has ${ids.length} tokens, fewer than one window of ${context}`,
      `use a longer text, or a smaller --context (at most ${ids.length})`,
    );
  }
  const n = maxWindows ? Math.min(maxWindows, available) : available;
  const windows = Array.from({ length: n }, (_, w) => ids.slice(w * context, (w + 1) * context));
  return { windows, context, source: sourceName, streamTokens: ids.length, availableWindows: available };
}

/**
 * Windows sampled from a (baseline) model itself, seeded: each starts with BOS
 * and continues by sampling at temperature 1. Needs no text and no network;
 * good for KL/top-1 agreement, and a proxy for perplexity.
 */
export async function sampledWindows(session: Decoder, bosTokenId: number, context: number, count: number, seed = 0): Promise<EvalWindows> {
  const windows = await sampleSequences(session, bosTokenId, count, context, seed);
  return { windows, context, source: `sampled from the baseline model (temperature 1, seed ${seed})`, streamTokens: count * context, availableWindows: count };
}

/**
 * The windows every model is scored on, in Node and in the browser alike: the text's alki-ppl-v1 windows of
 * `context` tokens (default min(512, the model's context)), or, without text, windows sampled from the baseline:
 * `maxWindows` of them (else `sampledWindowCount`, default 8) of `context` tokens (default min(128, the model's context)).
 */
export async function chooseWindows(
  o: { context?: number; maxPositions?: number; maxWindows?: number; sampledWindowCount?: number; sampleSeed?: number },
  tokenizer: TextTokenizer,
  text: { name: string; content: string } | undefined,
  baseline: Decoder | undefined,
): Promise<EvalWindows> {
  const context = o.context ?? Math.min(512, o.maxPositions ?? 512);
  if (text) return textWindows(tokenizer, text.content, context, o.maxWindows, text.name);
  if (!baseline) {
    throw new AlkiError(
      'BAD_OPTION',
      'perplexity needs an evaluation text: Alki ships none',
      'pass --text FILE (plain UTF-8 text), or --baseline BUNDLE to measure agreement on text sampled from the baseline',
    );
  }
  if (tokenizer.bosTokenId === undefined) throw new AlkiError('BAD_INPUT', 'the model has no BOS token to start sampled text from', 'pass --text FILE');
  // Sampling is a decode per token: short windows and few of them unless the caller asks (--context, --max-windows).
  const sampledContext = o.context ?? Math.min(context, 128);
  return sampledWindows(baseline, tokenizer.bosTokenId, sampledContext, o.maxWindows ?? o.sampledWindowCount ?? 8, o.sampleSeed ?? 0);
}

/** KL and top-1 compare two distributions over the same tokens: a baseline of another vocabulary or tokenizer would give numbers that mean nothing. */
export function assertComparable(
  t: { name: string; vocabSize?: number; tokenizer?: string },
  b: { name: string; vocabSize?: number; tokenizer?: string },
): void {
  const hint = 'compare a bundle with a baseline built from the same model (usually its fp32 bundle)';
  if (t.vocabSize !== undefined && b.vocabSize !== undefined && t.vocabSize !== b.vocabSize) {
    throw new AlkiError(
      'BAD_INPUT',
      `${t.name} has a ${t.vocabSize}-token vocabulary and the baseline ${b.name} one of ${b.vocabSize}: they are different models`,
      hint,
    );
  }
  if (t.tokenizer !== undefined && b.tokenizer !== undefined && t.tokenizer !== b.tokenizer) {
    throw new AlkiError(
      'BAD_INPUT',
      `${t.name} and the baseline ${b.name} have different tokenizers, so their predictions cannot be compared token by token`,
      hint,
    );
  }
}
