import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeModelFile } from '@alki/onnx';
import { exportModel, openHfModel } from '@alki/models';
import { quantize } from '@alki/quantizers';
import { DecoderSession, loadTokenizer } from '@alki/runtime';
import { evaluateQuality, readEvalText, textWindows, sampledWindows, evaluationWindows, type EvalTarget, evaluateTargets } from '../src/index.js';
import { stories260K, tempDir, tinyStoriesText, tinyLlama } from '../../../tools/fixtures/index.js';

/** Writes stories260K's ONNX export, optionally RTN-quantized, and returns its path. */
function exportVariant(dir: string, name: string, q?: { bits: 4 | 8 }): string {
  const { model } = exportModel(openHfModel(stories260K!));
  if (q) quantize(model, { method: 'rtn', bits: q.bits, blockSize: 32 });
  const path = join(dir, `${name}.onnx`);
  writeModelFile(path, model);
  return path;
}

describe.skipIf(!stories260K || !tinyStoriesText)('alki-ppl-v1 on stories260K and the TinyStories text', () => {
  const tmp = tempDir();
  const paths: Record<string, string> = {};
  beforeAll(() => {
    paths.fp32 = exportVariant(tmp.dir, 'fp32');
    paths.int8 = exportVariant(tmp.dir, 'int8', { bits: 8 });
    paths.int4 = exportVariant(tmp.dir, 'int4', { bits: 4 });
  });
  afterAll(() => tmp.cleanup());

  it('agrees with an independent float64 computation of the same protocol', async () => {
    const tok = loadTokenizer(stories260K!);
    const text = readEvalText(tinyStoriesText!);
    const windows = textWindows(tok, text, 512, 3);
    expect(windows.windows).toHaveLength(3);
    expect(windows.windows[0][0]).toBe(1); // BOS once, at the start of the stream
    expect(windows.windows[1][0]).not.toBe(1);
    const session = await DecoderSession.load(paths.fp32);
    const { results } = await evaluateQuality([session], windows);

    // Reference: the protocol restated from docs/evaluation.md, straight from the model's logits.
    const ids = tok.encode(text);
    let nll = 0;
    let n = 0;
    for (let w = 0; w < 3; w++) {
      const win = ids.slice(w * 512, (w + 1) * 512);
      const out = await session.forward([win], session.emptyCache(1), 0);
      for (let t = 1; t < 512; t++) {
        const row = Array.from(out.logits.subarray((t - 1) * 512, t * 512), Number);
        const m = Math.max(...row);
        const logZ = m + Math.log(row.reduce((s, x) => s + Math.exp(x - m), 0));
        nll += logZ - row[win[t]];
        n++;
      }
    }
    await session.release();
    expect(results[0].scoredTokens).toBe(3 * 511);
    expect(Math.abs(results[0].meanNll - nll / n)).toBeLessThan(1e-9);
    expect(results[0].perplexity).toBeCloseTo(Math.exp(nll / n), 9);
    // The real model is good on its own domain (full text: 3.80).
    expect(results[0].perplexity).toBeGreaterThan(2.5);
    expect(results[0].perplexity).toBeLessThan(5.5);
  });

  it('reports RTN int4 > RTN int8 > fp32 perplexity, with KL and top-1 against fp32', async () => {
    const tok = loadTokenizer(stories260K!);
    const windows = textWindows(tok, readEvalText(tinyStoriesText!), 512, 16);
    const [s32, s8, s4] = await Promise.all([paths.fp32, paths.int8, paths.int4].map((p) => DecoderSession.load(p)));
    const { results, baseline } = await evaluateQuality([s8, s4], windows, { baseline: s32 });
    const [q8, q4] = results;
    expect(q4.perplexity).toBeGreaterThan(q8.perplexity);
    expect(q8.perplexity).toBeGreaterThan(baseline!.perplexity);
    expect(q4.agreement!.meanKl).toBeGreaterThan(q8.agreement!.meanKl);
    expect(q8.agreement!.top1).toBeGreaterThan(0.95);
    expect(q4.agreement!.top1).toBeLessThan(q8.agreement!.top1);
    for (const s of [s32, s8, s4]) await s.release();
  });

  it('measures agreement on text sampled from the baseline when there is no text', async () => {
    const s32 = await DecoderSession.load(paths.fp32);
    const s4 = await DecoderSession.load(paths.int4);
    const a = await sampledWindows(s32, 1, 64, 3, 5);
    const b = await sampledWindows(s32, 1, 64, 3, 5);
    expect(a.windows).toEqual(b.windows);
    expect(a.source).toMatch(/sampled from the baseline/);
    const { results, baseline } = await evaluateQuality([s4], a, { baseline: s32 });
    expect(results[0].agreement!.positions).toBe(3 * 63);
    expect(baseline!.perplexity).toBeLessThan(results[0].perplexity);
    // Without text, --max-windows and --context still decide how many windows and how long (not the 8 × 128 default).
    const asked = await evaluationWindows({ metrics: ['perplexity'], vocabSize: 512, maxWindows: 2, context: 200, maxPositions: 512 }, stories260K!, s32);
    expect(asked.windows.map((w) => w.length)).toEqual([200, 200]);
    expect((await evaluationWindows({ metrics: ['perplexity'], vocabSize: 512, maxPositions: 512 }, stories260K!, s32)).windows.map((w) => w.length)).toEqual(
      Array(8).fill(128),
    );
    await s32.release();
    await s4.release();
  });
});

describe('bad evaluation input', () => {
  const tmp = tempDir();
  const model = tinyLlama();
  afterAll(() => {
    tmp.cleanup();
    model.cleanup();
  });

  it('a missing, an empty and a too-short text each give a clear error', async () => {
    const { writeFileSync } = await import('node:fs');
    expect(() => readEvalText(join(tmp.dir, 'nope.txt'))).toThrow(/evaluation text not found/);
    writeFileSync(join(tmp.dir, 'empty.txt'), '  \n');
    expect(() => readEvalText(join(tmp.dir, 'empty.txt'))).toThrow(/is empty/);
    writeFileSync(join(tmp.dir, 'short.txt'), 'the cat and the dog');
    const tok = loadTokenizer(model.dir);
    expect(() => textWindows(tok, readEvalText(join(tmp.dir, 'short.txt')), 128)).toThrow(/fewer than one window of 128[\s\S]*/);
  });

  it('perplexity without text or baseline says that Alki ships no text', async () => {
    await expect(evaluationWindows({ metrics: ['perplexity'], vocabSize: 10 }, model.dir)).rejects.toThrow(/Alki ships none/);
  });

  it('measures speed and memory in a child process', async () => {
    const path = join(tmp.dir, 'm.onnx');
    writeModelFile(path, exportModel(openHfModel(model.dir)).model);
    const target: EvalTarget = { name: 'fp32', dir: model.dir, modelPath: path, method: 'none', bits: 32, modelBytes: 1, bundleBytes: 1 };
    const report = await evaluateTargets([target], { metrics: ['speed', 'memory'], vocabSize: 300, speed: { runs: 2, promptTokens: 16, newTokens: 4 } });
    const e = report.evaluations[0];
    expect(e.speed!.runs).toBe(2);
    expect(e.speed!.decodeTokensPerSecond.median).toBeGreaterThan(0);
    expect(e.speed!.decodeTokensPerSecond.min).toBeLessThanOrEqual(e.speed!.decodeTokensPerSecond.max);
    expect(e.memory!.peakRssBytes).toBeGreaterThan(e.memory!.startRssBytes);
    expect(e.memory!.peakRssBytes).not.toBe(process.resourceUsage().maxRSS * 1024);
  });

  it("a child's peak memory is its own, not its parent's (Linux carries maxrss across fork and exec)", async () => {
    const path = join(tmp.dir, 'm.onnx');
    writeModelFile(path, exportModel(openHfModel(model.dir)).model);
    const ballast = Buffer.alloc(768 * 2 ** 20, 1); // resident in this process while the child runs
    const target: EvalTarget = { name: 'fp32', dir: model.dir, modelPath: path, method: 'none', bits: 32, modelBytes: 1, bundleBytes: 1 };
    const report = await evaluateTargets([target], { metrics: ['memory'], vocabSize: 300, speed: { promptTokens: 16, newTokens: 4 } });
    expect(ballast[ballast.length - 1]).toBe(1);
    expect(report.evaluations[0].memory!.peakRssBytes).toBeLessThan(512 * 2 ** 20);
  });
});
