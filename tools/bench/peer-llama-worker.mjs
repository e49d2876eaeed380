// The llama.cpp side of `pnpm bench:peer`, in its own process: node-llama-cpp's prebuilt CPU backend loads a GGUF
// and runs the loop Alki's speed worker runs (packages/eval/src/speed-loop.ts): a seeded random prompt, prefill,
// then greedy decoding with the KV cache; warm-up runs are not kept. Prints one JSON line: speed and the
// process's own peak resident memory (VmHWM).
import { readFileSync } from 'node:fs';
import { getLlama } from 'node-llama-cpp';
import { SeededRandom } from '@alki/core';

const [path, json] = process.argv.slice(2);
const o = JSON.parse(json);
const vmKb = (key) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) * 1024;
const startRssBytes = vmKb('VmRSS');
// The same seeded prompt as the Alki worker's.
const rng = new SeededRandom(o.seed ?? 0);
const prompt = Array.from({ length: o.promptTokens }, () => 3 + rng.int(Math.max(1, o.vocabSize - 3)));
const t0 = performance.now();
const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' });
const model = await llama.loadModel({ modelPath: path });
const context = await model.createContext({ contextSize: o.promptTokens + o.newTokens + 8, threads: o.threads, batchSize: o.promptTokens });
const loadMs = performance.now() - t0;
const sequence = context.getSequence();
const times = { prefill: [], decode: [] };
for (let r = 0; r < o.warmupRuns + o.runs; r++) {
  await sequence.clearHistory();
  const a = performance.now();
  let b = 0;
  let n = 0;
  for await (const _ of sequence.evaluate(prompt, { temperature: 0 })) {
    if (n === 0) b = performance.now();
    if (++n > o.newTokens) break;
  }
  const c = performance.now();
  if (r < o.warmupRuns) continue;
  times.prefill.push((o.promptTokens / (b - a)) * 1000);
  times.decode.push((o.newTokens / (c - b)) * 1000);
}
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
process.stdout.write(
  `${JSON.stringify({ prefill: median(times.prefill), decode: median(times.decode), loadMs, peakRssBytes: vmKb('VmHWM'), startRssBytes, backend: llama.gpu || 'cpu' })}\n`,
);
await context.dispose();
await model.dispose();
