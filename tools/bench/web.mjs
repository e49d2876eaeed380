// pnpm bench:web — the browser against Node on the same bundles, side by side in one run: prefill and decode tok/s
// and time to first token of onnxruntime-web (WASM, 1 and 2 threads, headless Chromium through `alki bench
// --browser`'s runner) and of onnxruntime-node (1 and 2 threads, a child process each), fp32 and RTN int4, on a
// generated model (random weights; default a 8-layer, 1024-wide Llama; ALKI_BENCH_SHAPE=tinyllama for the real
// TinyLlama-1.1B shape). Prints the table and ratios, writes JSON to bench-results/.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBundle, readBundle } from '@alki/bundle';
import { machineInfo, measureIsolated, runBrowserBench } from '@alki/eval';
import { writeSyntheticLlama } from '@alki/models';
import { webBenchDir } from '@alki/web-bench';
import { enableGarbageCollection } from '@alki/core/node';
import { TINYLLAMA_SHAPE } from './fixtures.mjs';
import { writeBenchResult } from './results.mjs';

// As the CLI does: the calibrated quantizers' garbage meters need collections (see enableGarbageCollection).
enableGarbageCollection();

const shapes = {
  small: { hiddenSize: 1024, intermediateSize: 2816, numLayers: 8, numHeads: 16, numKvHeads: 4, vocabSize: 32000, maxPositions: 2048, dtype: 'BF16', seed: 7 },
  tinyllama: { ...TINYLLAMA_SHAPE, numLayers: 22 },
};
const shapeName = process.env.ALKI_BENCH_SHAPE ?? 'small';
const shape = shapes[shapeName];
const speed = { runs: Number(process.env.ALKI_BENCH_RUNS ?? 3), warmupRuns: 1, promptTokens: 128, newTokens: 32 };
const keep = process.env.ALKI_BENCH_WORK;
const work = keep ?? mkdtempSync(join(tmpdir(), 'alki-web-bench-'));
const log = (s) => process.stderr.write(`${s}\n`);
const result = { benchmark: 'web', machine: machineInfo(), shape: { name: shapeName, ...shape }, speed, rows: [] };
try {
  const modelDir = join(work, `model-${shapeName}`);
  if (!existsSync(join(modelDir, 'config.json'))) writeSyntheticLlama(modelDir, shape);
  console.log(`machine: ${result.machine.cpu} (${result.machine.features.join(' ')}); ${shapeName} shape, ${shape.numLayers} layers`);
  console.log('bundle  runtime              threads  prefill tok/s  decode tok/s  TTFT ms  load ms');
  for (const [name, quantize] of [
    ['fp32', { method: 'none' }],
    ['int4', { method: 'rtn', bits: 4 }],
  ]) {
    const out = join(work, `${shapeName}-${name}`);
    if (!existsSync(join(out, 'alki.json'))) await buildBundle({ modelDir, out, quantize });
    const b = readBundle(out);
    for (const threads of [1, 2]) {
      for (const runtime of ['node', 'browser wasm']) {
        log(`${name}: ${runtime}, ${threads} thread(s)…`);
        const s =
          runtime === 'node'
            ? (await measureIsolated(b.modelPath, { ...speed, threads, vocabSize: shape.vocabSize })).speed
            : (await runBrowserBench({ pageDir: webBenchDir, bundleDir: out, metrics: ['speed'], threads, speed })).evaluations[0].speed;
        const row = {
          bundle: name,
          runtime,
          threads,
          prefill: s.prefillTokensPerSecond.median,
          decode: s.decodeTokensPerSecond.median,
          ttftMs: s.timeToFirstTokenMs.median,
          loadMs: s.loadMs,
        };
        result.rows.push(row);
        console.log(
          `${name.padEnd(7)} ${runtime.padEnd(20)} ${String(threads).padStart(7)} ${row.prefill.toFixed(1).padStart(14)} ${row.decode.toFixed(1).padStart(13)} ${row.ttftMs.toFixed(1).padStart(8)} ${row.loadMs.toFixed(0).padStart(8)}`,
        );
      }
    }
  }
  console.log('');
  const find = (bundle, runtime, threads) => result.rows.find((r) => r.bundle === bundle && r.runtime === runtime && r.threads === threads);
  for (const bundle of ['fp32', 'int4']) {
    const w1 = find(bundle, 'browser wasm', 1);
    const w2 = find(bundle, 'browser wasm', 2);
    const n2 = find(bundle, 'node', 2);
    console.log(
      `${bundle}: WASM 2 threads vs 1: decode ${(w2.decode / w1.decode).toFixed(2)}×, prefill ${(w2.prefill / w1.prefill).toFixed(2)}×; browser vs Node (2 threads): decode ${(w2.decode / n2.decode).toFixed(2)}×, prefill ${(w2.prefill / n2.prefill).toFixed(2)}×`,
    );
  }
  writeBenchResult('web', result);
} finally {
  if (!keep) rmSync(work, { recursive: true, force: true });
}
