// pnpm bench:gptq — how much of RTN's perplexity increase the calibrated methods remove, at every block size Alki
// ships, on the real stories260K (alki-ppl-v1, the first 100 TinyStories windows). Calibration is the default source
// (sampled from an int4 copy of the model, 32 × 512 tokens) with seeds 0, 1, 2: the seed-to-seed spread is as large
// as many differences between variants, so each calibrated row is the mean of three builds.
// Env: ALKI_BENCH_BLOCKS (comma list, default 16,32,64,128,256), ALKI_BENCH_SEEDS (default 0,1,2),
// ALKI_BENCH_WINDOWS (default 100), ALKI_BENCH_VARIANTS (comma list of keys, default all but gptq-seq and gptq-awq),
// ALKI_BENCH_SAMPLES (calibration samples, default the build's 32),
// ALKI_BENCH_WORK (keep and reuse bundles).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBundle, bundleEvalTarget, readBundle } from '@alki/bundle';
import { evaluateTargets, machineInfo } from '@alki/eval';
import { enableGarbageCollection } from '@alki/core/node';
import { fixture } from './fixtures.mjs';
import { writeBenchResult } from './results.mjs';

// As the CLI does: the calibrated quantizers' garbage meters need collections (see enableGarbageCollection).
enableGarbageCollection();

const list = (v, d) => (v ?? d).split(',').map(Number);
const blocks = list(process.env.ALKI_BENCH_BLOCKS, '16,32,64,128,256');
const seeds = list(process.env.ALKI_BENCH_SEEDS, '0,1,2');
const windows = Number(process.env.ALKI_BENCH_WINDOWS ?? 100);
const samples = process.env.ALKI_BENCH_SAMPLES ? Number(process.env.ALKI_BENCH_SAMPLES) : undefined;
const work = process.env.ALKI_BENCH_WORK ?? mkdtempSync(join(tmpdir(), 'alki-gptq-quality-'));
const stories = fixture('stories260K');
const text = fixture('text/tinystories-valid.txt');
if (!stories || !text) {
  console.log('skipped: needs ../shared/fixtures (stories260K and the TinyStories text)');
  process.exit(0);
}

const VARIANTS = [
  { key: 'rtn', label: 'RTN (default ranges)', quantize: { method: 'rtn' } },
  { key: 'rtn-minmax', label: 'RTN, min/max ranges', quantize: { method: 'rtn', mseClip: false } },
  { key: 'awq', label: 'AWQ', quantize: { method: 'awq' }, seeded: true },
  {
    key: 'gptq-plain',
    label: 'GPTQ, plain (--no-true-sequential --no-float-targets)',
    quantize: { method: 'gptq', trueSequential: false, floatTargets: false },
    seeded: true,
  },
  { key: 'gptq-seq', label: 'GPTQ, true-sequential only', quantize: { method: 'gptq', floatTargets: false }, seeded: true },
  { key: 'gptq', label: 'GPTQ (default: true-sequential, float targets)', quantize: { method: 'gptq' }, seeded: true },
  { key: 'gptq-awq', label: "GPTQ on AWQ's scales (--awq-scales)", quantize: { method: 'gptq', awqScales: true }, seeded: true },
];

const chosen = (process.env.ALKI_BENCH_VARIANTS ?? 'rtn,rtn-minmax,awq,gptq-plain,gptq').split(',');
const variants = VARIANTS.filter((v) => chosen.includes(v.key));

async function build(name, quantize, calibration) {
  const out = join(work, name);
  if (!existsSync(join(out, 'alki.json'))) await buildBundle({ modelDir: stories, out, sourceId: name, quantize, overwrite: true, quiet: true, calibration });
  return readBundle(out);
}

const result = { benchmark: 'gptq-quality', machine: machineInfo(), windows, seeds, blocks, samples: samples ?? 32, rows: [] };
try {
  console.log(`machine: ${result.machine.cpu} (${result.machine.features.join(' ')})`);
  const fp32 = await build('fp32', { method: 'none' });
  const targets = [];
  for (const bs of blocks)
    for (const v of variants)
      for (const seed of v.seeded ? seeds : [undefined]) {
        const name = `b${bs}-${v.key}${seed === undefined ? '' : `-s${seed}`}`;
        process.stderr.write(`building ${name}…\n`);
        const t0 = performance.now();
        const b = await build(name, { ...v.quantize, bits: 4, blockSize: bs }, seed === undefined ? undefined : { seed, samples });
        targets.push({ bs, v, seed, target: bundleEvalTarget(b, name), seconds: (performance.now() - t0) / 1000 });
      }
  const report = await evaluateTargets(
    targets.map((t) => t.target),
    { metrics: ['perplexity'], baseline: bundleEvalTarget(fp32, 'fp32'), textPath: text, maxWindows: windows, maxPositions: 512, vocabSize: 512 },
  );
  const base = report.baseline.quality.perplexity;
  const inc = new Map(report.evaluations.map((e) => [e.target.name, e.quality.perplexity / base - 1]));
  const pct = (x) => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(2)}%`;
  console.log(
    `\nstories260K int4, alki-ppl-v1 on the first ${windows} TinyStories windows; fp32 ${base.toFixed(4)}; calibration sampled (seeds ${seeds.join(', ')})`,
  );
  console.log('block  variant                                                 per seed                        mean    cut vs RTN default / min-max');
  for (const bs of blocks) {
    const rtn = inc.get(`b${bs}-rtn`);
    const minmax = inc.get(`b${bs}-rtn-minmax`);
    for (const v of variants) {
      const names = targets.filter((t) => t.bs === bs && t.v === v).map((t) => t.target.name);
      const values = names.map((n) => inc.get(n));
      const mean = values.reduce((a, b) => a + b, 0) / values.length;
      const cut = v.seeded && rtn !== undefined && minmax !== undefined ? [1 - mean / rtn, 1 - mean / minmax] : undefined;
      result.rows.push({ blockSize: bs, variant: v.key, label: v.label, increases: values, mean, cutVsRtnDefault: cut?.[0], cutVsRtnMinMax: cut?.[1] });
      console.log(
        `${String(bs).padStart(5)}  ${v.label.padEnd(55)} ${(v.seeded ? values.map(pct).join(' ') : '').padEnd(30)} ${pct(mean).padStart(7)}` +
          (cut ? `   ${(100 * cut[0]).toFixed(0)}% / ${(100 * cut[1]).toFixed(0)}%` : ''),
      );
    }
  }
  result.fp32 = base;
  writeBenchResult('gptq-quality', result);
} finally {
  if (!process.env.ALKI_BENCH_WORK) rmSync(work, { recursive: true, force: true });
}
