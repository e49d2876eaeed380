// pnpm bench:q4_0 — llama.cpp Q4_0's quality against Alki's int4 bundles on the real stories260K, with Alki's own
// perplexity (alki-ppl-v1, the first 100 TinyStories windows): Q4_0's exact rounding (ggml's quantize_row_q4_0_ref,
// fp16 scales) applied to every decoder weight of the checkpoint, the result exported as an fp32 bundle. The tied
// embedding/output table gets what llama-quantize gives it for a Q4_0 file: Q6_K, which falls back to Q8_0 for rows
// of 64 values (the ablation "embed Q4_0" rounds it to Q4_0 as well). llama.cpp itself cannot write Q4_0 for this
// model (down_proj rows hold 172 values, not a multiple of 32): the last block is rounded as if padded with zeros.
// Alki's side: the bundle `alki build <model> --bits 4` makes (the defaults: GPTQ block 128), RTN and the other methods.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBundle, bundleEvalTarget, defaultQuantize, readBundle } from '@alki/bundle';
import { evaluateTargets, machineInfo } from '@alki/eval';
import { fakeQuantizeGgml, openHfModel, writeSafetensors } from '@alki/models';
import { fixture } from './fixtures.mjs';
import { enableGarbageCollection } from '@alki/core/node';
import { writeBenchResult } from './results.mjs';

// As the CLI does: the calibrated quantizers' garbage meters need collections (see enableGarbageCollection).
enableGarbageCollection();

const windows = Number(process.env.ALKI_BENCH_WINDOWS ?? 100);
const work = process.env.ALKI_BENCH_WORK ?? mkdtempSync(join(tmpdir(), 'alki-q4_0-'));
const result = { benchmark: 'q4_0-quality', machine: machineInfo(), windows, rows: [] };
const stories = fixture('stories260K');
const text = fixture('text/tinystories-valid.txt');
if (!stories || !text) {
  console.log('skipped: needs ../shared/fixtures (stories260K and the TinyStories text)');
  process.exit(0);
}

const DEFAULT_INT4 = defaultQuantize(4);

/** A copy of the checkpoint with each weight rounded by `typeOf(name)` (undefined: left in float). */
function fakeQuantizedCopy(name, typeOf) {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  const hf = openHfModel(stories);
  const tensors = {};
  for (const n of hf.weights.names()) {
    const { shape, data } = hf.weights.get(n);
    const type = shape.length === 2 ? typeOf(n) : undefined;
    tensors[n] = { dtype: 'F32', shape, data: type ? fakeQuantizeGgml(data, shape[0], shape[1], type) : data };
  }
  writeSafetensors(join(dir, 'model.safetensors'), tensors);
  for (const f of readdirSync(stories)) if (f.endsWith('.json') && f !== 'reference.json') copyFileSync(join(stories, f), join(dir, f));
  return dir;
}

async function bundle(name, modelDir, quantize, extra = {}) {
  const out = join(work, `bundle-${name}`);
  if (!existsSync(join(out, 'alki.json'))) await buildBundle({ modelDir, out, sourceId: name, quantize, overwrite: true, ...extra });
  return readBundle(out);
}

try {
  console.log(`machine: ${result.machine.cpu} (${result.machine.features.join(' ')})`);
  const embed = (n) => n === 'model.embed_tokens.weight';
  const q4 = fakeQuantizedCopy('q4_0', (n) => (embed(n) ? 'Q8_0' : 'Q4_0'));
  const q4all = fakeQuantizedCopy('q4_0-embed-q4_0', () => 'Q4_0');
  const q8 = fakeQuantizedCopy('q8_0', () => 'Q8_0');
  const fp32 = await bundle('fp32', stories, { method: 'none' });
  const rows = [
    ['llama.cpp Q4_0 (embed/output Q8_0)', await bundle('q4_0', q4, { method: 'none' })],
    ['llama.cpp Q4_0 (embed/output Q4_0 too)', await bundle('q4_0-all', q4all, { method: 'none' })],
    ['llama.cpp Q8_0', await bundle('q8_0', q8, { method: 'none' })],
    // What `alki build <model> --bits 4` makes: GPTQ block 128 (the full recipe on a model this small; the quick one
    // from 250M parameters up, the next row).
    ['alki --bits 4 (defaults: GPTQ b128, head 8)', await bundle('alki-default', stories, DEFAULT_INT4)],
    ['alki --bits 4, the quick recipe (models ≥ 250M)', await bundle('alki-default-quick', stories, DEFAULT_INT4, { calibration: { quick: true } })],
    ['alki --quantize rtn (b32, MSE ranges, head 8)', await bundle('alki-rtn', stories, { method: 'rtn', bits: 4 })],
    ['alki --bits 4 --no-mse-clip (min/max ranges)', await bundle('alki-default-minmax', stories, { method: 'rtn', bits: 4, mseClip: false })],
    ['alki RTN int4 b128 (MSE ranges)', await bundle('alki-rtn-b128', stories, { method: 'rtn', bits: 4, blockSize: 128 })],
    ['alki RTN int4 b128, min/max ranges', await bundle('alki-rtn-b128-minmax', stories, { method: 'rtn', bits: 4, blockSize: 128, mseClip: false })],
    ['alki GPTQ int4 b32 (MSE ranges)', await bundle('alki-gptq', stories, { method: 'gptq', bits: 4, blockSize: 32 })],
    ['alki GPTQ int4 b32, min/max ranges', await bundle('alki-gptq-minmax', stories, { method: 'gptq', bits: 4, blockSize: 32, mseClip: false })],
    ['alki GPTQ int4 b128', await bundle('alki-gptq-b128', stories, { method: 'gptq', bits: 4, blockSize: 128 })],
    ['alki AWQ int4 b32', await bundle('alki-awq', stories, { method: 'awq', bits: 4, blockSize: 32 })],
    ['alki RTN int4 b32 symmetric (MSE ranges)', await bundle('alki-rtn-sym', stories, { method: 'rtn', bits: 4, symmetric: true })],
  ];
  const report = await evaluateTargets(
    rows.map(([name, b]) => bundleEvalTarget(b, name)),
    { metrics: ['perplexity'], baseline: bundleEvalTarget(fp32, 'fp32'), textPath: text, maxWindows: windows, maxPositions: 512, vocabSize: 512 },
  );
  const base = report.baseline.quality.perplexity;
  console.log(`\nstories260K, alki-ppl-v1 on the first ${windows} TinyStories windows; fp32 ${base.toFixed(4)}\n`);
  for (const e of report.evaluations) {
    const ppl = e.quality.perplexity;
    result.rows.push({ name: e.target.name, perplexity: ppl, increase: ppl / base - 1 });
    console.log(`${e.target.name.padEnd(52)} ${ppl.toFixed(4)}  ${(100 * (ppl / base - 1)).toFixed(2).padStart(6)}%`);
  }
  result.fp32 = base;
  writeBenchResult('q4_0-quality', result);
} finally {
  if (!process.env.ALKI_BENCH_WORK) rmSync(work, { recursive: true, force: true });
}
