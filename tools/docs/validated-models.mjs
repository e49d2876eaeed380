// Prints the "validated models" table from @alki/models' VALIDATED_MODELS (the published configs) as estimates
// parameters, and fp32 / int8 / int4 ONNX weight sizes as Alki writes them (estimateModelBytes, checked against
// real bundles by packages/bundle/test/architectures.test.ts). Run after `pnpm build`: node tools/docs/validated-models.mjs — docs/models.md shows real builds instead: tools/docs/model-sizes.mjs.
import { VALIDATED_MODELS, countParameters, parseDecoderConfig } from '../../packages/models/dist/index.js';
import { defaultQuantize, estimateModelBytes } from '../../packages/bundle/dist/index.js';

const gb = (b) => `${(b / 1e9).toFixed(2)} GB`;
const features = (c) => {
  const f = [];
  f.push(c.norm === 'layer' ? 'LayerNorm' : c.gemmaNorm ? 'RMSNorm (1+w)' : 'RMSNorm');
  if (c.numKvHeads === 1) f.push('multi-query');
  else if (c.numKvHeads < c.numHeads) f.push(`GQA ${c.numHeads}/${c.numKvHeads}`);
  else f.push('MHA');
  if (c.headDim !== c.hiddenSize / c.numHeads) f.push(`head_dim ${c.headDim}`);
  f.push(c.rotaryDim < c.headDim ? `partial rotary ${c.rotaryDim}/${c.headDim}` : `rotary θ=${c.ropeTheta}`);
  if (c.ropeScaling) f.push(`rope_scaling ${c.ropeScaling.type}`);
  if (c.qkvBias) f.push('q/k/v bias');
  if (c.oBias || c.mlpBias || c.headBias) f.push('biases on every linear');
  if (c.mlp === 'fc') f.push('fc1→GELU(tanh)→fc2');
  else f.push(c.activation === 'silu' ? 'SwiGLU' : 'GeGLU (tanh)');
  if (c.parallelResidual) f.push('parallel attention+MLP');
  if (c.qkNorm) f.push(`q/k LayerNorm (${c.qkNorm})`);
  if (c.slidingWindow) f.push(`sliding window ${c.slidingWindow}`);
  if (c.gemmaNorm) f.push('√H embeddings');
  f.push(c.tieWordEmbeddings ? 'tied head' : 'untied head');
  return f.join(', ');
};
console.log('| model | type | parameters | fp32 | int8 | int4 | features |');
console.log('|---|---|---:|---:|---:|---:|---|');
for (const { id, config } of VALIDATED_MODELS) {
  const c = parseDecoderConfig(config);
  console.log(
    `| ${id} | ${c.modelType} | ${(countParameters(c) / 1e9).toFixed(2)} B | ${gb(estimateModelBytes(c, 32))} | ${gb(estimateModelBytes(c, 8))} | ${gb(estimateModelBytes(c, 4, defaultQuantize(4).blockSize))} | ${features(c)} |`,
  );
}
