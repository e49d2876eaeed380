import { afterAll, describe, expect, it } from 'vitest';
import { SeededRandom } from '@alki/core';
import { dequantizeBlockwise, gptq, rtn, type BlockwiseQuantized } from '../src/index.js';
import { OrtGemm } from '../src/ort/gemm.js';
import { matmulABt, upperCholeskyOfInverse, type MatMulABt } from '../src/linalg.js';
import { gptqReference } from '../src/reference/gptq-reference.js';

/** Inputs with strongly correlated channels (a few latent factors), as in real activations. */
function correlatedInputs(n: number, K: number, seed: number): Float32Array {
  const rng = new SeededRandom(seed);
  const factors = 4;
  const mix = Array.from({ length: factors * K }, () => rng.normal());
  const x = new Float32Array(n * K);
  for (let t = 0; t < n; t++) {
    const f = Array.from({ length: factors }, () => rng.normal());
    for (let k = 0; k < K; k++) {
      let v = 0.1 * rng.normal();
      for (let j = 0; j < factors; j++) v += f[j] * mix[j * K + k];
      x[t * K + k] = v * (1 + (k % 7));
    }
  }
  return x;
}

/** GPTQ's H = 2XᵀX/n for X [n, K]. */
function hessian(x: Float32Array, n: number, K: number): Float64Array {
  const h = new Float64Array(K * K);
  for (let t = 0; t < n; t++) for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) h[i * K + j] += (2 / n) * x[t * K + i] * x[t * K + j];
  return h;
}

function outputError(x: Float32Array, n: number, K: number, w: Float32Array, wq: Float32Array, N: number): number {
  let e = 0;
  for (let t = 0; t < n; t++)
    for (let o = 0; o < N; o++) {
      let a = 0;
      let b = 0;
      for (let k = 0; k < K; k++) {
        a += x[t * K + k] * w[o * K + k];
        b += x[t * K + k] * wq[o * K + k];
      }
      e += (a - b) ** 2;
    }
  return e;
}

describe('GPTQ core', () => {
  // Panels of 40 split every structured product of the recursion into several (the default, 256, into one at n = 300).
  it.each([undefined, 40])('the upper Cholesky factor of H⁻¹ satisfies UᵀU·H = I (blocked, several blocks; panel %s)', async (panel) => {
    const n = 300;
    const rng = new SeededRandom(2);
    const a = Array.from({ length: n * n }, () => rng.normal());
    const h = new Float64Array(n * n);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) {
        for (let k = 0; k < n; k++) h[i * n + j] += a[i * n + k] * a[j * n + k];
        if (i === j) h[i * n + j] += 0.5;
      }
    // onnxruntime's GEMM needs an output of exactly m × n: so does this one.
    const strict: MatMulABt = (a, m, k, b, n2, out) => {
      if (out && out.length !== m * n2) throw new Error(`output of ${out.length} for ${m} × ${n2}`);
      return matmulABt(a, m, k, b, n2, out);
    };
    const u = (await upperCholeskyOfInverse(h, n, strict, { panel }))!;
    for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) expect(u[i * n + j]).toBe(0);
    // UᵀU·H = I, checked on a sample of entries (float32 GEMM panels: 1e-4).
    const utu = new Float64Array(n * n);
    for (let m = 0; m < n; m++)
      for (let i = 0; i < n; i++) {
        const a = u[m * n + i];
        if (a === 0) continue;
        for (let k = 0; k < n; k++) utu[i * n + k] += a * u[m * n + k];
      }
    let maxErr = 0;
    for (let i = 0; i < n; i += 7)
      for (let j = 0; j < n; j += 5) {
        let s = 0;
        for (let k = 0; k < n; k++) s += utu[i * n + k] * h[k * n + j];
        maxErr = Math.max(maxErr, Math.abs(s - (i === j ? 1 : 0)));
      }
    expect(maxErr).toBeLessThan(1e-4);
  });

  for (const [bits, actOrder] of [
    [4, false],
    [4, true],
    [8, false],
  ] as const) {
    it(`lowers the layer output error ‖XW − XŴ‖ below RTN's on correlated inputs (int${bits}${actOrder ? ', act-order' : ''})`, async () => {
      const n = 512,
        K = 300,
        N = 24;
      const x = correlatedInputs(n, K, 1);
      const rng = new SeededRandom(5);
      const w = new Float32Array(N * K).map(() => rng.normal());
      const h = hessian(x, n, K);
      const opts = { bits, blockSize: 32, symmetric: false } as const;
      const eG = outputError(x, n, K, w, dequantizeBlockwise(await gptq(w, h, N, K, { ...opts, actOrder })), N);
      const eR = outputError(x, n, K, w, dequantizeBlockwise(rtn(w, N, K, opts)), N);
      expect(eG).toBeLessThan(0.8 * eR);
    });
  }

  describe('against Algorithm 1 as the paper states it (gptqReference: float64, full inverse, plain column loop)', () => {
    const n = 256,
      K = 200,
      N = 20;
    const x = correlatedInputs(n, K, 3);
    const rng = new SeededRandom(9);
    const w = new Float32Array(N * K).map(() => rng.normal());
    const h = hessian(x, n, K);
    // Codes of real inputs only: the padding of a last partial block always matches.
    const sameCodes = (a: BlockwiseQuantized, b: BlockwiseQuantized) => {
      const stride = a.nBlocks * a.blockSize;
      let same = 0;
      for (let r = 0; r < N; r++) for (let k = 0; k < K; k++) if (a.q[r * stride + k] === b.q[r * stride + k]) same++;
      return same / (N * K);
    };
    const toKN = (nk: Float32Array) => Float32Array.from({ length: N * K }, (_, i) => nk[(i % N) * K + Math.floor(i / N)]);
    const gemm = new OrtGemm();
    afterAll(() => gemm.release());
    for (const symmetric of [false, true]) {
      it.each([
        ['the defaults (MSE block ranges)', {}],
        ['min/max block ranges', { mseClip: false }],
        ['act-order with static groups', { actOrder: true }],
        ['strips of 7 outputs, sub-blocks of 8, lazy batches of 64', { stripWidth: 7, subBlock: 8, lazyBlock: 64 }],
        ['the column-by-column loop inside one lazy batch', { subBlock: 64, lazyBlock: 64, stripWidth: N }],
        ['the MatMul layout [K, N]', { layout: 'KN' }],
        ["onnxruntime's GEMMs (the pipeline's path), act-order", { ort: true, actOrder: true }],
      ] as const)(`${symmetric ? 'symmetric' : 'asymmetric'}, %s: the same codes up to float32 rounding, the same output error`, async (_, extra) => {
        const o = { bits: 4, blockSize: 32, symmetric, mseClip: true, actOrder: false, ...extra } as const;
        const ref = gptqReference(w, h, N, K, o);
        const input = 'layout' in extra ? toKN(w) : w;
        const fast = 'ort' in extra ? await gptq(input, h, N, K, o, gemm.abt, gemm.update) : await gptq(input, h, N, K, o);
        expect(sameCodes(fast, ref)).toBeGreaterThan(0.99);
        const e = (qw: BlockwiseQuantized) => outputError(x, n, K, w, dequantizeBlockwise(qw), N);
        expect(Math.abs(e(fast) / e(ref) - 1)).toBeLessThan(0.01);
      });
    }

    it('a wrong propagation (lazy-batch updates dropped) is caught by the oracle', async () => {
      const ref = gptqReference(w, h, N, K, { bits: 4, blockSize: 32, symmetric: false });
      const noProp = await gptq(w, h, N, K, { bits: 4, blockSize: 32, symmetric: false, mseClip: false, subBlock: 8 }, undefined, () => {});
      expect(sameCodes(noProp, ref)).toBeLessThan(0.95);
    });

    it('so is act-order against the natural order, and min/max ranges against MSE ranges', async () => {
      const natural = gptqReference(w, h, N, K, { bits: 4, blockSize: 32, symmetric: false, mseClip: true });
      const ordered = await gptq(w, h, N, K, { bits: 4, blockSize: 32, symmetric: false, mseClip: true, actOrder: true });
      const minmax = await gptq(w, h, N, K, { bits: 4, blockSize: 32, symmetric: false, mseClip: false });
      expect(sameCodes(ordered, natural)).toBeLessThan(0.95);
      expect(sameCodes(minmax, natural)).toBeLessThan(0.95);
    });
  });
});
