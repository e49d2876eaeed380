// pnpm bench (part 3): decode and prefill speed of the `ort` graph flavour against `portable`, fp32 and
// RTN int4 (block 32), on a generated model of TinyLlama-1.1B's real shape (random weights in a temp folder),
// each bundle measured in its own process, all in one run (this VM's memory bandwidth drifts: only
// side-by-side figures compare). Also: the memory-bandwidth bound of decode — weight bytes read per token
// ÷ a read bandwidth measured in the same run — and the fraction of it each bundle reaches.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBundle, readBundle } from '@alki/bundle';
import { measureIsolated } from '@alki/eval';
import { writeSyntheticLlama } from '@alki/models';
import { DataType, GraphBuilder, createModel, encodeModel } from '@alki/onnx';
import * as ort from 'onnxruntime-node';
import { enableGarbageCollection } from '@alki/core/node';
import { TINYLLAMA_SHAPE } from './fixtures.mjs';
import { writeBenchResult } from './results.mjs';

// As the CLI does: the calibrated quantizers' garbage meters need collections (see enableGarbageCollection).
enableGarbageCollection();

const shape = TINYLLAMA_SHAPE;
const runs = Number(process.env.ALKI_BENCH_RUNS ?? 3);
const speed = { runs, warmupRuns: 1, promptTokens: 128, newTokens: 32, vocabSize: shape.vocabSize };
// ALKI_BENCH_WORK: keep the generated model and bundles there and reuse them on the next run.
const keep = process.env.ALKI_BENCH_WORK;
const work = keep ?? mkdtempSync(join(tmpdir(), 'alki-flavours-'));
const log = (s) => process.stderr.write(`${s}\n`);

/** Bytes a decode step reads: the ONNX files less the float32 embedding table (one row of it is gathered). */
const weightBytesPerToken = (bundle) => bundle.manifest.metrics.modelBytes.value - shape.vocabSize * shape.hiddenSize * 4;

/**
 * Read bandwidth for streaming weights: onnxruntime's float32 GEMV, one row times a 512 MiB weight matrix, with
 * all threads — the operation a decode step is made of, so its rate is the practical bound. Best of 5.
 */
async function readBandwidth() {
  const K = 8192;
  const N = 16384;
  const g = new GraphBuilder('read_bw');
  const x = g.input('X', DataType.FLOAT, [1, K]);
  const w = g.input('W', DataType.FLOAT, [K, N]);
  g.output(g.node('MatMul', [x, w], {}, { outputs: ['Y'] }), DataType.FLOAT, [1, N]);
  const s = await ort.InferenceSession.create(encodeModel(createModel(g.build(), { opsets: { '': 17 } })), { intraOpNumThreads: availableParallelism() });
  const feeds = { X: new ort.Tensor('float32', new Float32Array(K).fill(1), [1, K]), W: new ort.Tensor('float32', new Float32Array(K * N).fill(0.5), [K, N]) };
  await s.run(feeds);
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await s.run(feeds);
    best = Math.min(best, performance.now() - t0);
  }
  await s.release();
  return (K * N * 4) / (best / 1000);
}

try {
  const modelDir = join(work, 'model');
  let t0 = performance.now();
  if (!existsSync(join(modelDir, 'config.json'))) {
    writeSyntheticLlama(modelDir, shape);
    log(`generated TinyLlama-shaped model in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  const variants = [
    ['portable fp32', 'portable', { method: 'none' }],
    ['ort fp32', 'ort', { method: 'none' }],
    ['portable int4', 'portable', { method: 'rtn', bits: 4, blockSize: 32 }],
    ['ort int4', 'ort', { method: 'rtn', bits: 4, blockSize: 32 }],
    ['ort int4 b128', 'ort', { method: 'rtn', bits: 4, blockSize: 128 }],
    // Float activations inside MatMulNBits (accuracy_level 0) instead of the default int8 ones.
    ['ort int4 acc0', 'ort', { method: 'rtn', bits: 4, blockSize: 32, accuracyLevel: 0 }],
  ];
  const rows = [];
  for (const [name, flavour, quantize] of variants) {
    t0 = performance.now();
    const out = join(work, name.replaceAll(' ', '-'));
    if (!existsSync(join(out, 'alki.json'))) {
      await buildBundle({ modelDir, out, sourceId: 'synthetic-tinyllama-shape', quantize, flavour });
      log(`built ${name} in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    }
    const b = readBundle(out);
    rows.push({ name, flavour, method: quantize.method, dir: out, modelPath: b.modelPath, weightBytes: weightBytesPerToken(b) });
  }
  for (const r of rows) {
    log(`measuring ${r.name}…`);
    const m = await measureIsolated(r.modelPath, speed);
    r.speed = m.speed;
    r.peakRssBytes = m.peakRssBytes;
    if (!keep) rmSync(r.dir, { recursive: true, force: true });
  }
  const bandwidth = await readBandwidth();
  const base = rows[0].speed;
  console.log(`\nTinyLlama-1.1B shape ${JSON.stringify(shape)}, random weights`);
  console.log(`${availableParallelism()} threads, ${cpus()[0]?.model}; prompt ${speed.promptTokens} tokens, ${speed.newTokens} decoded, median of ${runs}`);
  console.log(`read bandwidth (onnxruntime float32 GEMV over a 512 MiB matrix) ${(bandwidth / 1e9).toFixed(1)} GB/s\n`);
  console.log('bundle           decode tok/s  ×portable fp32  prefill tok/s  ×portable fp32  weights/token  bound tok/s  of bound');
  for (const r of rows) {
    const d = r.speed.decodeTokensPerSecond.median;
    const p = r.speed.prefillTokensPerSecond.median;
    r.decodeRatio = d / base.decodeTokensPerSecond.median;
    r.prefillRatio = p / base.prefillTokensPerSecond.median;
    r.boundTokensPerSecond = bandwidth / r.weightBytes;
    r.fractionOfBound = d / r.boundTokensPerSecond;
    console.log(
      `${r.name.padEnd(16)} ${d.toFixed(2).padStart(12)} ${r.decodeRatio.toFixed(2).padStart(14)}× ${p.toFixed(1).padStart(14)} ${r.prefillRatio.toFixed(2).padStart(14)}× ${(r.weightBytes / 1e6).toFixed(0).padStart(11)} MB ${r.boundTokensPerSecond.toFixed(1).padStart(12)} ${(100 * r.fractionOfBound).toFixed(0).padStart(8)}%`,
    );
  }
  const ortInt4 = rows.find((r) => r.name === 'ort int4');
  console.log(`\nort int4 decode = ${ortInt4.decodeRatio.toFixed(2)}× portable fp32 (target ≥ 3×)`);
  const json = rows.map(({ dir: _d, modelPath: _m, ...r }) => r);
  writeBenchResult(
    'flavours',
    {
      benchmark: 'flavours',
      shape,
      speed,
      readBandwidthBytesPerSecond: bandwidth,
      machine: { cpu: cpus()[0]?.model, cores: availableParallelism() },
      results: json,
    },
    { blankLine: false },
  );
} finally {
  if (!keep) rmSync(work, { recursive: true, force: true });
}
