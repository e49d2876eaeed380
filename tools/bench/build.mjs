// pnpm bench:build — how long `alki build` takes and how much memory it holds, per stage (export, calibration,
// quantize, write, test run), each build in its own process, all in one run:
// - the TinyLlama-1.1B shape (22 layers, random bf16 weights): fp32 (export and write only: the I/O floor, the
//   baseline), RTN int4, and AWQ / GPTQ int4 — all with the defaults (AWQ/GPTQ: the quick calibration recipe,
//   which the defaults choose for a model of this size);
// - ALKI_BENCH_SHAPE=7b (pnpm bench:7b): a Llama-2-7B / Mistral-7B shape (hidden 4096, intermediate 14336,
//   32 layers, 32/8 heads, vocab 32000), generated on disk in bf16 (14.5 GB), RTN int4.
// Prints a table and writes JSON to bench-results/. Env: ALKI_BENCH_WORK (keep and reuse the generated model),
// ALKI_BENCH_METHODS (comma list of none,rtn,awq,gptq).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultBlockSize } from '@alki/bundle';
import { machineInfo } from '@alki/eval';
import { writeSyntheticLlama } from '@alki/models';
import { writeLargeLlama } from './large-model.mjs';
import { TINYLLAMA_SHAPE } from './fixtures.mjs';
import { writeBenchResult } from './results.mjs';

const big = process.env.ALKI_BENCH_SHAPE === '7b';
const shape = big
  ? { hiddenSize: 4096, intermediateSize: 14336, numLayers: 32, numHeads: 32, numKvHeads: 8, vocabSize: 32000, maxPositions: 4096, seed: 7 }
  : { ...TINYLLAMA_SHAPE, numLayers: 22 };
const methods = (process.env.ALKI_BENCH_METHODS ?? (big ? 'rtn' : 'none,rtn,awq,gptq')).split(',');
const keep = process.env.ALKI_BENCH_WORK;
const work = keep ?? mkdtempSync(join(tmpdir(), 'alki-build-bench-'));
const here = dirname(fileURLToPath(import.meta.url));
const log = (s) => process.stderr.write(`${s}\n`);
const gb = (b) => (b / 1e9).toFixed(2);
const result = { benchmark: 'build', machine: machineInfo(), shape: { name: big ? '7B' : 'TinyLlama-1.1B', ...shape }, builds: [] };

try {
  console.log(`machine: ${result.machine.cpu} (${result.machine.features.join(' ')}), ${result.machine.cores} threads`);
  const modelDir = join(work, big ? 'llama-7b-shape' : 'tinyllama-shape');
  if (!existsSync(join(modelDir, 'config.json'))) {
    log(`generating the ${result.shape.name} shape (bf16, random weights) in ${modelDir}…`);
    const t0 = performance.now();
    if (big) writeLargeLlama(modelDir, shape);
    else writeSyntheticLlama(modelDir, shape);
    log(`generated in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  for (const method of methods) {
    const out = join(work, `out-${method}`);
    // The block size the CLI gives each method (defaultBlockSize: 128 for GPTQ int4, 32 for the others).
    const quantize = method === 'none' ? { method } : { method, bits: 4, blockSize: defaultBlockSize(method, 4) };
    // AWQ and GPTQ with no calibration options, as `alki build --quantize awq|gptq` runs them: a model of this size
    // gets the quick recipe by default (resolveCalibration), which the build says in its notes.
    const opts = { modelDir, out, overwrite: true, quantize };
    log(`building ${method}…`);
    const line = execFileSync(process.execPath, [join(here, 'build-child.mjs'), JSON.stringify(opts)], {
      encoding: 'utf8',
      maxBuffer: 1 << 24,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const r = JSON.parse(line.trim().split('\n').pop());
    result.builds.push({ method, ...r });
    rmSync(out, { recursive: true, force: true });
  }
  console.log(`\n${result.shape.name} shape, ${shape.numLayers} layers, bf16 safetensors; each build in its own process`);
  for (const b of result.builds) {
    const label =
      b.method === 'none'
        ? 'fp32 (export + write: baseline)'
        : `${b.method} int4, block ${defaultBlockSize(b.method, 4)}${b.notes.length ? ' (the default: quick recipe by size)' : ''}`;
    console.log(
      `\n${label}: ${b.seconds.toFixed(1)} s, peak RSS ${gb(b.peakRssBytes)} GB (test run in its own process: ${gb(b.testRunPeakRssBytes)} GB), bundle ${(b.bundleBytes / 1e6).toFixed(0)} MB`,
    );
    console.log('  stage                              seconds   peak RSS');
    for (const s of b.stages) console.log(`  ${s.stage.padEnd(34)} ${s.seconds.toFixed(1).padStart(7)} ${`${gb(s.peakRssBytes)} GB`.padStart(10)}`);
  }
  const base = result.builds.find((b) => b.method === 'none');
  const rtn = result.builds.find((b) => b.method === 'rtn');
  if (base && rtn) console.log(`\nRTN int4 vs the fp32 export alone: ${(rtn.seconds / base.seconds).toFixed(2)}× the time`);
  writeBenchResult(`build-${big ? '7b' : 'tinyllama'}`, result);
} finally {
  if (!keep) rmSync(work, { recursive: true, force: true });
}
