// pnpm bench:head — the output projection's width (--head-bits 4 | 8 | 32) side by side
// (docs/decisions.md, "An 8-bit lm_head by default"):
// 1. quality: stories260K int4 (RTN, AWQ, GPTQ; block 32; calibration: the second half of the TinyStories text)
//    with the head at 4, 8 and 32 bits, alki-ppl-v1 on the first 100 windows (needs the fixtures);
// 2. size and speed: a TinyLlama-1.1B-shaped model (random weights), RTN int4 block 32, each head width in its
//    own process, all in one run.
// Env: ALKI_BENCH_LAYERS (22), ALKI_BENCH_RUNS (3), ALKI_BENCH_WINDOWS (100), ALKI_BENCH_WORK (keep and reuse builds).
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBundle, bundleEvalTarget, readBundle } from '@alki/bundle';
import { evaluateTargets, machineInfo, measureIsolated } from '@alki/eval';
import { writeSyntheticLlama } from '@alki/models';
import { fixture, TINYLLAMA_SHAPE } from './fixtures.mjs';
import { enableGarbageCollection } from '@alki/core/node';
import { writeBenchResult } from './results.mjs';

// As the CLI does: the calibrated quantizers' garbage meters need collections (see enableGarbageCollection).
enableGarbageCollection();

const HEADS = [4, 8, 32];
const runs = Number(process.env.ALKI_BENCH_RUNS ?? 3);
const windows = Number(process.env.ALKI_BENCH_WINDOWS ?? 100);
const shape = TINYLLAMA_SHAPE;
const keep = process.env.ALKI_BENCH_WORK;
const work = keep ?? mkdtempSync(join(tmpdir(), 'alki-head-'));
const log = (s) => process.stderr.write(`${s}\n`);
const result = { benchmark: 'head-bits', machine: machineInfo() };
const mb = (b) => (b / 1e6).toFixed(1);

async function build(name, modelDir, quantize, extra = {}) {
  const out = join(work, name);
  if (!existsSync(join(out, 'alki.json'))) {
    const t0 = performance.now();
    await buildBundle({ modelDir, out, sourceId: name, quantize, ...extra });
    log(`built ${name} in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  return readBundle(out);
}

try {
  console.log(`machine: ${result.machine.cpu} (${result.machine.features.join(' ')}), ${availableParallelism()} threads`);
  const stories = fixture('stories260K');
  const text = fixture('text/tinystories-valid.txt');
  if (stories && text) {
    // The second half of the text calibrates; the evaluation windows start at its beginning.
    const calibPath = join(work, 'calib-second-half.txt');
    if (!existsSync(calibPath)) {
      const { readFileSync } = await import('node:fs');
      const all = readFileSync(text, 'utf8');
      writeFileSync(calibPath, all.slice(Math.floor(all.length / 2)));
    }
    const fp32 = await build('s260k-fp32', stories, { method: 'none' });
    const targets = [];
    for (const method of ['rtn', 'awq', 'gptq']) {
      for (const headBits of HEADS) {
        const b = await build(`s260k-${method}4-head${headBits}`, stories, { method, bits: 4, blockSize: 32, headBits }, { calibration: { path: calibPath } });
        targets.push(bundleEvalTarget(b, `${method} int4, head ${headBits}`));
      }
    }
    const report = await evaluateTargets(targets, {
      metrics: ['perplexity', 'size'],
      baseline: bundleEvalTarget(fp32, 'fp32'),
      textPath: text,
      maxWindows: windows,
      maxPositions: 512,
      vocabSize: 512,
    });
    const base = report.baseline.quality.perplexity;
    console.log(`\nstories260K, alki-ppl-v1 on the first ${windows} TinyStories windows; fp32 ${base.toFixed(4)}`);
    console.log('bundle                 perplexity  vs fp32      KL    top-1   model kB');
    result.quality = { fp32: base, windows, results: [] };
    for (const e of report.evaluations) {
      const q = e.quality;
      result.quality.results.push({
        name: e.target.name,
        perplexity: q.perplexity,
        increase: q.perplexity / base - 1,
        kl: q.agreement.meanKl,
        top1: q.agreement.top1,
        modelBytes: e.target.modelBytes,
      });
      console.log(
        `${e.target.name.padEnd(22)} ${q.perplexity.toFixed(4).padStart(10)} ${`${(100 * (q.perplexity / base - 1)).toFixed(2)}%`.padStart(8)} ${q.agreement.meanKl.toFixed(4).padStart(7)} ${`${(100 * q.agreement.top1).toFixed(1)}%`.padStart(8)} ${(e.target.modelBytes / 1e3).toFixed(0).padStart(10)}`,
      );
    }
  } else console.log('\n(stories260K fixtures not found: quality part skipped)');

  const modelDir = join(work, 'tinyllama-shape');
  if (!existsSync(join(modelDir, 'config.json'))) writeSyntheticLlama(modelDir, shape);
  const speed = { runs, warmupRuns: 1, promptTokens: 128, newTokens: 32, vocabSize: shape.vocabSize };
  result.speed = { shape, protocol: speed, results: [] };
  for (const headBits of HEADS) {
    const b = await build(`tl-rtn4-head${headBits}`, modelDir, { method: 'rtn', bits: 4, blockSize: 32, headBits });
    log(`measuring head ${headBits}…`);
    const m = await measureIsolated(b.modelPath, speed);
    result.speed.results.push({
      headBits,
      decode: m.speed.decodeTokensPerSecond.median,
      prefill: m.speed.prefillTokensPerSecond.median,
      peakRssBytes: m.peakRssBytes,
      modelBytes: b.manifest.metrics.modelBytes.value,
    });
    if (!keep) rmSync(b.dir, { recursive: true, force: true });
  }
  const ref = result.speed.results.find((r) => r.headBits === 4);
  console.log(
    `\nTinyLlama-1.1B shape (${shape.numLayers} layers, random weights), RTN int4 block 32; prompt ${speed.promptTokens}, ${speed.newTokens} decoded, median of ${runs}`,
  );
  console.log('head   decode tok/s  ×head 4  prefill tok/s  ×head 4  model MB  peak RSS MB');
  for (const r of result.speed.results) {
    console.log(
      `${String(r.headBits).padEnd(6)} ${r.decode.toFixed(2).padStart(12)} ${(r.decode / ref.decode).toFixed(2).padStart(8)} ${r.prefill.toFixed(1).padStart(14)} ${(r.prefill / ref.prefill).toFixed(2).padStart(8)} ${mb(r.modelBytes).padStart(9)} ${mb(r.peakRssBytes).padStart(12)}`,
    );
  }
  writeBenchResult('head-bits', result);
} finally {
  if (!keep) rmSync(work, { recursive: true, force: true });
}
