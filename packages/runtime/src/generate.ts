import { AlkiError, SeededRandom, throwIfAborted } from '@alki/core';
import { samplingDefaults, sampleToken, type SamplingOptions } from './sampling.js';
import type { Decoder as DecoderSession } from './decoder.js';

export interface GenerateOptions extends SamplingOptions {
  /** Default 128. */
  maxNewTokens?: number;
  /** Generation stops after any of these ids (the id is included in `ids`, not in text). */
  stopTokenIds?: number[];
  /** Called with each new token id as soon as it is chosen. */
  onToken?: (id: number) => void;
  signal?: AbortSignal;
}

export interface GenerateResult {
  /** New token ids (without the prompt). */
  ids: number[];
  stopReason: 'stop-token' | 'max-tokens' | 'context-full';
  /** Logits of each step: row i is the distribution that chose ids[i]. Only when `keepLogits`. */
  stepLogits?: Float32Array[];
  timings: { prefillMs: number; decodeMs: number; promptTokens: number; newTokens: number };
}

/**
 * Autoregressive generation with KV cache: one forward pass over the prompt
 * (prefill), then one token per step feeding the cache back.
 */
export async function generate(
  session: DecoderSession,
  promptIds: number[],
  options: GenerateOptions & { keepLogits?: boolean; maxPositions?: number } = {},
): Promise<GenerateResult> {
  if (promptIds.length === 0)
    throw new AlkiError('BAD_INPUT', 'the prompt is empty and the tokenizer adds no BOS token, so there is nothing to continue', 'give a prompt');
  if (options.maxPositions && promptIds.length > options.maxPositions) {
    throw new AlkiError(
      'BAD_INPUT',
      `the prompt is ${promptIds.length} tokens long, more than the model's context of ${options.maxPositions}`,
      `shorten the prompt to at most ${options.maxPositions - 1} tokens (keep its end, which the continuation depends on)`,
    );
  }
  const maxNewTokens = options.maxNewTokens ?? 128;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1)
    throw new AlkiError('BAD_OPTION', `the number of new tokens must be a whole number ≥ 1, got ${maxNewTokens}`, 'e.g. --max-new-tokens 64');
  const sampling = samplingDefaults(options);
  const rng = new SeededRandom(sampling.seed);
  const maxNew = maxNewTokens;
  const stop = new Set(options.stopTokenIds ?? []);
  const ids: number[] = [];
  const stepLogits: Float32Array[] = [];
  // Where the graph can, a cache appended to in place (Decoder.kvInPlace): sized for the prompt and the first new
  // tokens, grown as generation goes on (a buffer reserved for every new token would be copied out whole each step).
  let past = session.emptyCache(1, promptIds.length + Math.min(maxNew, 32), options.maxPositions);
  let pastLen = 0;
  let input = promptIds;
  let stopReason: GenerateResult['stopReason'] = 'max-tokens';
  let prefillMs = 0;
  let decodeMs = 0;
  while (ids.length < maxNew) {
    throwIfAborted(options.signal);
    if (options.maxPositions && pastLen + input.length > options.maxPositions) {
      stopReason = 'context-full';
      break;
    }
    const t0 = performance.now();
    const out = await session.forward([input], past, pastLen);
    const dt = performance.now() - t0;
    if (pastLen === 0) prefillMs = dt;
    else decodeMs += dt;
    const last = (input.length - 1) * out.vocabSize;
    if (options.keepLogits) stepLogits.push(out.logits.slice(last, last + out.vocabSize));
    const next = sampleToken(out.logits, last, out.vocabSize, sampling, rng);
    ids.push(next);
    options.onToken?.(next);
    pastLen += input.length;
    past = out.present;
    input = [next];
    if (stop.has(next)) {
      stopReason = 'stop-token';
      break;
    }
  }
  return {
    ids,
    stopReason,
    stepLogits: options.keepLogits ? stepLogits : undefined,
    timings: { prefillMs, decodeMs, promptTokens: promptIds.length, newTokens: ids.length },
  };
}
