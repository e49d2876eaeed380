// pnpm bench:memory — `alki plan`'s memory model (RUN_MEMORY in @alki/bundle) against what `alki run` really holds:
// a TinyLlama-1.1B-shaped model (random weights) as fp32, int8 and int4, a 128-token prompt decoded to a given
// context, each in its own process; prints estimate, measurement and their ratio, writes JSON. The stories260K side
// of the check is a test (packages/bundle/test/plan.test.ts).
// Env: ALKI_BENCH_LAYERS (22), ALKI_BENCH_CONTEXTS (512,2048), ALKI_BENCH_WORK (keep and reuse builds).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBundle, estimateRunMemory, readBundle } from '@alki/bundle';
import { machineInfo, measureIsolated } from '@alki/eval';
import { openHfModel, writeSyntheticLlama } from '@alki/models';
import { enableGarbageCollection } from '@alki/core/node';
import { TINYLLAMA_SHAPE } from './fixtures.mjs';
import { writeBenchResult } from './results.mjs';

// As the CLI does: the calibrated quantizers' garbage meters need collections (see enableGarbageCollection).
enableGarbageCollection();

const shape = TINYLLAMA_SHAPE;
const contexts = (process.env.ALKI_BENCH_CONTEXTS ?? '512,2048').split(',').map(Number);
const keep = process.env.ALKI_BENCH_WORK;
const work = keep ?? mkdtempSync(join(tmpdir(), 'alki-memory-'));
const log = (s) => process.stderr.write(`${s}\n`);
const variants = [
  ['int4', { method: 'rtn', bits: 4, blockSize: 32 }, { method: 'rtn', bits: 4, blockSize: 32, headBits: 8 }],
  ['int8', { method: 'rtn', bits: 8, blockSize: 32 }, { method: 'rtn', bits: 8, blockSize: 32, headBits: 8 }],
  ['fp32', { method: 'none' }, { method: 'none', bits: 32, blockSize: 32, headBits: 32 }],
];
const result = { benchmark: 'memory', machine: machineInfo(), shape, rows: [] };
try {
  const modelDir = join(work, 'tinyllama-shape');
  if (!existsSync(join(modelDir, 'config.json'))) writeSyntheticLlama(modelDir, shape);
  const config = openHfModel(modelDir).config;
  console.log(`machine: ${result.machine.cpu} (${result.machine.features.join(' ')}); TinyLlama-1.1B shape, ${shape.numLayers} layers`);
  console.log('bundle  context   estimate   measured   estimate/measured');
  for (const [name, quantize, choice] of variants) {
    const out = join(work, `tl-${name}`);
    if (!existsSync(join(out, 'alki.json'))) {
      const t0 = performance.now();
      await buildBundle({ modelDir, out, sourceId: `tl-${name}`, quantize });
      log(`built ${name} in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    }
    const b = readBundle(out);
    for (const context of contexts) {
      log(`measuring ${name} at ${context} tokens…`);
      const m = await measureIsolated(b.modelPath, { promptTokens: 128, newTokens: context - 128, runs: 1, warmupRuns: 0, vocabSize: shape.vocabSize });
      const e = estimateRunMemory(config, choice, context);
      const row = { name, context, estimateBytes: e.peakBytes, measuredBytes: m.peakRssBytes, ratio: e.peakBytes / m.peakRssBytes, parts: e };
      result.rows.push(row);
      console.log(
        `${name.padEnd(7)} ${String(context).padStart(7)} ${(e.peakBytes / 1e9).toFixed(2).padStart(8)} GB ${(m.peakRssBytes / 1e9).toFixed(2).padStart(8)} GB ${row.ratio.toFixed(3).padStart(12)}`,
      );
    }
  }
  writeBenchResult('memory', result);
} finally {
  if (!keep) rmSync(work, { recursive: true, force: true });
}
