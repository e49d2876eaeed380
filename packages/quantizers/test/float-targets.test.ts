import { afterAll, describe, expect, it } from 'vitest';
import { SeededRandom } from '@alki/core';
import { exportModel, openHfModel } from '@alki/models';
import { transpose } from '@alki/onnx';
import { createQuantizer, type CalibrationData } from '../src/index.js';
import { prepareGptqHessian } from '../src/gptq.js';
import { shiftToFloatTargets } from '../src/calibration/float-targets.js';
import { OrtGemm } from '../src/ort/gemm.js';
import { matmulABt } from '../src/linalg.js';
import { tinyLlama } from '../../../tools/fixtures/index.js';

/** x = A⁻¹b for a small dense A (float64, partial pivoting). */
function solve(A: Float64Array, b: Float64Array, n: number, m: number): Float64Array {
  const a = Float64Array.from(A);
  const x = Float64Array.from(b);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let i = c + 1; i < n; i++) if (Math.abs(a[i * n + c]) > Math.abs(a[p * n + c])) p = i;
    for (let j = 0; j < n; j++) [a[c * n + j], a[p * n + j]] = [a[p * n + j], a[c * n + j]];
    for (let j = 0; j < m; j++) [x[c * m + j], x[p * m + j]] = [x[p * m + j], x[c * m + j]];
    for (let i = 0; i < n; i++) {
      if (i === c) continue;
      const f = a[i * n + c] / a[c * n + c];
      for (let j = 0; j < n; j++) a[i * n + j] -= f * a[c * n + j];
      for (let j = 0; j < m; j++) x[i * m + j] -= f * x[c * m + j];
    }
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) x[i * m + j] /= a[i * n + i];
  return x;
}

describe('GPTQ fitted to the float model (float targets)', () => {
  const gemm = new OrtGemm();
  afterAll(() => gemm.release());

  for (const actOrder of [false, true]) {
    it(`shifts W to W + H⁻¹D·W, the least-squares weights for the float outputs (dampened as GPTQ)${actOrder ? ', in act-order' : ''}`, async () => {
      const rng = new SeededRandom(3);
      const [T, K, N] = [64, 12, 5];
      // X̃ = X + a perturbation (earlier layers' rounding), inputs of unequal scale so that act-order permutes.
      const X = Float64Array.from({ length: T * K }, (_, i) => rng.normal() * (1 + (i % K)));
      const Xq = X.map((v) => v + 0.2 * rng.normal());
      const W = Float32Array.from({ length: K * N }, () => rng.normal());
      // 2/n·X̃ᵀX̃ and 2/n·X̃ᵀX from the inputs transposed ([K, T], A·Bᵀ).
      const Xqt = transpose(Float32Array.from(Xq), T, K);
      const H = matmulABt(Xqt, K, T, Xqt, K).map((v) => (2 / T) * v);
      const C = matmulABt(Xqt, K, T, transpose(Float32Array.from(X), T, K), K).map((v) => (2 / T) * v);
      const D = C.map((c, j) => c - H[j]);
      // The reference: (H + λI)·(W' − W) = D·W, λ = 1% of the mean diagonal.
      let mean = 0;
      for (let k = 0; k < K; k++) mean += H[k * K + k] / K;
      const Hd = Float64Array.from(H);
      for (let k = 0; k < K; k++) Hd[k * K + k] += 0.01 * mean;
      const DW = new Float64Array(K * N);
      for (let a = 0; a < K; a++) for (let n = 0; n < N; n++) for (let b = 0; b < K; b++) DW[a * N + n] += D[a * K + b] * W[b * N + n];
      const delta = solve(Hd, DW, K, N);
      const hessian = await prepareGptqHessian(H, K, { actOrder });
      if (actOrder) expect(hessian.perm).not.toEqual([...hessian.perm].sort((a, b) => a - b));
      const shifted = Float32Array.from(W);
      await shiftToFloatTargets(Float32Array.from(D), hessian, [{ w: shifted, N }], gemm);
      const moved = shifted.reduce((s, v, j) => Math.max(s, Math.abs(v - W[j])), 0);
      expect(moved).toBeGreaterThan(0.01);
      for (let j = 0; j < K * N; j++) expect(shifted[j]).toBeCloseTo(W[j] + delta[j], 3);
    });
  }

  it('a layer left in float advances the float stream with its own weights: the next layer sees equal streams', async () => {
    const m = tinyLlama({ seed: 6 });
    const fresh = () => exportModel(openHfModel(m.dir)).model;
    const rng = new SeededRandom(2);
    const calibration: CalibrationData = {
      samples: Array.from({ length: 4 }, () => [1, ...Array.from({ length: 31 }, () => 3 + rng.int(300))]),
      source: 'random ids',
    };
    const codes = async (floatTargets: boolean) => {
      const { model, report } = await createQuantizer('gptq', { bits: 4, exclude: [/layers\.0\./], floatTargets }).quantize(fresh(), { calibration });
      expect(report).toMatchObject({ floatTargets, trueSequential: true });
      const of = (linear: string) => {
        const node = model.graph.nodes.find((n) => n.opType === 'MatMulNBits' && n.inputs[1].includes('layers.1.') && n.inputs[1].includes(linear))!;
        return model.graph.initializers.find((t) => t.name === node.inputs[1])!.data as Uint8Array;
      };
      return { qkv: of('qkv_proj'), o: of('o_proj') };
    };
    const share = (a: Uint8Array, b: Uint8Array) => a.reduce((s, v, j) => s + (v === b[j] ? 1 : 0), 0) / a.length;
    const [plain, fitted] = [await codes(false), await codes(true)];
    // Layer 0 in float: both streams enter layer 1 equal, so D = 0 and its first linears round as without float targets;
    // o_proj's input comes after the quantized q/k/v, where the float model differs: its weights were shifted.
    expect(share(plain.qkv, fitted.qkv)).toBeGreaterThan(0.99);
    expect(share(plain.o, fitted.o)).toBeLessThan(0.95);
    m.cleanup();
  });
});
