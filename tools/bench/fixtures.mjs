// The shared real-model fixtures for benchmarks: $ALKI_FIXTURES or ../shared/fixtures beside the repository.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const fixturesDir = resolve(process.env.ALKI_FIXTURES ?? join(root, '../shared/fixtures'));

/** A path under the fixtures folder, or undefined when it is not there. */
export function fixture(rel) {
  const p = join(fixturesDir, rel);
  return existsSync(p) ? p : undefined;
}

/** The TinyLlama-1.1B shape the benchmarks generate (random bf16 weights, seed 5); numLayers from $ALKI_BENCH_LAYERS. */
export const TINYLLAMA_SHAPE = Object.freeze({
  hiddenSize: 2048,
  intermediateSize: 5632,
  numLayers: Number(process.env.ALKI_BENCH_LAYERS ?? 22),
  numHeads: 32,
  numKvHeads: 4,
  vocabSize: 32000,
  maxPositions: 2048,
  dtype: 'BF16',
  seed: 5,
});
