// Prints docs/models.md's "validated models" table from real builds: for each published config in @alki/models'
// VALIDATED_MODELS, a model of exactly that shape and feature set with random bf16 weights is generated on disk and
// built in the default formats (`alki build --bits 8`: block 32, 8-bit head and embedding; `--bits 4`: block 128,
// 8-bit head, 4-bit embedding — rounded by RTN: sizes do not depend on the method);
// the int8 and int4 columns are the bytes of the written onnx/ files, next to estimateModelBytes (`plan`'s
// estimate) for comparison. fp32 is computed (4 bytes per parameter plus the rotary tables): writing 29 GB to
// measure it would tell nothing more. One model at a time, deleted after; needs ~25 GB free for Mistral-7B.
// Run after `pnpm build`: node tools/docs/model-sizes.mjs [model id substring…]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VALIDATED_MODELS, countParameters, parseDecoderConfig, writeSyntheticLlama } from '../../packages/models/dist/index.js';
import { buildBundle, defaultQuantize, estimateModelBytes } from '../../packages/bundle/dist/index.js';

const gb = (b) => `${(b / 1e9).toFixed(2)} GB`;
const only = process.argv.slice(2);
const log = (s) => process.stderr.write(`${s}\n`);

/** writeSyntheticLlama options with a published config's exact dimensions and feature switches. */
function fullOptions(raw) {
  const c = parseDecoderConfig(raw);
  return {
    modelType: c.modelType,
    hiddenSize: c.hiddenSize,
    headDim: raw.head_dim ? c.headDim : undefined,
    intermediateSize: c.intermediateSize,
    numLayers: c.numLayers,
    numHeads: c.numHeads,
    numKvHeads: c.numKvHeads,
    vocabSize: c.vocabSize,
    maxPositions: c.maxPositions,
    ropeTheta: c.ropeTheta,
    tieWordEmbeddings: c.tieWordEmbeddings,
    attentionBias: raw.attention_bias === true,
    mlpBias: raw.mlp_bias === true,
    slidingWindow: c.slidingWindow,
    partialRotaryFactor: raw.partial_rotary_factor,
    qkLayernorm: raw.qk_layernorm === true,
    parallelResidual: raw.use_parallel_residual === true,
    qkvBias: raw.use_qkv_bias === true,
    dtype: 'BF16',
    distribution: 'uniform',
  };
}

const rows = [];
for (const { id, config } of VALIDATED_MODELS) {
  if (only.length && !only.some((s) => id.includes(s))) continue;
  const work = mkdtempSync(join(tmpdir(), 'alki-sizes-'));
  try {
    const c = parseDecoderConfig(config);
    const modelDir = join(work, 'model');
    log(`${id}: generating…`);
    writeSyntheticLlama(modelDir, fullOptions(config));
    const built = {};
    for (const bits of [8, 4]) {
      log(`${id}: building int${bits}…`);
      const t0 = performance.now();
      const { blockSize } = defaultQuantize(bits);
      const r = await buildBundle({ modelDir, out: join(work, `int${bits}`), quantize: { method: 'rtn', bits, blockSize } });
      built[bits] = r.manifest.metrics.modelBytes.value;
      log(`${id}: int${bits} ${gb(built[bits])} in ${((performance.now() - t0) / 1000).toFixed(0)} s (estimate ${gb(estimateModelBytes(c, bits, blockSize))})`);
      rmSync(join(work, `int${bits}`), { recursive: true, force: true });
    }
    rows.push({ id, c, built });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
console.log('| model | type | parameters | fp32 (computed) | int8 (built) | int4 (built) | int4 estimate |');
console.log('|---|---|---:|---:|---:|---:|---:|');
for (const { id, c, built } of rows) {
  console.log(
    `| ${id} | ${c.modelType} | ${(countParameters(c) / 1e9).toFixed(2)} B | ${gb(estimateModelBytes(c, 32))} | ${gb(built[8])} | ${gb(built[4])} | ${gb(estimateModelBytes(c, 4, defaultQuantize(4).blockSize))} |`,
  );
}
