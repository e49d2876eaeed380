import { SeededRandom, throwIfAborted } from '@alki/core';
import { sampleToken, samplingDefaults } from './sampling.js';
import type { Decoder as DecoderSession } from './decoder.js';

/**
 * Token sequences sampled from a model itself: each starts with `startId`
 * (BOS) and continues at temperature 1, seeded, `batch` sequences at a time
 * with the KV cache. Text that is natural for the model by construction: used
 * where no real text is at hand (calibration, agreement metrics).
 */
export async function sampleSequences(
  session: DecoderSession,
  startId: number,
  count: number,
  length: number,
  seed = 0,
  batch = 16,
  /** Sampled tokens so far of count × length, after every step (a large model samples for minutes); and a stop. */
  o: { onTokens?: (done: number, total: number) => void; signal?: AbortSignal } = {},
): Promise<number[][]> {
  const rng = new SeededRandom(seed);
  const sampling = samplingDefaults({ temperature: 1 });
  const out: number[][] = [];
  for (let b0 = 0; b0 < count; b0 += batch) {
    const B = Math.min(batch, count - b0);
    const seqs = Array.from({ length: B }, () => [startId]);
    // Where the graph allows, a cache appended to in place (Decoder.kvInPlace) and grown as the sequences do: no
    // step has onnxruntime allocate a new, slightly longer cache (which its arena would keep, step after step).
    let past = session.emptyCache(B, Math.min(length, 32));
    let input = seqs.map((s) => [s[0]]);
    while (seqs[0].length < length) {
      const res = await session.forward(input, past, seqs[0].length - 1);
      for (let r = 0; r < B; r++) seqs[r].push(sampleToken(res.logits, r * res.vocabSize, res.vocabSize, sampling, rng));
      past = res.present;
      input = seqs.map((s) => [s[s.length - 1]]);
      o.onTokens?.(out.length * length + B * seqs[0].length, count * length);
      throwIfAborted(o.signal);
    }
    out.push(...seqs);
  }
  return out;
}
