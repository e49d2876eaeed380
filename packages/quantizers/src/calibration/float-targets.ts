import type { GptqHessian } from '../gptq.js';
import type { OrtGemm } from '../ort/gemm.js';

/**
 * Asymmetric calibration (as GPTAQ, Li et al. 2025, "GPTQv2: Efficient Finetuning-Free Quantization for Asymmetric
 * Calibration"): sequential GPTQ fits each linear's rounding to its float weights on the quantized model's inputs X̃,
 * min ‖X̃(Q − W)‖², so the errors of earlier layers pass on uncorrected. Fitting the float model's outputs instead,
 * min ‖X̃Q − XW‖² (X: the float model's own inputs), is the same problem for the least-squares weights
 * W' = W + (X̃ᵀX̃)⁻¹X̃ᵀ(X − X̃)W: GPTQ then rounds W' with X̃'s Hessian. With H = 2X̃ᵀX̃/n dampened as GPTQ does,
 * W' = W + H⁻¹D·W for D = 2/n·X̃ᵀX − H (undampened). This shifts the weights of every linear reading one input.
 *
 * `D` is [K, K] row-major and is overwritten; `U` (upper, H⁻¹ = UᵀU in GPTQ's processing order) is not. Weights are
 * in the MatMul layout [K, N] and change in place.
 */
export async function shiftToFloatTargets(D: Float32Array, hessian: GptqHessian, weights: { w: Float32Array; N: number }[], gemm: OrtGemm): Promise<void> {
  const { K, U, perm } = hessian;
  const identity = perm.every((p, i) => p === i);
  // Y ↦ H⁻¹·Y for Y [K, n]: rows into processing order, Uᵀ(U·Y), rows back.
  const solve = async (Y: Float32Array, n: number): Promise<Float32Array> => {
    let Yp = Y;
    if (!identity) {
      Yp = new Float32Array(K * n);
      for (let a = 0; a < K; a++) Yp.set(Y.subarray(perm[a] * n, (perm[a] + 1) * n), a * n);
    }
    const Z = await gemm.ab(U, K, K, await gemm.ab(U, K, K, Yp, n), n, true);
    if (identity) return Z;
    const out = new Float32Array(K * n);
    for (let a = 0; a < K; a++) out.set(Z.subarray(a * n, (a + 1) * n), perm[a] * n);
    return out;
  };
  const totalN = weights.reduce((s, x) => s + x.N, 0);
  // H⁻¹D once (2K³, then K²N per linear) when the linears together are wider than K, else H⁻¹(D·W) per linear (3K²N).
  const P = K < totalN ? await solve(D, K) : undefined;
  for (const { w, N } of weights) {
    const delta = P ? await gemm.ab(P, K, K, w, N) : await solve(await gemm.ab(D, K, K, w, N), N);
    for (let j = 0; j < w.length; j++) w[j] += delta[j];
  }
}
