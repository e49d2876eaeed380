import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeModelFile } from '@alki/onnx';
import { GRAPH_FLAVOURS, exportModel, openHfModel, type GraphFlavour } from '@alki/models';
import { DecoderSession, TextStreamer, generate, loadTokenizer, sampleSequences, sampleToken, samplingDefaults, argmax } from '../src/index.js';
import { ortMessage } from '../src/decoder.js';
import { SeededRandom } from '@alki/core';
import { stories260K, tempDir, tinyLlama } from '../../../tools/fixtures/index.js';

function exportTo(modelDir: string, out: string, flavour?: GraphFlavour): string {
  const path = join(out, 'model.onnx');
  writeModelFile(path, exportModel(openHfModel(modelDir), { flavour }).model);
  return path;
}

for (const flavour of GRAPH_FLAVOURS)
  describe.skipIf(!stories260K)(`stories260K fp32 export (${flavour} flavour) reproduces llama2.c run.c (reference.json)`, () => {
    const tmp = tempDir();
    let session: DecoderSession;
    const ref = stories260K ? JSON.parse(readFileSync(join(stories260K, 'reference.json'), 'utf8')) : undefined;
    beforeAll(async () => {
      session = await DecoderSession.load(exportTo(stories260K!, tmp.dir, flavour));
    });
    afterAll(async () => {
      await session?.release();
      tmp.cleanup();
    });

    it('tokenizes every reference prompt to run.c ids', () => {
      const tok = loadTokenizer(stories260K!);
      expect(tok.encode(ref.prompt)).toEqual(ref.prompt_ids);
      for (const c of ref.extra_cases) expect(tok.encode(c.prompt)).toEqual(c.prompt_ids);
      expect(tok.eosTokenIds).toEqual([2]);
      expect(tok.bosTokenId).toBe(1);
    });

    it('matches last-prompt logits within 1e-4 and all greedy ids, for every case', async () => {
      for (const c of [ref, ...ref.extra_cases]) {
        const res = await generate(session, c.prompt_ids, { maxNewTokens: c.n_new_tokens, keepLogits: true });
        expect(res.ids).toEqual(c.greedy_ids);
        const first = res.stepLogits![0];
        let maxDiff = 0;
        for (let i = 0; i < first.length; i++) maxDiff = Math.max(maxDiff, Math.abs(first[i] - c.last_prompt_position_logits[i]));
        // reference.json prints float32 values with 9 digits; a faithful float32 forward agrees to ~1e-5.
        expect(maxDiff).toBeLessThan(1e-4);
        const lastStep = res.stepLogits![c.n_new_tokens - 1];
        c.final_position_logits_first8.forEach((v: number, i: number) => expect(Math.abs(lastStep[i] - v)).toBeLessThan(1e-4));
      }
    });

    it('gives the same logits with KV cache as a full recompute', async () => {
      const all = [...ref.prompt_ids, ...ref.greedy_ids];
      const full = await session.forward([all], session.emptyCache(), 0);
      const cached = await generate(session, ref.prompt_ids, { maxNewTokens: 32, keepLogits: true });
      const V = full.vocabSize;
      let maxDiff = 0;
      cached.stepLogits!.forEach((row, step) => {
        const pos = ref.prompt_ids.length - 1 + step;
        for (let i = 0; i < V; i++) maxDiff = Math.max(maxDiff, Math.abs(row[i] - full.logits[pos * V + i]));
      });
      expect(maxDiff).toBeLessThan(1e-4);
    });

    it('streams the reference continuation as text', async () => {
      const tok = loadTokenizer(stories260K!);
      let text = '';
      const streamer = new TextStreamer(tok, (d) => (text += d), ref.prompt_ids);
      await generate(session, ref.prompt_ids, { maxNewTokens: 32, onToken: (id) => streamer.push(id) });
      expect(text).toBe(ref.greedy_text);
      expect(streamer.text).toBe(ref.greedy_text);
    });
  });

describe('generation on a generated tiny model', () => {
  const model = tinyLlama({ seed: 7, numLayers: 2, hiddenSize: 32, intermediateSize: 64, numHeads: 4, numKvHeads: 1 });
  const tmp = tempDir();
  let session: DecoderSession;
  beforeAll(async () => {
    session = await DecoderSession.load(exportTo(model.dir, tmp.dir));
  });
  afterAll(async () => {
    await session?.release();
    tmp.cleanup();
    model.cleanup();
  });

  it('reads the KV layout from the graph (multi-query: 1 kv head)', () => {
    expect(session.kv.numKvHeads).toBe(1);
    expect(session.kv.headDim).toBe(8);
    expect(session.kv.names).toHaveLength(4);
  });

  it('stops at a stop token and is reproducible with a seed', async () => {
    const a = await generate(session, [1, 300, 301], { maxNewTokens: 20, temperature: 1, seed: 42 });
    const b = await generate(session, [1, 300, 301], { maxNewTokens: 20, temperature: 1, seed: 42 });
    expect(a.ids).toEqual(b.ids);
    const stopAt = a.ids[3];
    const c = await generate(session, [1, 300, 301], { maxNewTokens: 20, temperature: 1, seed: 42, stopTokenIds: [stopAt] });
    expect(c.stopReason).toBe('stop-token');
    expect(c.ids).toEqual(a.ids.slice(0, a.ids.indexOf(stopAt) + 1));
  });

  it('refuses what onnxruntime would choke on: ids outside the vocabulary, an empty or over-long prompt', async () => {
    expect(session.vocabSize).toBeGreaterThan(0);
    await expect(session.forward([[1, session.vocabSize!]], session.emptyCache(1), 0)).rejects.toThrow(
      new RegExp(`token id ${session.vocabSize} is outside the model's vocabulary`),
    );
    await expect(session.forward([[1, -1]], session.emptyCache(1), 0)).rejects.toThrow(/token id -1 is outside/);
    await expect(generate(session, [], {})).rejects.toThrow(/the prompt is empty/);
    await expect(generate(session, [1, 2, 3, 4, 5], { maxPositions: 4 })).rejects.toThrow(/the prompt is 5 tokens long, more than the model's context of 4/);
    await expect(generate(session, [1, 2], { maxNewTokens: 0 })).rejects.toThrow(/whole number ≥ 1, got 0/);
    await expect(DecoderSession.load(join(tmp.dir, 'model.onnx'), { threads: -3 })).rejects.toThrow(/threads must be a whole number from 1 to 1024, got -3/);
  });

  it('turns onnxruntime C++ dumps into the sentence a person can read', () => {
    const dump =
      'Load model from /tmp/x.onnx failed:/onnxruntime_src/onnxruntime/core/graph/model.cc:180 onnxruntime::Model::Model(onnx::ModelProto&&, const PathString&, const IOnnxRuntimeOpSchemaRegistryList*, const onnxruntime::logging::Logger&, const onnxruntime::ModelOptions&) Unsupported model IR version: 0, max supported IR version: 11';
    expect(ortMessage(new Error(dump))).toBe('Load model from /tmp/x.onnx failed: Unsupported model IR version: 0, max supported IR version: 11');
  });

  it('samples the same sequences without the onnxruntime memory arena (how large models are sampled for calibration)', async () => {
    const lean = await DecoderSession.load(join(tmp.dir, 'model.onnx'), { memoryArena: false });
    try {
      const a = await sampleSequences(session, 1, 3, 12, 5, 2);
      expect(await sampleSequences(lean, 1, 3, 12, 5, 2)).toEqual(a);
      expect(await sampleSequences(lean, 1, 3, 12, 6, 2)).not.toEqual(a);
    } finally {
      await lean.release();
    }
  });

  it('batches rows independently', async () => {
    const one = await session.forward([[1, 300, 301]], session.emptyCache(1), 0);
    const two = await session.forward(
      [
        [1, 300, 301],
        [1, 305, 302],
      ],
      session.emptyCache(2),
      0,
    );
    const n = one.logits.length;
    for (let i = 0; i < n; i += 37) expect(two.logits[i]).toBeCloseTo(one.logits[i], 5);
  });
});

describe('sampling', () => {
  const logits = new Float32Array([1, 3, 2, 0.5]);
  it('is greedy at temperature 0', () => {
    expect(sampleToken(logits, 0, 4, samplingDefaults(), new SeededRandom(1))).toBe(1);
    expect(argmax([0, 5, 5])).toBe(1);
  });
  it('top-k 1 is greedy at any temperature; top-k 2 never picks the others', () => {
    const rng = new SeededRandom(3);
    for (let i = 0; i < 50; i++) expect(sampleToken(logits, 0, 4, samplingDefaults({ temperature: 5, topK: 1 }), rng)).toBe(1);
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) seen.add(sampleToken(logits, 0, 4, samplingDefaults({ temperature: 5, topK: 2 }), rng));
    expect([...seen].sort()).toEqual([1, 2]);
  });
  it('top-p keeps the smallest nucleus', () => {
    // softmax(1,3,2,0.5): p(3)≈0.63, p(2)≈0.23 → top-p 0.6 keeps only the best token.
    const rng = new SeededRandom(4);
    for (let i = 0; i < 50; i++) expect(sampleToken(logits, 0, 4, samplingDefaults({ temperature: 1, topP: 0.6 }), rng)).toBe(1);
  });
  it('samples from softmax(logits / T) without filters', () => {
    const rng = new SeededRandom(5);
    const counts = [0, 0, 0, 0];
    const n = 20000;
    for (let i = 0; i < n; i++) counts[sampleToken(logits, 0, 4, samplingDefaults({ temperature: 1 }), rng)]++;
    const e = [...logits].map((v) => Math.exp(v - 3));
    const z = e.reduce((a, b) => a + b, 0);
    // Binomial standard deviation at n = 20000 is ≤ 0.0036: 0.015 is > 4σ.
    for (let t = 0; t < 4; t++) expect(Math.abs(counts[t] / n - e[t] / z)).toBeLessThan(0.015);
  });
  it('top-k and top-p pick what a sort of the whole vocabulary picks', () => {
    // The plain algorithm: sort every token, keep top-k, then the nucleus, draw in sorted order.
    const reference = (l: Float32Array, o: ReturnType<typeof samplingDefaults>, rng: SeededRandom) => {
      const idx = Array.from({ length: l.length }, (_, i) => i).sort((a, b) => l[b] - l[a]);
      const k = o.topK > 0 ? Math.min(o.topK, l.length) : l.length;
      const p = idx.slice(0, k).map((i) => Math.exp((l[i] - l[idx[0]]) / o.temperature));
      const sum = p.reduce((a, b) => a + b, 0);
      let keep = k;
      let cum = 0;
      for (let i = 0; o.topP < 1 && i < k && keep === k; i++) if ((cum += p[i] / sum) >= o.topP) keep = i + 1;
      let r = rng.next() * p.slice(0, keep).reduce((a, b) => a + b, 0);
      for (let i = 0; i < keep; i++) if ((r -= p[i]) <= 0) return idx[i];
      return idx[keep - 1];
    };
    const gen = new SeededRandom(6);
    let differ = 0;
    for (let trial = 0; trial < 300; trial++) {
      const l = Float32Array.from({ length: 1000 }, () => gen.normal() * 3);
      const o = samplingDefaults({ temperature: 0.5 + (trial % 3) * 0.5, topK: [0, 1, 40, 2000][trial % 4], topP: trial % 5 === 0 ? 1 : 0.9 });
      if (o.topK === 0 && o.topP === 1) continue;
      if (sampleToken(l, 0, 1000, o, new SeededRandom(trial)) !== reference(l, o, new SeededRandom(trial))) differ++;
    }
    expect(differ).toBe(0);
  });
  it('rejects invalid options', () => {
    expect(() => samplingDefaults({ temperature: -1 })).toThrow(/temperature/);
    expect(() => samplingDefaults({ topP: 0 })).toThrow(/top-p/);
  });
});

describe('KV cache updated in place (GroupQueryAttention sharing past and present)', () => {
  // head_dim 16: the ort flavour uses GroupQueryAttention (the portable flavour concatenates its cache).
  const model = tinyLlama({ seed: 9, numLayers: 2, hiddenSize: 64, intermediateSize: 96, numHeads: 4, numKvHeads: 2 });
  const tmp = tempDir();
  afterAll(() => {
    tmp.cleanup();
    model.cleanup();
  });

  it('is found in the graph, and gives the logits of the copying cache step by step', async () => {
    const ort = await DecoderSession.load(exportTo(model.dir, tmp.dir, 'ort'));
    const copying = new DecoderSession(ort.session, (await import('onnxruntime-node')).Tensor);
    try {
      expect(ort.kvInPlace).toBe(true);
      expect(copying.kvInPlace).toBe(false);
      const prompt = [1, 40, 41, 42, 43];
      let a = await ort.forward([prompt], ort.emptyCache(1, 9), 0);
      let b = await copying.forward([prompt], copying.emptyCache(1, 9), 0);
      const buffers = a.present;
      expect(buffers[0].dims).toEqual([1, 2, 9, 16]);
      expect(b.present[0].dims).toEqual([1, 2, 5, 16]);
      for (let step = 0; step < 4; step++) {
        expect(Array.from(a.logits)).toEqual(Array.from(b.logits));
        const next = argmax(a.logits, (a.logits.length / a.vocabSize - 1) * a.vocabSize, a.vocabSize);
        [a, b] = [await ort.forward([[next]], a.present, 5 + step), await copying.forward([[next]], b.present, 5 + step)];
        expect(a.present).toBe(buffers); // the same buffers, written in place
      }
      expect(Array.from(a.logits)).toEqual(Array.from(b.logits));
      // Greedy generation through either cache: the same tokens.
      const g = await generate(ort, prompt, { maxNewTokens: 6, temperature: 0 });
      expect((await generate(copying, prompt, { maxNewTokens: 6, temperature: 0 })).ids).toEqual(g.ids);
      // A full buffer grows (by at least 32 positions), keeping what it held: the same logits as the copying cache.
      const small = ort.emptyCache(1, 6);
      const p1 = await ort.forward([prompt], small, 0);
      const p2 = await ort.forward([[7]], p1.present, 5);
      expect(p2.present).toBe(small);
      const p3 = await ort.forward([[8, 9]], p2.present, 6);
      expect(p3.present).not.toBe(small);
      expect(p3.present[0].dims).toEqual([1, 2, 40, 16]);
      const p4 = await ort.forward([[10]], p3.present, 8);
      expect(p4.present).toBe(p3.present);
      const c1 = await copying.forward([prompt], copying.emptyCache(1), 0);
      const c2 = await copying.forward([[7]], c1.present, 5);
      const c3 = await copying.forward([[8, 9]], c2.present, 6);
      const c4 = await copying.forward([[10]], c3.present, 8);
      expect(Array.from(p3.logits)).toEqual(Array.from(c3.logits));
      expect(Array.from(p4.logits)).toEqual(Array.from(c4.logits));
      await expect(ort.forward([[3]], ort.emptyCache(1, 4), 5)).rejects.toThrow(/room for 4 positions, fewer than the 5 said to be past/);
      // A prompt longer than the buffer (batch 2), and a two-token step into a partly used one (batch 1: GroupQueryAttention
      // takes several new tokens after a past only for one sequence): the same logits.
      const rows = [prompt, [1, 50, 51, 52, 53]];
      const q1 = await ort.forward(rows, ort.emptyCache(2, 2), 0);
      expect(q1.present[0].dims).toEqual([2, 2, 37, 16]);
      const r1 = await copying.forward(rows, copying.emptyCache(2), 0);
      expect(Array.from(q1.logits)).toEqual(Array.from(r1.logits));
      const q2 = await ort.forward([[7], [8]], q1.present, 5);
      const r2 = await copying.forward([[7], [8]], r1.present, 5);
      const half = ort.emptyCache(1, 6);
      const h1 = await ort.forward([prompt], half, 0);
      const h2 = await ort.forward([[7, 9]], h1.present, 5);
      const r3 = await copying.forward([[7, 9]], (await copying.forward([prompt], copying.emptyCache(1), 0)).present, 5);
      expect(Array.from(q2.logits)).toEqual(Array.from(r2.logits));
      expect(h2.present).not.toBe(half);
      expect(Array.from(h2.logits)).toEqual(Array.from(r3.logits));
      // copyCache branches from a shared prefix: each branch as if computed alone.
      const base = await ort.forward([prompt], ort.emptyCache(1, 9), 0);
      const branch = ort.copyCache(base.present, 5);
      const [x, y] = [await ort.forward([[7]], base.present, 5), await ort.forward([[8]], branch, 5)];
      expect(Array.from(x.logits)).toEqual(Array.from(c2.logits));
      expect(Array.from(y.logits)).toEqual(Array.from((await copying.forward([[8]], c1.present, 5)).logits));
      // generate() within a context shorter than prompt + new tokens: the copying cache's ids; a longer run grows its buffer.
      const short = await generate(ort, prompt, { maxNewTokens: 10, temperature: 0, maxPositions: 8 });
      expect(short.stopReason).toBe('context-full');
      expect((await generate(copying, prompt, { maxNewTokens: 10, temperature: 0, maxPositions: 8 })).ids).toEqual(short.ids);
      const long = await generate(ort, prompt, { maxNewTokens: 60, temperature: 0 });
      expect((await generate(copying, prompt, { maxNewTokens: 60, temperature: 0 })).ids).toEqual(long.ids);
      // The sampler through either cache (batch of 3, grown buffers): the same sequences.
      expect(await sampleSequences(ort, 1, 3, 50, 4, 3)).toEqual(await sampleSequences(copying, 1, 3, 50, 4, 3));
      // A cache that is not one of this decoder's buffers must hold exactly its past.
      await expect(copying.forward([[3]], ort.emptyCache(1, 9), 2)).rejects.toThrow(/holds 9 positions but 2 were said to be past/);
    } finally {
      await ort.release();
    }
  });

  it('is not used where the cache is concatenated (portable flavour)', async () => {
    mkdirSync(join(tmp.dir, 'portable'));
    const portable = await DecoderSession.load(exportTo(model.dir, join(tmp.dir, 'portable'), 'portable'));
    try {
      expect(portable.kvInPlace).toBe(false);
      expect(portable.emptyCache(1, 9)[0].dims).toEqual([1, 2, 0, 16]);
    } finally {
      await portable.release();
    }
  });
});
