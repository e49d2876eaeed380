// pnpm bench:w8a8 — the W8A8 weight formats side by side (docs/decisions.md, "W8A8 weights as s7"):
// 1. what onnxruntime's int8 kernel does on this CPU for each format (the runtime's probe) and the CPU's features;
// 2. quality: stories260K SmoothQuant W8A8 in each format, alki-ppl-v1 on the first 100 TinyStories windows,
//    against fp32 and the unsmoothed (naive) W8A8 baseline (needs the fixtures; skipped without them);
// 3. speed: a TinyLlama-1.1B-shaped model (random weights) as fp32, W8A8 s8 / s7 / u8 and MatMulNBits int8,
//    each in its own process, all in one run (memory bandwidth drifts between runs).
// Env: ALKI_BENCH_LAYERS (22), ALKI_BENCH_RUNS (3), ALKI_BENCH_WINDOWS (100), ALKI_BENCH_WORK (keep and reuse builds).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBundle, bundleEvalTarget, readBundle } from '@alki/bundle';
import { evaluateTargets, machineInfo, measureIsolated } from '@alki/eval';
import { describeCpu, w8a8Saturates } from '@alki/hardware-presets';
import { detectCpu } from '@alki/hardware-presets/node';
import { writeSyntheticLlama } from '@alki/models';
import { w8a8Codes } from '@alki/quantizers';
import { probeInt8Products } from '@alki/runtime';
import { fixture, TINYLLAMA_SHAPE } from './fixtures.mjs';
import { enableGarbageCollection } from '@alki/core/node';
import { writeBenchResult } from './results.mjs';

// As the CLI does: the calibrated quantizers' garbage meters need collections (see enableGarbageCollection).
enableGarbageCollection();

const FORMATS = ['s8', 's7', 'u8'];
const runs = Number(process.env.ALKI_BENCH_RUNS ?? 3);
const windows = Number(process.env.ALKI_BENCH_WINDOWS ?? 100);
const shape = TINYLLAMA_SHAPE;
const keep = process.env.ALKI_BENCH_WORK;
const work = keep ?? mkdtempSync(join(tmpdir(), 'alki-w8a8-'));
const log = (s) => process.stderr.write(`${s}\n`);
const result = { benchmark: 'w8a8', machine: machineInfo(), cpu: detectCpu() };

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
  // 1. The kernel on this CPU.
  const cpu = result.cpu;
  console.log(`CPU: ${describeCpu(cpu)}, ${availableParallelism()} threads`);
  console.log('\nformat  stored        onnxruntime int8 products here   expected from CPU features');
  result.probe = {};
  for (const f of FORMATS) {
    const codes = w8a8Codes(f);
    const p = await probeInt8Products(codes);
    const expected = w8a8Saturates(cpu, codes);
    result.probe[f] = { ...p, expectedSaturation: expected };
    console.log(
      `${f.padEnd(7)} ${`${codes.type} ±${codes.maxCode}`.padEnd(13)} ${(p.exact ? 'exact' : `saturate (error ${(100 * p.relativeError).toFixed(0)}%)`).padEnd(32)} ${expected === undefined ? 'unknown' : expected ? 'saturate' : 'exact'}`,
    );
  }

  // 2. Quality on stories260K.
  const stories = fixture('stories260K');
  const text = fixture('text/tinystories-valid.txt');
  if (stories && text) {
    const fp32 = await build('s260k-fp32', stories, { method: 'none' });
    const variants = [];
    for (const f of FORMATS) {
      variants.push([`smoothquant ${f}`, await build(`s260k-sq-${f}`, stories, { method: 'smoothquant', w8a8Format: f })]);
      variants.push([`naive w8a8 ${f}`, await build(`s260k-naive-${f}`, stories, { method: 'smoothquant', smooth: false, w8a8Format: f })]);
    }
    variants.push(['rtn int8 (MatMulNBits)', await build('s260k-rtn8', stories, { method: 'rtn', bits: 8 })]);
    const report = await evaluateTargets(
      variants.map(([name, b]) => bundleEvalTarget(b, name)),
      { metrics: ['perplexity'], baseline: bundleEvalTarget(fp32, 'fp32'), textPath: text, maxWindows: windows, maxPositions: 512, vocabSize: 512 },
    );
    const base = report.baseline.quality.perplexity;
    console.log(`\nstories260K, alki-ppl-v1 on the first ${windows} TinyStories windows; fp32 ${base.toFixed(4)}`);
    console.log('bundle                   perplexity  vs fp32      KL    top-1');
    result.quality = { fp32: base, windows, results: [] };
    for (const e of report.evaluations) {
      const q = e.quality;
      result.quality.results.push({
        name: e.target.name,
        perplexity: q.perplexity,
        increase: q.perplexity / base - 1,
        kl: q.agreement.meanKl,
        top1: q.agreement.top1,
      });
      console.log(
        `${e.target.name.padEnd(24)} ${q.perplexity.toFixed(4).padStart(10)} ${`${(100 * (q.perplexity / base - 1)).toFixed(2)}%`.padStart(8)} ${q.agreement.meanKl.toFixed(4).padStart(7)} ${`${(100 * q.agreement.top1).toFixed(1)}%`.padStart(8)}`,
      );
    }
  } else console.log('\n(stories260K fixtures not found: quality part skipped)');

  // 3. Speed on TinyLlama's shape.
  const modelDir = join(work, 'tinyllama-shape');
  if (!existsSync(join(modelDir, 'config.json'))) writeSyntheticLlama(modelDir, shape);
  const speedVariants = [
    ['fp32', { method: 'none' }],
    // Unsmoothed W8A8 runs the very same ops as SmoothQuant's (smoothing is folded into the norms).
    ...FORMATS.map((f) => [`w8a8 ${f}`, { method: 'smoothquant', smooth: false, w8a8Format: f }]),
    ['int8 MatMulNBits', { method: 'rtn', bits: 8, blockSize: 32 }],
  ];
  const speed = { runs, warmupRuns: 1, promptTokens: 128, newTokens: 32, vocabSize: shape.vocabSize };
  result.speed = { shape, protocol: speed, results: [] };
  for (const [name, quantize] of speedVariants) {
    const b = await build(`tl-${name.replaceAll(' ', '-')}`, modelDir, quantize);
    log(`measuring ${name}…`);
    const m = await measureIsolated(b.modelPath, speed);
    result.speed.results.push({
      name,
      decode: m.speed.decodeTokensPerSecond.median,
      prefill: m.speed.prefillTokensPerSecond.median,
      peakRssBytes: m.peakRssBytes,
      modelBytes: b.manifest.metrics.modelBytes.value,
    });
    if (!keep) rmSync(b.dir, { recursive: true, force: true });
  }
  const ref = result.speed.results.find((r) => r.name === 'w8a8 s8');
  console.log(
    `\nTinyLlama-1.1B shape (${shape.numLayers} layers, random weights); prompt ${speed.promptTokens}, ${speed.newTokens} decoded, median of ${runs}, ${availableParallelism()} threads`,
  );
  console.log('bundle             decode tok/s   ×s8   prefill tok/s   ×s8   model MB');
  for (const r of result.speed.results) {
    console.log(
      `${r.name.padEnd(18)} ${r.decode.toFixed(2).padStart(12)} ${(r.decode / ref.decode).toFixed(2).padStart(5)} ${r.prefill.toFixed(1).padStart(15)} ${(r.prefill / ref.prefill).toFixed(2).padStart(5)} ${(r.modelBytes / 1e6).toFixed(0).padStart(10)}`,
    );
  }
  writeBenchResult('w8a8', result);
} finally {
  if (!keep) rmSync(work, { recursive: true, force: true });
}
