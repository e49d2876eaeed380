// pnpm bench:peer — Alki against llama.cpp on the same CPU, the same weights, side by side: the TinyLlama-1.1B
// shape (22 layers, random bf16 weights, as pnpm bench:build) written as GGUF Q4_0 by @alki/models' writeGguf and
// run by node-llama-cpp's prebuilt CPU backend, and as the bundle `alki build <model> --bits 4` makes (the
// defaults) run by @alki/runtime — each measurement in its own process (speed and the process's peak RSS),
// alternating in one run for ALKI_PEER_ROUNDS rounds (default 4): prompt 128, 64 new tokens, 2 threads. Prints
// paired ratios (alki ÷ llama.cpp, per round, then their median) and writes JSON to bench-results/.
// Then each Alki variant once more under onnxruntime's profiler (peer-profile-worker.mjs): where the time goes.
// Env: ALKI_BENCH_WORK (keep the model, GGUF and bundles), ALKI_PEER_ROUNDS, ALKI_PEER_THREADS,
// ALKI_PEER_VARIANTS (comma list of: q4_0, q8_0, q4_0-native, alki, alki-rtn, alki-sym, alki-b128, alki-b128-h4, alki-gptq-b128),
// ALKI_PEER_LLAMA_BENCH (a native llama-bench for q4_0-native; tools/bench/debian-llama-bench.sh fetches Debian's).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildBundle, defaultQuantize, readBundle } from '@alki/bundle';
import { machineInfo, measureIsolated } from '@alki/eval';
import { openHfModel, writeGguf, writeSyntheticLlama } from '@alki/models';
import { enableGarbageCollection } from '@alki/core/node';
import { TINYLLAMA_SHAPE } from './fixtures.mjs';
import { writeBenchResult } from './results.mjs';

// As the CLI does: the calibrated quantizers' garbage meters need collections (see enableGarbageCollection).
enableGarbageCollection();

const here = dirname(fileURLToPath(import.meta.url));
const shape = { ...TINYLLAMA_SHAPE, numLayers: 22 };
const rounds = Number(process.env.ALKI_PEER_ROUNDS ?? 4);
const threads = Number(process.env.ALKI_PEER_THREADS ?? 2);
const variants = (process.env.ALKI_PEER_VARIANTS ?? 'q4_0,alki,alki-rtn').split(',');
const run = { promptTokens: 128, newTokens: 64, runs: 3, warmupRuns: 1, threads, vocabSize: shape.vocabSize, seed: 1 };
const keep = process.env.ALKI_BENCH_WORK;
const work = keep ?? mkdtempSync(join(tmpdir(), 'alki-peer-'));
const log = (s) => process.stderr.write(`${s}\n`);
const mb = (b) => (Number.isFinite(b) ? (b / 1e6).toFixed(0) : '—');
const result = { benchmark: 'peer', machine: machineInfo(), shape: { name: 'TinyLlama-1.1B', ...shape }, run, rounds: [], variants: {} };

/** What each variant is and how it is measured. */
const VARIANTS = {
  q4_0: { label: 'llama.cpp Q4_0 (output Q8_0)', engine: 'llama', gguf: { type: 'Q4_0' } },
  q8_0: { label: 'llama.cpp Q8_0', engine: 'llama', gguf: { type: 'Q8_0' } },
  // The same Q4_0 file through a native llama-bench (ALKI_PEER_LLAMA_BENCH): is node-llama-cpp's build as fast?
  'q4_0-native': { label: 'llama.cpp Q4_0, native llama-bench', engine: 'llama-bench', gguf: { type: 'Q4_0' } },
  // What `alki build <model> --bits 4` makes: GPTQ at block 128 since 2026-11-29 (defaultMethod, defaultBlockSize).
  alki: {
    label: 'alki --bits 4 (defaults)',
    engine: 'alki',
    quantize: defaultQuantize(4),
  },
  'alki-rtn': { label: 'alki --quantize rtn (block 32)', engine: 'alki', quantize: { method: 'rtn', bits: 4 } },
  'alki-sym': { label: 'alki --bits 4 --symmetric', engine: 'alki', quantize: { method: 'rtn', bits: 4, symmetric: true } },
  'alki-b128': { label: 'alki --bits 4 --block-size 128', engine: 'alki', quantize: { method: 'rtn', bits: 4, blockSize: 128 } },
  // The block-128 format rounded by GPTQ (calibration by the model's size): the same kernels, the quality of pnpm bench:gptq.
  'alki-gptq-b128': { label: 'alki --quantize gptq --block-size 128', engine: 'alki', quantize: { method: 'gptq', bits: 4, blockSize: 128 } },
  'alki-b128-h4': { label: 'alki b128, head 4, embed 4', engine: 'alki', quantize: { method: 'rtn', bits: 4, blockSize: 128, headBits: 4, embedBits: 4 } },
};

/**
 * A native llama-bench (the command in ALKI_PEER_LLAMA_BENCH, e.g. a llama.cpp build's bin/llama-bench): prefill of
 * the prompt from an empty context, decode of the new tokens after the prompt (-d), as Alki's loop measures them.
 * Its process's peak memory is not measured.
 */
function llamaBenchRun(path) {
  const cmd = process.env.ALKI_PEER_LLAMA_BENCH;
  if (!cmd) throw new Error('variant q4_0-native needs ALKI_PEER_LLAMA_BENCH=<path of a llama-bench with -d (2025 or later)>');
  const P = run.promptTokens;
  const args = ['-m', path, '-p', String(P), '-n', String(run.newTokens), '-d', `0,${P}`, '-t', String(threads), '-r', String(run.runs), '-o', 'json'];
  const rows = JSON.parse(execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 22, stdio: ['ignore', 'pipe', 'inherit'] }));
  const find = (prompt, gen, depth) => rows.find((x) => x.n_prompt === prompt && x.n_gen === gen && (x.n_depth ?? 0) === depth)?.avg_ts ?? NaN;
  const m = { prefill: find(P, 0, 0), decode: find(0, run.newTokens, P), peakRssBytes: NaN, loadMs: NaN };
  if (!Number.isFinite(m.prefill) || !Number.isFinite(m.decode))
    throw new Error(`llama-bench gave no pp${P} / tg${run.newTokens}@d${P} result: ${JSON.stringify(rows.map((x) => [x.n_prompt, x.n_gen, x.n_depth]))}`);
  return m;
}

function llamaRun(path) {
  const out = execFileSync(process.execPath, [join(here, 'peer-llama-worker.mjs'), path, JSON.stringify(run)], { encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out.trim().split('\n').pop());
}

try {
  console.log(
    `machine: ${result.machine.cpu} (${result.machine.features.join(' ')}), ${threads} threads, node-llama-cpp 3.21.1, onnxruntime-node ${result.machine.onnxruntime}`,
  );
  const modelDir = join(work, 'tinyllama-shape');
  if (!existsSync(join(modelDir, 'config.json'))) {
    log(`generating the TinyLlama shape in ${modelDir}…`);
    writeSyntheticLlama(modelDir, shape);
  }
  const files = {};
  for (const v of variants) {
    const spec = VARIANTS[v];
    if (!spec) throw new Error(`unknown variant ${v} (ALKI_PEER_VARIANTS: ${Object.keys(VARIANTS).join(', ')})`);
    if (spec.engine !== 'alki') {
      const path = join(work, `model-${spec.gguf.type.toLowerCase()}.gguf`);
      if (!existsSync(path)) {
        const t0 = performance.now();
        writeGguf(openHfModel(modelDir), path, spec.gguf);
        log(`wrote ${path} in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
      }
      files[v] = { path, bytes: statSync(path).size };
    } else {
      const out = join(work, `bundle-${v}`);
      if (!existsSync(join(out, 'alki.json'))) await buildBundle({ modelDir, out, quantize: spec.quantize, overwrite: true });
      const b = readBundle(out);
      files[v] = { path: join(out, b.manifest.model.path), bytes: b.manifest.metrics.modelBytes.value };
    }
    result.variants[v] = { label: spec.label, bytes: files[v].bytes };
  }
  for (let r = 0; r < rounds; r++) {
    const row = {};
    for (const v of variants) {
      const spec = VARIANTS[v];
      if (spec.engine !== 'alki') {
        const m = spec.engine === 'llama' ? llamaRun(files[v].path) : llamaBenchRun(files[v].path);
        row[v] = { prefill: m.prefill, decode: m.decode, peakRssBytes: m.peakRssBytes, loadMs: m.loadMs };
      } else {
        const m = await measureIsolated(files[v].path, run);
        row[v] = {
          prefill: m.speed.prefillTokensPerSecond.median,
          decode: m.speed.decodeTokensPerSecond.median,
          peakRssBytes: m.peakRssBytes,
          loadMs: m.speed.loadMs,
        };
      }
      log(
        `round ${r + 1}/${rounds} ${v.padEnd(12)} prefill ${row[v].prefill.toFixed(1)} tok/s, decode ${row[v].decode.toFixed(1)} tok/s, peak ${mb(row[v].peakRssBytes)} MB`,
      );
    }
    result.rounds.push(row);
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
  const base = variants.find((v) => VARIANTS[v].engine === 'llama');
  console.log(
    `\nTinyLlama-1.1B shape, prompt ${run.promptTokens}, ${run.newTokens} new tokens, ${threads} threads, ${rounds} alternating rounds (medians; ratios paired per round against ${base ? VARIANTS[base].label : '—'})\n`,
  );
  console.log(
    `${'variant'.padEnd(34)} ${'MB'.padStart(5)} ${'prefill'.padStart(8)} ${'decode'.padStart(7)} ${'peak RSS'.padStart(9)} ${'prefill ×'.padStart(10)} ${'decode ×'.padStart(9)} ${'RSS ×'.padStart(6)}`,
  );
  for (const v of variants) {
    const s = (k) => median(result.rounds.map((row) => row[v][k]));
    const ratio = (k) => (base ? median(result.rounds.map((row) => row[v][k] / row[base][k])) : NaN);
    const summary = {
      prefill: s('prefill'),
      decode: s('decode'),
      peakRssBytes: s('peakRssBytes'),
      prefillRatio: ratio('prefill'),
      decodeRatio: ratio('decode'),
      rssRatio: ratio('peakRssBytes'),
    };
    Object.assign(result.variants[v], summary);
    console.log(
      `${VARIANTS[v].label.padEnd(34)} ${mb(files[v].bytes).padStart(5)} ${summary.prefill.toFixed(1).padStart(8)} ${summary.decode.toFixed(1).padStart(7)} ${`${mb(summary.peakRssBytes)} MB`.padStart(9)} ${summary.prefillRatio.toFixed(2).padStart(9)}× ${summary.decodeRatio.toFixed(2).padStart(8)}× ${summary.rssRatio.toFixed(2).padStart(5)}×`,
    );
  }
  // Where the time goes: each Alki variant once more under onnxruntime's profiler (its own process), against the
  // read bandwidth measured there; llama.cpp's bytes per token are its file less the embedding table's rows.
  console.log('\nwhere the time goes (decode: per step; prefill: the whole prompt):');
  const fmt = (ops, total) =>
    Object.entries(ops)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 4)
      .map(([op, ms]) => `${op} ${ms.toFixed(1)} ms (${((100 * ms) / total).toFixed(0)}%)`)
      .join(', ');
  for (const v of variants) {
    const summary = result.variants[v];
    if (VARIANTS[v].engine !== 'alki') {
      const table = (shape.vocabSize * shape.hiddenSize * (VARIANTS[v].gguf.type === 'Q8_0' ? 34 : 18)) / 32;
      summary.bytesPerToken = files[v].bytes - table;
      console.log(
        `  ${VARIANTS[v].label}: reads ~${mb(summary.bytesPerToken)} MB per token → ${((summary.bytesPerToken * summary.decode) / 1e9).toFixed(1)} GB/s at its decode speed`,
      );
      continue;
    }
    const out = execFileSync(process.execPath, [join(here, 'peer-profile-worker.mjs'), files[v].path, JSON.stringify(run)], {
      encoding: 'utf8',
      maxBuffer: 1 << 20,
    });
    const p = JSON.parse(out.trim().split('\n').pop());
    summary.profile = p;
    summary.bytesPerToken = p.bytesPerToken;
    const d = p.decode;
    console.log(
      `  ${VARIANTS[v].label}: decode step ${d.wallMs.toFixed(1)} ms wall, ${d.modelRunMs.toFixed(1)} in onnxruntime's run, ${d.kernelsMs.toFixed(1)} in kernels ` +
        `(${(d.wallMs - d.kernelsMs).toFixed(1)} ms outside them); KV cache ${p.kvInPlace ? 'updated in place' : 'copied'}\n` +
        `    decode kernels: ${fmt(d.ops, d.kernelsMs)}\n` +
        `    prefill kernels (${p.prefill.kernelsMs.toFixed(0)} ms): ${fmt(p.prefill.ops, p.prefill.kernelsMs)}\n` +
        `    reads ${mb(p.bytesPerToken)} MB per token (MatMulNBits ${mb(p.matMulNBitsBytes)} MB in ${d.ops.MatMulNBits?.toFixed(1)} ms: ` +
        `${(p.matMulNBitsBytes / (d.ops.MatMulNBits ?? NaN) / 1e6).toFixed(1)} GB/s) against ${p.bandwidthGBs.toFixed(1)} GB/s read bandwidth (fp32 GEMV, ${threads} threads): ` +
        `≤ ${((p.bandwidthGBs * 1e9) / p.bytesPerToken).toFixed(1)} tok/s if bandwidth-bound`,
    );
  }
  console.log('\ntarget (issue 15): decode and prefill ≥ 1.2× llama.cpp Q4_0, peak RSS ≤ 1.0×, at Q4_0 quality or better (pnpm bench:q4_0)');
  writeBenchResult('peer', result, { blankLine: false });
} finally {
  if (!keep) rmSync(work, { recursive: true, force: true });
}
