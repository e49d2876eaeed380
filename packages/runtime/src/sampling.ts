import { AlkiError, type SeededRandom } from '@alki/core';

/** How the next token is chosen. Temperature 0 (the default) is greedy. */
export interface SamplingOptions {
  temperature?: number;
  /** Keep only the k most likely tokens (0 = off). */
  topK?: number;
  /** Keep the smallest set of tokens whose probability reaches p (1 = off). */
  topP?: number;
  /** Seed of the sampler, for reproducible output. */
  seed?: number;
}

/** Validates sampling options and fills defaults. */
export function samplingDefaults(o: SamplingOptions = {}): Required<SamplingOptions> {
  const s = { temperature: o.temperature ?? 0, topK: o.topK ?? 0, topP: o.topP ?? 1, seed: o.seed ?? 0 };
  if (!(s.temperature >= 0) || !Number.isFinite(s.temperature))
    throw new AlkiError('BAD_OPTION', `temperature must be ≥ 0, got ${s.temperature}`, 'use 0 for greedy decoding, 0.7–1.0 for sampling');
  if (!Number.isInteger(s.topK) || s.topK < 0) throw new AlkiError('BAD_OPTION', `top-k must be a whole number ≥ 0, got ${s.topK}`, 'use 0 (off) or e.g. 40');
  if (!(s.topP > 0 && s.topP <= 1)) throw new AlkiError('BAD_OPTION', `top-p must be in (0, 1], got ${s.topP}`, 'use 1 (off) or e.g. 0.9');
  if (!Number.isSafeInteger(s.seed)) throw new AlkiError('BAD_OPTION', `the seed must be a whole number, got ${s.seed}`, 'e.g. --seed 42');
  return s;
}

/** Index of the largest value (first one on ties, like torch.argmax). */
export function argmax(x: ArrayLike<number>, offset = 0, length = x.length - offset): number {
  let best = 0;
  let bestV = -Infinity;
  for (let i = 0; i < length; i++) {
    const v = x[offset + i];
    if (v > bestV) {
      bestV = v;
      best = i;
    }
  }
  return best;
}

/**
 * Picks a token from one row of logits: greedy at temperature 0, otherwise
 * softmax(logits / T) restricted by top-k then top-p, sampled with `rng`.
 * Linear in the vocabulary: only tokens that can survive top-k / top-p are
 * sorted (sorting a 32K vocabulary cost ~10 ms per token, more than a decode
 * step of a small model); with neither filter the draw walks the vocabulary
 * in index order.
 */
export function sampleToken(logits: Float32Array, offset: number, vocab: number, o: Required<SamplingOptions>, rng: SeededRandom): number {
  if (o.temperature === 0) return argmax(logits, offset, vocab);
  const max = logits[offset + argmax(logits, offset, vocab)];
  const weights = new Float64Array(vocab);
  let sum = 0;
  for (let i = 0; i < vocab; i++) {
    weights[i] = Math.exp((logits[offset + i] - max) / o.temperature);
    sum += weights[i];
  }
  if (o.topK === 0 && o.topP === 1) return draw(weights, vocab, (i) => i, sum, rng);
  const idx = candidates(weights, vocab, o, sum);
  idx.sort((a, b) => logits[offset + b] - logits[offset + a]);
  const k = o.topK > 0 ? Math.min(o.topK, idx.length) : idx.length;
  if (o.topK > 0) {
    sum = 0;
    for (let i = 0; i < k; i++) sum += weights[idx[i]];
  }
  let keep = k;
  if (o.topP < 1) {
    let cum = 0;
    for (let i = 0; i < k; i++) {
      cum += weights[idx[i]] / sum;
      if (cum >= o.topP) {
        keep = i + 1;
        break;
      }
    }
  }
  let total = 0;
  for (let i = 0; i < keep; i++) total += weights[idx[i]];
  return draw(weights, keep, (i) => idx[i], total, rng);
}

/** The i-th token of `order` with probability weights[order(i)] / total, i < n. */
function draw(weights: Float64Array, n: number, order: (i: number) => number, total: number, rng: SeededRandom): number {
  let r = rng.next() * total;
  for (let i = 0; i < n; i++) {
    r -= weights[order(i)];
    if (r <= 0) return order(i);
  }
  return order(n - 1);
}

/**
 * The tokens whose weight is at least a threshold (a prefix of the sorted order, in index order), lowered by
 * factors of 100 until the set holds top-k's k tokens or more than top-p's share of the mass (so the nucleus is
 * inside it, ties included).
 */
function candidates(weights: Float64Array, vocab: number, o: Required<SamplingOptions>, sum: number): number[] {
  for (let threshold = 1e-2; threshold > 1e-300; threshold /= 100) {
    const idx: number[] = [];
    let mass = 0;
    for (let i = 0; i < vocab; i++) {
      if (weights[i] >= threshold) {
        idx.push(i);
        mass += weights[i];
      }
    }
    if (o.topK > 0 ? idx.length >= o.topK : mass >= o.topP * sum * (1 + 1e-9)) return idx;
  }
  return Array.from({ length: vocab }, (_, i) => i);
}
