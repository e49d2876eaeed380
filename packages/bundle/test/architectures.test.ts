import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DecoderSession, generate } from '@alki/runtime';
import type { SyntheticLlamaOptions } from '@alki/models';
import { buildBundle, verifyBundle } from '../src/index.js';
import { tempDir, tinyLlama } from '../../../tools/fixtures/index.js';

const work = tempDir('alki-arch-');
afterAll(() => work.cleanup());

const ARCHS: [string, SyntheticLlamaOptions][] = [
  ['llama', { modelType: 'llama', numHeads: 4, numKvHeads: 2, ropeScaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 32 } }],
  ['mistral', { modelType: 'mistral', numHeads: 4, numKvHeads: 2, slidingWindow: 5 }],
  ['qwen2', { modelType: 'qwen2', numHeads: 4, numKvHeads: 2, ropeTheta: 1000000, tieWordEmbeddings: true }],
  ['gemma', { modelType: 'gemma', numHeads: 4, numKvHeads: 1, headDim: 32, tieWordEmbeddings: true }],
];

describe('every supported architecture through the whole build pipeline', () => {
  for (const [arch, opts] of ARCHS) {
    it(`${arch}: RTN int4 bundle verifies, and KV-cache decoding equals a full recompute`, async () => {
      const m = tinyLlama({ seed: 31, ...opts });
      const out = join(work.dir, arch);
      const { manifest } = await buildBundle({ modelDir: m.dir, out, quantize: { method: 'rtn', bits: 4 } });
      expect(manifest.source.modelType).toBe(arch);
      expect(verifyBundle(out).ok).toBe(true);
      const session = await DecoderSession.load(join(out, manifest.model.path));
      const prompt = [1, 300, 301, 302, 303, 304, 305];
      const cached = await generate(session, prompt, { maxNewTokens: 6, keepLogits: true });
      const full = await session.forward([[...prompt, ...cached.ids]], session.emptyCache(), 0);
      const V = full.vocabSize;
      let maxDiff = 0;
      cached.stepLogits!.forEach((row, step) => {
        const pos = prompt.length - 1 + step;
        for (let i = 0; i < V; i++) maxDiff = Math.max(maxDiff, Math.abs(row[i] - full.logits[pos * V + i]) / (1 + Math.abs(full.logits[pos * V + i])));
      });
      // Past the sliding window (mistral, window 5) the cache path must still mask the same keys.
      expect(maxDiff).toBeLessThan(1e-4);
      await session.release();
      m.cleanup();
    });
  }
});
