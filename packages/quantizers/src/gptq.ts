import { AlkiError } from '@alki/core';
import { blockParams, blockRange, quantizeValue, type BlockwiseOptions, type BlockwiseQuantized } from './blockwise.js';
import { upperCholeskyOfInverse } from './linalg.js';

/** GPTQ options (Frantar et al. 2022, "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained Transformers"). */
export interface GptqOptions extends BlockwiseOptions {
  /** Dampening λ as a fraction of the mean Hessian diagonal (default 0.01). */
  percDamp?: number;
  /** Columns per lazy batch update (default 128). */
  lazyBlock?: number;
  /** Process columns in order of decreasing Hessian diagonal ("act-order"). */
  actOrder?: boolean;
}

/**
 * GPTQ of one linear layer, as in the reference gptq.py: for W [N, K] (row n =
 * output n) and H = 2XᵀX/n [K, K] (row-major), quantize W column by column,
 * each time spreading the rounding error over the columns not yet quantized
 * through the upper Cholesky factor of H⁻¹, with lazy batch updates of
 * `lazyBlock` columns. Group (block) parameters are fixed from the updated
 * weights when the first column of a block is reached. With act-order the
 * column order follows the Hessian diagonal, and each block's parameters are
 * still per contiguous K-block (static groups), as MatMulNBits needs.
 */
export function gptq(w: Float32Array, hessian: Float32Array | Float64Array, N: number, K: number, o: GptqOptions): BlockwiseQuantized {
  const bs = o.blockSize;
  const nBlocks = Math.ceil(K / bs);
  const stride = nBlocks * bs;
  const levels = (1 << o.bits) - 1;
  const lazy = o.lazyBlock ?? 128;
  const H = Float64Array.from(hessian);
  const W = Float64Array.from(w);

  // Dead inputs (never active in calibration) carry no information: pin them.
  for (let k = 0; k < K; k++) {
    if (H[k * K + k] === 0) {
      H[k * K + k] = 1;
      for (let n = 0; n < N; n++) W[n * K + k] = 0;
    }
  }
  let meanDiag = 0;
  for (let k = 0; k < K; k++) meanDiag += H[k * K + k];
  const damp = (o.percDamp ?? 0.01) * (meanDiag / K);
  for (let k = 0; k < K; k++) H[k * K + k] += damp;

  // Static groups: scale/zero of a block come from the (updated) weights of that block when first needed.
  const scales = new Float32Array(N * nBlocks);
  const zeros = new Uint8Array(N * nBlocks);
  const haveParams = new Uint8Array(nBlocks);
  const setParams = (blk: number) => {
    const k0 = blk * bs;
    const k1 = Math.min(K, k0 + bs);
    for (let n = 0; n < N; n++) {
      const { lo, hi } = blockRange(W, n * K, k0, k1);
      const { scale, zero } = blockParams(lo, hi, o.bits, o.symmetric);
      scales[n * nBlocks + blk] = scale;
      zeros[n * nBlocks + blk] = zero;
    }
    haveParams[blk] = 1;
  };

  const perm = Array.from({ length: K }, (_, k) => k);
  if (o.actOrder) perm.sort((a, b) => H[b * K + b] - H[a * K + a]);
  // H and W in processing order.
  const Hp = new Float64Array(K * K);
  for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) Hp[i * K + j] = H[perm[i] * K + perm[j]];
  const U = upperCholeskyOfInverse(Hp, K);
  if (!U) throw new AlkiError('NUMERIC', 'GPTQ: the Hessian is not positive definite even after dampening', 'raise the dampening (percDamp), or use more calibration samples');

  const q = new Uint8Array(N * stride);
  const err = new Float64Array(N * lazy);
  for (let i1 = 0; i1 < K; i1 += lazy) {
    const i2 = Math.min(K, i1 + lazy);
    const count = i2 - i1;
    for (let i = 0; i < count; i++) {
      const col = perm[i1 + i];
      const blk = Math.floor(col / bs);
      if (!haveParams[blk]) setParams(blk);
      const d = U[(i1 + i) * K + (i1 + i)];
      for (let n = 0; n < N; n++) {
        const s = scales[n * nBlocks + blk];
        const z = zeros[n * nBlocks + blk];
        const wv = W[n * K + col];
        const code = quantizeValue(wv, s, z, levels);
        q[n * stride + col] = code;
        const e = (wv - (code - z) * s) / d;
        err[n * lazy + i] = e;
        // Spread the error over the rest of this lazy block.
        const urow = (i1 + i) * K;
        const wrow = n * K;
        for (let j = i + 1; j < count; j++) W[wrow + perm[i1 + j]] -= e * U[urow + i1 + j];
      }
    }
    // Lazy batch update of all later columns: W[:, i2:] −= Err · U[i1:i2, i2:].
    if (i2 < K) {
      for (let n = 0; n < N; n++) {
        const wrow = n * K;
        for (let i = 0; i < count; i++) {
          const e = err[n * lazy + i];
          if (e === 0) continue;
          const urow = (i1 + i) * K;
          for (let j = i2; j < K; j++) W[wrow + perm[j]] -= e * U[urow + j];
        }
      }
    }
  }
  // Padding codes of a last partial block equal the zero point (they multiply zero inputs).
  for (let n = 0; n < N; n++) for (let k = K; k < stride; k++) q[n * stride + k] = zeros[n * nBlocks + nBlocks - 1];
  return { bits: o.bits, blockSize: bs, N, K, nBlocks, q, scales, zeroPoints: o.symmetric ? undefined : zeros };
}
