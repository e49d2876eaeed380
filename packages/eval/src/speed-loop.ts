import { SeededRandom } from '@alki/core';
import { argmax, type Decoder } from '@alki/runtime/web';

/** Per measured run: prefill tok/s, decode tok/s, time to first token (ms). */
export interface GenerationTimes {
  prefill: number[];
  decode: number[];
  ttft: number[];
}

/**
 * The speed loop every Alki benchmark runs, in Node and in the browser: a seeded random prompt, prefill, then
 * greedy decoding with the KV cache; warm-up runs are not kept. Time to first token is the prefill plus choosing
 * the token. Browser-safe.
 */
export async function timeGeneration(
  decoder: Decoder,
  o: { promptTokens: number; newTokens: number; runs: number; warmupRuns: number; vocabSize: number; seed?: number },
): Promise<GenerationTimes> {
  const P = o.promptTokens;
  const N = o.newTokens;
  const rng = new SeededRandom(o.seed ?? 0);
  const prompt = Array.from({ length: P }, () => 3 + rng.int(Math.max(1, o.vocabSize - 3)));
  const times: GenerationTimes = { prefill: [], decode: [], ttft: [] };
  for (let r = 0; r < o.warmupRuns + o.runs; r++) {
    const a = performance.now();
    // Room for the whole run (no growth inside the timed steps): a graph that can appends to it in place (Decoder.kvInPlace).
    const first = await decoder.forward([prompt], decoder.emptyCache(1, P + N), 0);
    let next = argmax(first.logits, (P - 1) * first.vocabSize, first.vocabSize);
    const b = performance.now();
    let past = first.present;
    for (let i = 0; i < N; i++) {
      const out = await decoder.forward([[next]], past, P + i);
      next = argmax(out.logits, 0, out.vocabSize);
      past = out.present;
    }
    const c = performance.now();
    if (r < o.warmupRuns) continue;
    times.prefill.push((P / (b - a)) * 1000);
    times.ttft.push(b - a);
    times.decode.push((N / (c - b)) * 1000);
  }
  return times;
}
