import { describe, expect, it } from 'vitest';
import { SeededRandom } from '@alki/core';
import { exportModel, openHfModel } from '@alki/models';
import { readDecoderLayout } from '@alki/onnx';
import { applyScale, awqClip, awqSearchScale, canFoldScale, fakeQuantize } from '../src/index.js';
import { jsClipProducts, scaledFakeQuantize } from '../src/awq.js';
import { OrtGemm } from '../src/ort/gemm.js';
import { awqClipReference, awqScaleReference } from '../src/reference/awq-reference.js';
import { matmulABt } from '../src/linalg.js';
import { tinyLlama } from '../../../tools/fixtures/index.js';
import { decoderLogits } from '../../../tools/fixtures/decoder.js';

describe('AWQ core', () => {
  it('reports α = null when no scaling beats s = 1 (weights already on the int4 grid), not the grid’s α = 0', async () => {
    const rng = new SeededRandom(12);
    const n = 32,
      K = 64,
      N = 8;
    const x = new Float32Array(n * K).map(() => rng.normal());
    // Every block holds 0 and 15 steps of 1/8: RTN at s = 1 is exact, so any other s can only lose.
    const w = new Float32Array(N * K).map((_, i) => (i % 32 === 0 ? 0 : i % 32 === 1 ? 15 : rng.int(16)) / 8);
    const xMean = new Float64Array(K).map((_, k) => x.filter((_, i) => i % K === k).reduce((a, v) => a + Math.abs(v), 0) / n);
    const r = await awqSearchScale(x, n, K, xMean, [{ w, N }], { bits: 4, blockSize: 32, symmetric: false });
    expect(r.baseLoss).toBe(0);
    expect(r.alpha).toBeNull();
    expect(Array.from(r.scale).every((v) => v === 1)).toBe(true);
  });

  it('the onnxruntime candidate graph gives the JS candidate loss', async () => {
    const rng = new SeededRandom(6);
    const n = 40,
      K = 96,
      N = 24;
    const x = new Float32Array(n * K).map(() => rng.normal());
    const w = new Float32Array(N * K).map(() => rng.normal());
    const ref = matmulABt(x, n, K, w, N);
    const gemm = new OrtGemm();
    for (const symmetric of [false, true]) {
      const opts = { bits: 4, blockSize: 32, symmetric } as const;
      const loss = await gemm.candidateLoss(w, N, K, x, n, ref, opts);
      for (const seed of [1, 2, 3]) {
        const r = new SeededRandom(seed);
        const sc = new Float32Array(K).map(() => 0.4 + 1.5 * r.next());
        const y = matmulABt(x, n, K, scaledFakeQuantize(w, sc, N, K, opts), N);
        const js = y.reduce((a, v, i) => a + (v - ref[i]) ** 2, 0) / y.length;
        expect(Math.abs((await loss(sc)) - js) / js).toBeLessThan(1e-3);
      }
    }
    await gemm.release();
  });

  it('the fused candidate weights Q(W·s)/s equal quantizing W·s and dividing by s', () => {
    const rng = new SeededRandom(4);
    const N = 5,
      K = 70;
    const w = new Float32Array(N * K).map(() => rng.normal());
    const s = new Float32Array(K).map(() => 0.3 + 2 * rng.next());
    for (const symmetric of [false, true]) {
      const opts = { bits: 4, blockSize: 32, symmetric } as const;
      const ws = w.map((v, i) => v * s[i % K]);
      const expected = fakeQuantize(ws, N, K, opts).map((v, i) => v / s[i % K]);
      const got = scaledFakeQuantize(w, s, N, K, opts);
      for (let i = 0; i < got.length; i++) expect(got[i]).toBeCloseTo(expected[i], 6);
    }
  });

  it('the chosen scales lower the output error versus s = 1 when a few input channels carry large activations', async () => {
    const rng = new SeededRandom(3);
    const n = 256,
      K = 64,
      N = 48;
    const x = new Float32Array(n * K);
    for (let t = 0; t < n; t++) for (let k = 0; k < K; k++) x[t * K + k] = rng.normal() * (k % 16 === 0 ? 20 : 1);
    const w = new Float32Array(N * K).map(() => rng.normal());
    const xMean = new Float64Array(K);
    for (let t = 0; t < n; t++) for (let k = 0; k < K; k++) xMean[k] += Math.abs(x[t * K + k]) / n;
    const opts = { bits: 4, blockSize: 32, symmetric: false } as const;
    const { scale, alpha, loss, baseLoss } = await awqSearchScale(x, n, K, xMean, [{ w, N }], opts);
    expect(alpha).toBeGreaterThan(0);
    expect(loss).toBeLessThan(0.8 * baseLoss);
    // Independent check of the claim: error of Q(W·s)·(X/s) against X·W.
    const ref = matmulABt(x, n, K, w, N);
    const err = (s: Float32Array) => {
      const ws = new Float32Array(N * K);
      for (let r = 0; r < N; r++) for (let k = 0; k < K; k++) ws[r * K + k] = w[r * K + k] * s[k];
      const q = fakeQuantize(ws, N, K, opts);
      for (let r = 0; r < N; r++) for (let k = 0; k < K; k++) q[r * K + k] /= s[k];
      const y = matmulABt(x, n, K, q, N);
      return y.reduce((a, v, i) => a + (v - ref[i]) ** 2, 0);
    };
    expect(err(scale)).toBeLessThan(err(new Float32Array(K).fill(1)));
  });
});

describe('AWQ against its plain reference (awqScaleReference, awqClipReference: every row, output and candidate)', () => {
  it("the scale search picks the reference's α, with its loss", async () => {
    for (const seed of [3, 4, 5]) {
      const rng = new SeededRandom(seed);
      const n = 128,
        K = 64,
        N = 40;
      const x = new Float32Array(n * K).map((_, i) => rng.normal() * ((i % K) % 16 === 0 ? 20 : 1));
      const w = new Float32Array(N * K).map(() => rng.normal());
      const xMean = new Float64Array(K);
      for (let t = 0; t < n; t++) for (let k = 0; k < K; k++) xMean[k] += Math.abs(x[t * K + k]) / n;
      const opts = { bits: 4, blockSize: 32, symmetric: false } as const;
      const lin = [
        { w: w.subarray(0, 24 * K), N: 24 },
        { w: w.subarray(24 * K), N: 16 },
      ];
      const ref = awqScaleReference(x, n, K, lin, opts);
      const fast = await awqSearchScale(x, n, K, xMean, lin, opts);
      expect(ref.alpha).not.toBeNull();
      expect(fast.alpha).toBe(ref.alpha);
      expect(Math.abs(fast.loss / ref.loss - 1)).toBeLessThan(1e-3);
    }
  });

  it('the clipping search (Gram matrices, coarse-to-fine steps) clips as the exhaustive reference does', async () => {
    const rng = new SeededRandom(11);
    const n = 200,
      K = 96,
      N = 16;
    const x = new Float32Array(n * K).map(() => rng.normal());
    const w = new Float32Array(N * K).map(() => rng.normal() * (rng.next() < 0.04 ? 6 : 1));
    const opts = { bits: 4, blockSize: 32, symmetric: false } as const;
    const ref = awqClipReference(w, N, K, x, n, { ...opts, first: 3 });
    const fast = await awqClip(w, N, K, x, n, { ...opts, first: 3 });
    // Per (output, block): the range it was clipped to, read back from the clipped weights.
    const ranges = (v: Float32Array) =>
      Array.from({ length: N * (K / 32) }, (_, i) => {
        const row = v.subarray(Math.floor(i / (K / 32)) * K + (i % (K / 32)) * 32, Math.floor(i / (K / 32)) * K + ((i % (K / 32)) + 1) * 32);
        return `${Math.min(...row)},${Math.max(...row)}`;
      });
    const [rf, rr, r0] = [ranges(fast), ranges(ref), ranges(w)];
    const clippedBlocks = rr.filter((r, i) => r !== r0[i]).length;
    expect(clippedBlocks).toBeGreaterThan(0.3 * (N - 3) * (K / 32));
    for (let i = 0; i < 3 * (K / 32); i++) expect(rf[i]).toBe(r0[i]);
    // Coarse-to-fine can miss a block's best step only where the error is not unimodal in the shrink factor.
    const same = rf.filter((r, i) => r === rr[i]).length;
    expect(same / rf.length).toBeGreaterThan(0.95);
  });
});

describe('AWQ clipping', () => {
  // Heavy-tailed weights: a few large values per block stretch the range of the rest.
  const setup = (seed: number) => {
    const rng = new SeededRandom(seed);
    const n = 200,
      K = 80,
      N = 12;
    const x = new Float32Array(n * K).map(() => rng.normal());
    const w = new Float32Array(N * K).map(() => rng.normal() * (rng.next() < 0.04 ? 6 : 1));
    return { n, K, N, x, w, opts: { bits: 4, blockSize: 32, symmetric: false } as const };
  };

  it('onnxruntime Gram matrices and quadratic forms equal the JS ones', async () => {
    const { n, x } = setup(8);
    const gemm = new OrtGemm();
    const g = await gemm.blockGram(x.subarray(0, n * 64), n, 64, 32);
    const gj = jsClipProducts.blockGram(x.subarray(0, n * 64), n, 64, 32) as Float32Array;
    for (let i = 0; i < g.length; i++) expect(g[i]).toBeCloseTo(gj[i], 2);
    const d = new Float32Array(2 * 5 * 32).map((_, i) => Math.sin(i));
    const e = await gemm.quadratic(d, g, 2, 5, 32);
    const ej = jsClipProducts.quadratic(d, gj, 2, 5, 32) as Float32Array;
    for (let i = 0; i < e.length; i++) expect(Math.abs(e[i] - ej[i]) / ej[i]).toBeLessThan(1e-4);
    await gemm.release();
  });

  it('clipping lowers the block output error of RTN, and leaves the outputs before `first` alone', async () => {
    const { n, K, N, x, w, opts } = setup(9);
    const clipped = await awqClip(w, N, K, x, n, opts);
    const err = (wq: Float32Array) => {
      const ref = matmulABt(x, n, K, w, N);
      const y = matmulABt(x, n, K, fakeQuantize(wq, N, K, opts), N);
      return y.reduce((a, v, i) => a + (v - ref[i]) ** 2, 0);
    };
    expect(clipped.some((v, i) => v !== w[i])).toBe(true);
    expect(err(clipped)).toBeLessThan(err(w));
    const partly = await awqClip(w, N, K, x, n, { ...opts, first: 5 });
    for (let i = 0; i < 5 * K; i++) expect(partly[i]).toBe(w[i]);
    for (let i = 5 * K; i < N * K; i++) expect(partly[i]).toBe(clipped[i]);
  });
});

describe('folding scales into the graph', () => {
  for (const flavour of ['portable', 'ort'] as const)
    it(`leaves the fp32 model logits unchanged (≤ 1e-5 relative), for norm- and linear-fed groups (${flavour})`, async () => {
      const m = tinyLlama({ seed: 21, numHeads: 2, numKvHeads: 2, mlpBias: true });
      const { model } = exportModel(openHfModel(m.dir), { flavour });
      const ids = [1, 300, 301, 302, 303, 290];
      const run = () => decoderLogits(model, ids);
      const before = await run();
      const groups = readDecoderLayout(model)!.scaleGroups;
      const rng = new SeededRandom(9);
      let folded = 0;
      for (const g of groups) {
        if (!canFoldScale(model, g)) continue;
        const K = model.graph.initializers.find((t) => t.name === g.linears[0])!.dims[0];
        applyScale(
          model,
          g,
          new Float32Array(K).map(() => 0.5 + 1.5 * rng.next()),
        );
        folded++;
      }
      // Multi-head attention: v→o folds too (4 groups per layer and the head) — except from a packed q/k/v projection.
      expect(folded).toBe(flavour === 'portable' ? 2 * 4 + 1 : 2 * 3 + 1);
      const after = await run();
      let maxRel = 0;
      for (let i = 0; i < before.length; i++) maxRel = Math.max(maxRel, Math.abs(after[i] - before[i]) / (1 + Math.abs(before[i])));
      expect(maxRel).toBeLessThan(1e-5);
      m.cleanup();
    });
});
