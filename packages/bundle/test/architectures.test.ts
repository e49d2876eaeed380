import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DecoderSession, generate } from '@alki/runtime';
import { VALIDATED_MODELS, parseDecoderConfig, type DecoderConfig, type SyntheticLlamaOptions } from '@alki/models';
import { buildBundle, defaultQuantize, estimateModelBytes, verifyBundle } from '../src/index.js';
import { readModelFile } from '@alki/onnx';
import { tempDir, tinyLlama } from '../../../tools/fixtures/index.js';

const work = tempDir('alki-arch-');
afterAll(() => work.cleanup());

const ARCHS: [string, SyntheticLlamaOptions][] = [
  [
    'llama',
    {
      modelType: 'llama',
      numHeads: 4,
      numKvHeads: 2,
      ropeScaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 32 },
    },
  ],
  ['mistral', { modelType: 'mistral', numHeads: 4, numKvHeads: 2, slidingWindow: 5 }],
  ['qwen2', { modelType: 'qwen2', numHeads: 4, numKvHeads: 2, ropeTheta: 1000000, tieWordEmbeddings: true }],
  ['gemma', { modelType: 'gemma', numHeads: 4, numKvHeads: 1, headDim: 32, tieWordEmbeddings: true }],
  ['phi', { modelType: 'phi', numHeads: 2, numKvHeads: 2, partialRotaryFactor: 0.5 }],
  ['stablelm', { modelType: 'stablelm', numHeads: 2, numKvHeads: 2, qkLayernorm: true, parallelResidual: true, qkvBias: true }],
];

/** Small-dimension options for a model with the same feature switches as a real config. */
function smallModelOptions(raw: Record<string, unknown>): SyntheticLlamaOptions {
  const c = parseDecoderConfig(raw);
  const ratio = c.numHeads / c.numKvHeads;
  const kv = c.numKvHeads === 1 ? 1 : 2;
  const heads = kv * Math.min(ratio, 4);
  // The real head_dim: the same rotary dims, and the same attention path in the ort flavour (fused or not).
  return {
    modelType: c.modelType,
    hiddenSize: raw.head_dim ? 48 : heads * c.headDim,
    headDim: raw.head_dim ? c.headDim : undefined,
    intermediateSize: 96,
    numLayers: 2,
    numHeads: heads,
    numKvHeads: kv,
    ropeTheta: c.ropeTheta,
    tieWordEmbeddings: c.tieWordEmbeddings,
    attentionBias: raw.attention_bias === true,
    mlpBias: raw.mlp_bias === true,
    slidingWindow: c.slidingWindow ? 5 : undefined,
    partialRotaryFactor: raw.partial_rotary_factor as number | undefined,
    qkLayernorm: raw.qk_layernorm === true,
    parallelResidual: raw.use_parallel_residual === true,
    qkvBias: raw.use_qkv_bias === true,
  };
}

/**
 * Greedy-decodes `newTokens` after a fixed prompt with the KV cache and returns the largest relative difference of
 * each step's logits from one full pass over prompt + generated tokens.
 */
async function cacheVsFullPass(modelPath: string, newTokens: number): Promise<number> {
  const session = await DecoderSession.load(modelPath);
  const prompt = [1, 300, 301, 302, 303, 304, 305];
  const cached = await generate(session, prompt, { maxNewTokens: newTokens, keepLogits: true });
  const full = await session.forward([[...prompt, ...cached.ids]], session.emptyCache(), 0);
  await session.release();
  const V = full.vocabSize;
  let maxDiff = 0;
  cached.stepLogits!.forEach((row, step) => {
    const pos = prompt.length - 1 + step;
    for (let i = 0; i < V; i++) maxDiff = Math.max(maxDiff, Math.abs(row[i] - full.logits[pos * V + i]) / (1 + Math.abs(full.logits[pos * V + i])));
  });
  return maxDiff;
}

/** The switches that decide the graph's structure (not its size). */
const switches = (c: DecoderConfig) => ({
  modelType: c.modelType,
  norm: c.norm,
  qkvBias: c.qkvBias,
  oBias: c.oBias,
  mlpBias: c.mlpBias,
  headBias: c.headBias,
  mlp: c.mlp,
  rotaryDim: c.rotaryDim,
  headDim: c.headDim,
  parallelResidual: c.parallelResidual,
  qkNorm: c.qkNorm,
  activation: c.activation,
  normPlusOne: c.normPlusOne,
  scaleEmbeddings: c.scaleEmbeddings,
  tied: c.tieWordEmbeddings,
  multiQuery: c.numKvHeads === 1,
  grouped: c.numKvHeads < c.numHeads,
  window: !!c.slidingWindow,
});

// accuracyLevel 0 (float activations): the KV-cache check is about the graph, and int8 activations differ between
// onnxruntime's one-row and many-row kernels by more than its 1e-4.
describe('every supported architecture through the whole build pipeline', () => {
  for (const [arch, opts] of ARCHS) {
    it(`${arch}: RTN int4 bundle verifies, and KV-cache decoding equals a full recompute`, async () => {
      const m = tinyLlama({ seed: 31, ...opts });
      const out = join(work.dir, arch);
      const { manifest } = await buildBundle({ modelDir: m.dir, out, quantize: { method: 'rtn', bits: 4, accuracyLevel: 0 } });
      expect(manifest.source.modelType).toBe(arch);
      expect(verifyBundle(out).ok).toBe(true);
      // Past the sliding window (mistral, window 5) the cache path must still mask the same keys.
      expect(await cacheVsFullPass(join(out, manifest.model.path), 6)).toBeLessThan(1e-4);
      m.cleanup();
    });
  }
});

describe("the validated seed models: their real configs' feature switches through the whole build pipeline", () => {
  for (const { id, config } of VALIDATED_MODELS) {
    it(`${id}: a small random model with the same switches builds the default int4 bundle (GPTQ, ort), verifies and decodes with the KV cache like a full pass`, async () => {
      const opts = smallModelOptions(config);
      const m = tinyLlama({ seed: 41, ...opts });
      const small = parseDecoderConfig(JSON.parse(readFileSync(join(m.dir, 'config.json'), 'utf8')));
      expect(switches(small)).toEqual(switches(parseDecoderConfig(config)));
      const out = join(work.dir, id.replace('/', '--'));
      // What `alki build --bits 4` makes (GPTQ at its default block), calibrated quickly on text sampled from the model.
      const { blockSize, ...defaults } = defaultQuantize(4);
      const { manifest } = await buildBundle({
        modelDir: m.dir,
        out,
        quantize: { ...defaults, blockSize, accuracyLevel: 0 },
        calibration: { quick: true },
      });
      expect(manifest.runtime.flavour).toBe('ort');
      expect(manifest.quantization).toMatchObject({ method: 'gptq', groupSize: blockSize });
      expect(verifyBundle(out).ok).toBe(true);
      // The size estimate behind docs/models.md's table agrees with the weights actually written.
      const written = readModelFile(join(out, manifest.model.path)).graph.initializers.reduce((sum, t) => sum + t.data.byteLength, 0);
      expect(Math.abs(estimateModelBytes(small, 4, blockSize) - written) / written).toBeLessThan(0.01);
      expect(await cacheVsFullPass(join(out, manifest.model.path), 4)).toBeLessThan(1e-4);
      m.cleanup();
    });
  }
});
