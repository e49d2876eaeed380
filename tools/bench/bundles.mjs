// pnpm bench: fp32 vs RTN int8 vs RTN int4 bundles of a generated model large enough that
// matrix work dominates (hidden 1024, 8 layers, vocab 32000), each measured in its own process,
// all in one run (memory bandwidth on shared VMs drifts: only side-by-side figures compare).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBundle, bundleEvalTarget, readBundle } from '@alki/bundle';
import { evaluateTargets, formatTerminal } from '@alki/eval';
import { writeSyntheticLlama } from '@alki/models';
import { enableGarbageCollection } from '@alki/core/node';
import { writeBenchResult } from './results.mjs';

// As the CLI does: the calibrated quantizers' garbage meters need collections (see enableGarbageCollection).
enableGarbageCollection();

const shape = { hiddenSize: 1024, intermediateSize: 2816, numLayers: 8, numHeads: 16, numKvHeads: 4, vocabSize: 32000, maxPositions: 1024, seed: 1 };
const runs = Number(process.env.ALKI_BENCH_RUNS ?? 5);
const work = mkdtempSync(join(tmpdir(), 'alki-bench-'));
try {
  const modelDir = join(work, 'model');
  writeSyntheticLlama(modelDir, shape);
  const variants = [
    ['fp32', { method: 'none' }],
    ['rtn int8', { method: 'rtn', bits: 8, blockSize: 32 }],
    ['rtn int4', { method: 'rtn', bits: 4, blockSize: 32 }],
  ];
  const targets = [];
  for (const [name, quantize] of variants) {
    const t0 = performance.now();
    const out = join(work, name.replace(' ', '-'));
    await buildBundle({ modelDir, out, sourceId: 'synthetic-llama-1024x8', quantize });
    process.stderr.write(`built ${name} in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    targets.push(bundleEvalTarget(readBundle(out), name));
  }
  const [baseline, ...rest] = targets;
  const report = await evaluateTargets(rest, {
    metrics: ['speed', 'memory', 'size'],
    baseline,
    vocabSize: shape.vocabSize,
    speed: { runs, promptTokens: 128, newTokens: 64 },
    onProgress: (e) => process.stderr.write(`${e.step} ${e.done}/${e.total} ${e.detail ?? ''}\n`),
  });
  console.log(`\nModel: synthetic Llama ${JSON.stringify(shape)}\n`);
  console.log(formatTerminal(report));
  writeBenchResult('bundles', { benchmark: 'bundles', model: shape, report });
} finally {
  rmSync(work, { recursive: true, force: true });
}
