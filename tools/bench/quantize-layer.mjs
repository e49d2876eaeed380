// pnpm bench (part 2): seconds per decoder layer of AWQ and GPTQ on a TinyLlama-shaped model
// (hidden 2048, intermediate 5632, 32 heads, 4 kv heads, vocab 32000; random weights, 2 layers),
// with RTN as the baseline measured in the same run, and the projection to TinyLlama's 22 layers:
// the first layer (sessions created), 21 × the second (steady state), the head, and the rest
// (export-time copies, MatMulNBits packing) scaled by parameter count.
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { SeededRandom } from '@alki/core';
import { exportModel, openHfModel, writeSyntheticLlama } from '@alki/models';
import { createQuantizer } from '@alki/quantizers';
import { enableGarbageCollection } from '@alki/core/node';
import { TINYLLAMA_SHAPE } from './fixtures.mjs';
import { writeBenchResult } from './results.mjs';

// As the CLI does: the calibrated quantizers' garbage meters need collections (see enableGarbageCollection).
enableGarbageCollection();

// Float32 checkpoint (no dtype), its own seed: the figures in docs/quantization.md were measured on this one.
const shape = { ...TINYLLAMA_SHAPE, numLayers: 2, dtype: undefined, seed: 3 };
const layerParams = (4 * shape.hiddenSize * shape.hiddenSize * (1 + shape.numKvHeads / shape.numHeads)) / 2 + 3 * shape.hiddenSize * shape.intermediateSize;
const headParams = shape.vocabSize * shape.hiddenSize;
// Calibration sizes to run (samples × tokens each), e.g. "8x256,32x256": the per-token slope comes out of two.
const sizes = (process.env.ALKI_BENCH_CALIB ?? '8x256,32x256').split(',').map((c) => c.split('x').map(Number));
const methods = (process.env.ALKI_BENCH_METHODS ?? 'rtn,gptq,awq').split(',');
const work = mkdtempSync(join(tmpdir(), 'alki-qbench-'));
const results = [];
try {
  const dir = join(work, 'model');
  writeSyntheticLlama(dir, shape);
  const hf = openHfModel(dir);
  const rng = new SeededRandom(7);
  for (const [index, [samples, seqLen]] of sizes.entries()) {
    // Timing does not depend on the token values: random ids stand in for calibration text.
    const calibration = {
      samples: Array.from({ length: samples }, () => [1, ...Array.from({ length: seqLen - 1 }, () => 3 + rng.int(shape.vocabSize - 3))]),
      source: 'random token ids (timing only)',
    };
    // RTN does not calibrate: it runs once.
    for (const method of methods.filter((m) => m !== 'rtn' || index === 0)) {
      const { model } = exportModel(hf);
      const marks = [];
      const t0 = performance.now();
      const onProgress = (e) => {
        if (e.step.endsWith('calibrate')) marks[e.done] = performance.now();
      };
      // gptq-plain: without true-sequential passes and float targets (GPTQ's defaults), gptq-seq: without float targets.
      const variant = { 'gptq-plain': { trueSequential: false, floatTargets: false }, 'gptq-seq': { floatTargets: false } }[method] ?? {};
      const { report } = await createQuantizer(method.split('-')[0], { bits: 4, blockSize: 32, onProgress, ...variant }).quantize(model, { calibration });
      const total = (performance.now() - t0) / 1000;
      // RTN's time is all in the rest, which scales with parameters.
      const [first, layer, head] = method === 'rtn' ? [0, 0, 0] : [1, 2, 3].map((k) => (marks[k] - marks[k - 1]) / 1000);
      const rest = total - first - layer - head;
      const projected = first + 21 * layer + head + rest * ((22 * layerParams + headParams) / (2 * layerParams + headParams));
      const calib = method === 'rtn' ? '—' : `${samples}×${seqLen}`;
      results.push({
        method,
        calibration: method === 'rtn' ? null : { samples, seqLen },
        firstLayerSeconds: first,
        secondsPerLayer: layer,
        headSeconds: head,
        otherSeconds: rest,
        totalSeconds: total,
        projected22LayersSeconds: projected,
        layers: report.layers.length,
        label: calib,
      });
      process.stderr.write(`${method} (${calib}): ${total.toFixed(1)} s for 2 layers + head\n`);
    }
  }
  const rows = results.map(
    (r) =>
      `${r.method.padEnd(5)} ${r.label.padStart(7)} ${r.firstLayerSeconds.toFixed(1).padStart(8)} ${r.secondsPerLayer.toFixed(1).padStart(8)} ${r.headSeconds.toFixed(1).padStart(7)} ${r.otherSeconds.toFixed(1).padStart(7)} ${(r.projected22LayersSeconds / 60).toFixed(1).padStart(16)}`,
  );
  console.log(`\nTinyLlama-shaped model ${JSON.stringify(shape)}\ncalibration: random ids, ${availableParallelism()} threads, ${cpus()[0]?.model}\n`);
  console.log(`method  calib  s/first  s/layer  s/head  s/rest  22 layers (min)\n${rows.join('\n')}`);
  // Seconds per calibration token and layer, from the two ends of the sizes run.
  if (sizes.length > 1) {
    const tokens = (s) => s[0] * s[1];
    for (const method of methods.filter((m) => m !== 'rtn')) {
      const [a, b] = [sizes[0], sizes[sizes.length - 1]].map((s) =>
        results.find((r) => r.method === method && r.calibration?.samples === s[0] && r.calibration?.seqLen === s[1]),
      );
      if (a && b)
        console.log(
          `${method}: ${((1000 * (b.secondsPerLayer - a.secondsPerLayer)) / (tokens(sizes[sizes.length - 1]) - tokens(sizes[0]))).toFixed(2)} ms per calibration token and layer`,
        );
    }
  }
  console.log('\ntarget: ≤ 5 min per method for the whole 1.1B model');
  writeBenchResult(
    'quantize-layer',
    { benchmark: 'quantize-layer', shape, machine: { cpu: cpus()[0]?.model, cores: availableParallelism() }, results },
    { blankLine: false },
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
