import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeModel, encodeModel, readDecoderLayout } from '@alki/onnx';
import { GRAPH_FLAVOURS, exportModel, openHfModel, type SyntheticLlamaOptions } from '../src/index.js';
import { llamaReference } from './llama-reference.js';
import { stories260K, tinyLlama } from '../../../tools/fixtures/index.js';
import { cachedStepLogits, decoderLogits } from '../../../tools/fixtures/decoder.js';

const ARCHITECTURES = [
  ['GQA, untied head', { seed: 11, numHeads: 4, numKvHeads: 2 }],
  [
    'multi-query, head_dim override, tied head, biases',
    { seed: 12, numHeads: 4, numKvHeads: 1, headDim: 24, tieWordEmbeddings: true, attentionBias: true, mlpBias: true },
  ],
  [
    'llama3 rope scaling',
    {
      seed: 13,
      ropeTheta: 500000,
      ropeScaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 },
    },
  ],
  ['linear rope scaling', { seed: 14, ropeScaling: { type: 'linear', factor: 4 } }],
  ['dynamic NTK rope scaling beyond max_position_embeddings', { seed: 18, maxPositions: 4, ropeScaling: { type: 'dynamic', factor: 2 } }],
  ['mistral sliding window of 3', { seed: 15, modelType: 'mistral', slidingWindow: 3 }],
  ['qwen2: q/k/v biases, large theta, tied', { seed: 16, modelType: 'qwen2', ropeTheta: 1000000, tieWordEmbeddings: true }],
  [
    'gemma: (1+w) RMSNorm, √H embeddings, GeGLU tanh, head_dim ≠ H/heads, multi-query, tied',
    { seed: 17, modelType: 'gemma', numHeads: 4, numKvHeads: 1, headDim: 32, tieWordEmbeddings: true },
  ],
  [
    'phi: LayerNorm, parallel attention+MLP, partial rotary 0.4 of head_dim 80 (fused), gelu_new, biases everywhere incl. lm_head',
    { seed: 19, modelType: 'phi', numHeads: 2, numKvHeads: 2, hiddenSize: 160, partialRotaryFactor: 0.4 },
  ],
  [
    'phi with head_dim 20 (no GroupQueryAttention)',
    { seed: 23, modelType: 'phi', numHeads: 4, numKvHeads: 4, headDim: 20, hiddenSize: 80, partialRotaryFactor: 0.4 },
  ],
  ['phi with qk_layernorm and GQA', { seed: 20, modelType: 'phi', numHeads: 4, numKvHeads: 2, partialRotaryFactor: 0.5, qkLayernorm: true }],
  ['stablelm: LayerNorm, partial rotary 0.25, q/k/v bias, sequential residual', { seed: 21, modelType: 'stablelm', numHeads: 4, numKvHeads: 4, qkvBias: true }],
  [
    'stablelm-3b shape: 20 rotary dims of 80 (rotary outside GroupQueryAttention)',
    { seed: 24, modelType: 'stablelm', numHeads: 2, numKvHeads: 2, hiddenSize: 160 },
  ],
  [
    'stablelm 2 style: per-head qk_layernorm, parallel residual, GQA',
    { seed: 22, modelType: 'stablelm', numHeads: 4, numKvHeads: 2, qkLayernorm: true, parallelResidual: true },
  ],
] as const;

for (const flavour of GRAPH_FLAVOURS) {
  describe(`decoder export, ${flavour} flavour`, () => {
    for (const [label, opts] of ARCHITECTURES) {
      it(`matches a float64 reference forward (${label}) at every position; greedy tokens agree; KV cache = full recompute`, async () => {
        const m = tinyLlama(opts as SyntheticLlamaOptions);
        const hf = openHfModel(m.dir);
        const { model, scaleGroups } = exportModel(hf, { flavour });
        const ids = [1, 300, 301, 302, 270, 260, 301, 290];
        const logits = await decoderLogits(model, ids);
        const ref = llamaReference(hf, ids);
        const c = hf.config;
        const V = hf.config.vocabSize;
        let maxRel = 0;
        for (let i = 0; i < ref.length; i++) maxRel = Math.max(maxRel, Math.abs(logits[i] - ref[i]) / (1 + Math.abs(ref[i])));
        // float32 graph vs float64 reference: ~1e-6 relative on these sizes.
        expect(maxRel).toBeLessThan(1e-4);
        const argmax = (row: ArrayLike<number>, off: number) => {
          let best = 0;
          for (let i = 1; i < V; i++) if (row[off + i] > row[off + best]) best = i;
          return best;
        };
        for (let p = 0; p < ids.length; p++) expect(argmax(logits, p * V)).toBe(argmax(ref, p * V));
        // Decoding with the KV cache, one token at a time after a 3-token prompt, gives the full pass's logits
        // (not with dynamic NTK past max_position_embeddings: as in HF, cached keys keep the base they were rotated with).
        const steps = c.ropeScaling?.type === 'dynamic' ? [] : await cachedStepLogits(model, ids, 3);
        steps.forEach((row, s) => {
          const p = 2 + s;
          for (let i = 0; i < V; i++) expect(Math.abs(row[i] - logits[p * V + i])).toBeLessThan(1e-4 * (1 + Math.abs(logits[p * V + i])));
        });
        const qkv = model.graph.initializers.some((t) => t.name === 'model.layers.0.self_attn.qkv_proj.weight') ? 1 : 3;
        const expected = c.parallelResidual ? [qkv + (c.mlp === 'gated' ? 2 : 1), 1, 1] : [qkv, 2, 1, 1];
        expect(scaleGroups.filter((g) => g.layer === 0).map((g) => g.linears.length)).toEqual(expected);
        // The window must bite: with 8 tokens and a window of 3, the last position ignores 5 keys.
        if ('slidingWindow' in opts) expect(hf.config.slidingWindow).toBe(3);
        if (flavour === 'ort' && c.headDim % 16 === 0) expect(model.graph.nodes.filter((n) => n.opType === 'GroupQueryAttention')).toHaveLength(c.numLayers);
        m.cleanup();
      });
    }
  });
}

describe('decoder export', () => {
  it.skipIf(!stories260K)('records which linears follow which norm in the model metadata', () => {
    const { model } = exportModel(openHfModel(stories260K!), { flavour: 'portable' });
    const back = decodeModel(encodeModel(model)).model;
    const groups = readDecoderLayout(back)!.scaleGroups;
    expect(groups[0]).toEqual({
      layer: 0,
      norm: 'model.layers.0.input_layernorm.weight',
      linears: ['model.layers.0.self_attn.q_proj.weight', 'model.layers.0.self_attn.k_proj.weight', 'model.layers.0.self_attn.v_proj.weight'],
      // Queries and keys (8 and 4 heads of 8) are not clipped by AWQ.
      unclipped: { 'model.layers.0.self_attn.q_proj.weight': 64, 'model.layers.0.self_attn.k_proj.weight': 32 },
    });
    expect(groups.at(-1)).toEqual({ layer: -1, norm: 'model.norm.weight', linears: ['lm_head.weight'] });
  });

  for (const flavour of GRAPH_FLAVOURS) {
    it.skipIf(!stories260K)(`stories260K (${flavour}) matches run.c logits at the last prompt position within 1e-4`, async () => {
      const ref = JSON.parse(readFileSync(join(stories260K!, 'reference.json'), 'utf8'));
      const hf = openHfModel(stories260K!);
      const logits = await decoderLogits(exportModel(hf, { flavour }).model, ref.prompt_ids);
      const last = logits.subarray(4 * 512, 5 * 512);
      ref.last_prompt_position_logits.forEach((v: number, i: number) => expect(Math.abs(last[i] - v)).toBeLessThan(1e-4));
    });
  }
});
