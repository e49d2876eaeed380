import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeModel, encodeModel } from '@alki/onnx';
import { SCALE_GROUPS_KEY, exportModel, openHfModel, type ScaleGroup, type SyntheticLlamaOptions } from '../src/index.js';
import { llamaReference } from './llama-reference.js';
import { stories260K, tinyLlama } from '../../../tools/fixtures/index.js';
import { decoderLogits } from '../../../tools/fixtures/decoder.js';

describe('Llama export', () => {
  for (const [label, opts] of [
    ['GQA, untied head', { seed: 11, numHeads: 4, numKvHeads: 2 }],
    ['multi-query, head_dim override, tied head, biases', { seed: 12, numHeads: 4, numKvHeads: 1, headDim: 24, tieWordEmbeddings: true, attentionBias: true, mlpBias: true }],
    ['llama3 rope scaling', { seed: 13, ropeTheta: 500000, ropeScaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 } }],
    ['linear rope scaling', { seed: 14, ropeScaling: { type: 'linear', factor: 4 } }],
    ['dynamic NTK rope scaling beyond max_position_embeddings', { seed: 18, maxPositions: 4, ropeScaling: { type: 'dynamic', factor: 2 } }],
    ['mistral sliding window of 3', { seed: 15, modelType: 'mistral', slidingWindow: 3 }],
    ['qwen2: q/k/v biases, large theta, tied', { seed: 16, modelType: 'qwen2', ropeTheta: 1000000, tieWordEmbeddings: true }],
    ['gemma: (1+w) RMSNorm, √H embeddings, GeGLU tanh, head_dim ≠ H/heads, multi-query, tied', { seed: 17, modelType: 'gemma', numHeads: 4, numKvHeads: 1, headDim: 32, tieWordEmbeddings: true }],
  ] as const) {
    it(`matches a float64 reference forward (${label}) at every position`, async () => {
      const m = tinyLlama(opts as SyntheticLlamaOptions);
      const hf = openHfModel(m.dir);
      const { model, scaleGroups } = exportModel(hf);
      const ids = [1, 300, 301, 302, 270, 260, 301, 290];
      const logits = await decoderLogits(model, ids);
      const ref = llamaReference(hf, ids);
      let maxRel = 0;
      for (let i = 0; i < ref.length; i++) maxRel = Math.max(maxRel, Math.abs(logits[i] - ref[i]) / (1 + Math.abs(ref[i])));
      // float32 graph vs float64 reference: ~1e-6 relative on these sizes.
      expect(maxRel).toBeLessThan(1e-4);
      expect(scaleGroups.filter((g) => g.layer === 0).map((g) => g.linears.length)).toEqual([3, 1, 2, 1]);
      // The window must bite: with 8 tokens and a window of 3, the last position ignores 5 keys.
      if ('slidingWindow' in opts) expect(hf.config.slidingWindow).toBe(3);
      m.cleanup();
    });
  }

  it.skipIf(!stories260K)('records which linears follow which norm in the model metadata', () => {
    const { model } = exportModel(openHfModel(stories260K!));
    const back = decodeModel(encodeModel(model)).model;
    const groups: ScaleGroup[] = JSON.parse(back.metadata[SCALE_GROUPS_KEY]);
    expect(groups[0]).toEqual({ layer: 0, norm: 'model.layers.0.input_layernorm.weight', linears: ['model.layers.0.self_attn.q_proj.weight', 'model.layers.0.self_attn.k_proj.weight', 'model.layers.0.self_attn.v_proj.weight'] });
    expect(groups.at(-1)).toEqual({ layer: -1, norm: 'model.norm.weight', linears: ['lm_head.weight'] });
  });

  it.skipIf(!stories260K)('stories260K matches run.c logits at the last prompt position within 1e-4', async () => {
    const ref = JSON.parse(readFileSync(join(stories260K!, 'reference.json'), 'utf8'));
    const hf = openHfModel(stories260K!);
    const logits = await decoderLogits(exportModel(hf).model, ref.prompt_ids);
    const last = logits.subarray(4 * 512, 5 * 512);
    ref.last_prompt_position_logits.forEach((v: number, i: number) => expect(Math.abs(last[i] - v)).toBeLessThan(1e-4));
  });
});
