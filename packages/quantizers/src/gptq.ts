import { AlkiError } from '@alki/core';
import { blockParams, blockRange, quantizeValue, type BlockwiseOptions, type BlockwiseQuantized } from './blockwise.js';
import { matmulABt, upperCholeskyOfInverse, type MatMulABt } from './linalg.js';

/** GPTQ options (Frantar et al. 2022, "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained Transformers"). */
export interface GptqOptions extends BlockwiseOptions {
  /** Dampening λ as a fraction of the mean Hessian diagonal (default 0.01). */
  percDamp?: number;
  /** Columns per lazy batch update (default 128, as in the paper). */
  lazyBlock?: number;
  /** Process columns in order of decreasing Hessian diagonal ("act-order"). */
  actOrder?: boolean;
}

/**
 * GPTQ of one linear layer, as in the reference gptq.py: for W [N, K] (row n =
 * output n) and H = 2XᵀX/n [K, K] (row-major), quantize W column by column,
 * each time spreading the rounding error over the columns not yet quantized
 * through the upper Cholesky factor of H⁻¹, with lazy batch updates of
 * `lazyBlock` columns (one GEMM each). Group (block) parameters are fixed from
 * the updated weights when the first column of a block is reached. With
 * act-order the column order follows the Hessian diagonal, and each block's
 * parameters stay per contiguous K-block (static groups), as MatMulNBits needs.
 * `gemm` computes A·Bᵀ: onnxruntime's in the pipeline, JS by default.
 */
/**
 * The part of GPTQ that depends only on the Hessian: dampening, dead inputs,
 * the column order, and U = chol(H⁻¹) upper. Linears that read the same input
 * (q/k/v, gate/up) share one.
 */
export interface GptqHessian {
  K: number;
  perm: number[];
  pos: Int32Array;
  dead: Uint8Array;
  U: Float64Array;
}

export async function prepareGptqHessian(hessian: Float32Array | Float64Array, K: number, o: Pick<GptqOptions, 'percDamp' | 'actOrder'> = {}, gemm: MatMulABt = matmulABt): Promise<GptqHessian> {
  const H = Float64Array.from(hessian);
  const dead = new Uint8Array(K);
  // Dead inputs (never active in calibration) carry no information: pin them.
  for (let k = 0; k < K; k++) {
    if (H[k * K + k] === 0) {
      H[k * K + k] = 1;
      dead[k] = 1;
    }
  }
  let meanDiag = 0;
  for (let k = 0; k < K; k++) meanDiag += H[k * K + k];
  const damp = (o.percDamp ?? 0.01) * (meanDiag / K);
  for (let k = 0; k < K; k++) H[k * K + k] += damp;
  // Processing order: position j handles input column perm[j].
  const perm = Array.from({ length: K }, (_, k) => k);
  if (o.actOrder) perm.sort((a, b) => H[b * K + b] - H[a * K + a]);
  const pos = new Int32Array(K);
  perm.forEach((col, j) => (pos[col] = j));
  let Hp = H;
  if (o.actOrder) {
    Hp = new Float64Array(K * K);
    for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) Hp[i * K + j] = H[perm[i] * K + perm[j]];
  }
  const U = await upperCholeskyOfInverse(Hp, K, gemm);
  if (!U) throw new AlkiError('NUMERIC', 'GPTQ: the Hessian is not positive definite even after dampening', 'raise the dampening (percDamp), or use more calibration samples');
  return { K, perm, pos, dead, U };
}

export async function gptq(
  w: Float32Array,
  hessian: Float32Array | Float64Array | GptqHessian,
  N: number,
  K: number,
  o: GptqOptions & { /** `w` is given as [K, N] (the MatMul layout) instead of [N, K]. */ inputMajor?: boolean },
  gemm: MatMulABt = matmulABt,
  update: GemmUpdate = jsGemmUpdate,
): Promise<BlockwiseQuantized> {
  const bs = o.blockSize;
  const nBlocks = Math.ceil(K / bs);
  const stride = nBlocks * bs;
  const levels = (1 << o.bits) - 1;
  const lazy = o.lazyBlock ?? 128;
  const { perm, pos, dead, U } = 'U' in hessian ? hessian : await prepareGptqHessian(hessian, K, o, gemm);

  // The weights not yet quantized, [K − i1, N] in processing order: row j is input column perm[i1 + j].
  // Keeping them as rows makes each lazy batch update one GEMM on a contiguous tail (no copies).
  let tail: Float32Array = new Float32Array(K * N);
  if (o.inputMajor) {
    for (let j = 0; j < K; j++) if (!dead[perm[j]]) tail.set(w.subarray(perm[j] * N, (perm[j] + 1) * N), j * N);
  } else {
    for (let n = 0; n < N; n++) for (let j = 0; j < K; j++) tail[j * N + n] = dead[perm[j]] ? 0 : w[n * K + perm[j]];
  }

  // Static groups: a block's scale/zero come from its current (updated) weights when first needed.
  const scales = new Float32Array(N * nBlocks);
  const zeros = new Uint8Array(N * nBlocks);
  const haveParams = new Uint8Array(nBlocks);
  const values = new Float32Array(bs);
  const q = new Uint8Array(N * stride);
  for (let i1 = 0; i1 < K; i1 += lazy) {
    const i2 = Math.min(K, i1 + lazy);
    const count = i2 - i1;
    const err = new Float32Array(count * N);
    for (let i = 0; i < count; i++) {
      const j = i1 + i;
      const col = perm[j];
      const blk = Math.floor(col / bs);
      if (!haveParams[blk]) {
        const k0 = blk * bs;
        const k1 = Math.min(K, k0 + bs);
        for (let n = 0; n < N; n++) {
          for (let k = k0; k < k1; k++) values[k - k0] = tail[(pos[k] - i1) * N + n];
          const { lo, hi } = blockRange(values, 0, 0, k1 - k0);
          const { scale, zero } = blockParams(lo, hi, o.bits, o.symmetric);
          scales[n * nBlocks + blk] = scale;
          zeros[n * nBlocks + blk] = zero;
        }
        haveParams[blk] = 1;
      }
      const d = U[j * K + j];
      const row = i * N;
      for (let n = 0; n < N; n++) {
        const s = scales[n * nBlocks + blk];
        const z = zeros[n * nBlocks + blk];
        const wv = tail[row + n];
        const code = quantizeValue(wv, s, z, levels);
        q[n * stride + col] = code;
        err[row + n] = (wv - (code - z) * s) / d;
      }
      // Spread the error over the rest of this lazy block.
      for (let t = i + 1; t < count; t++) {
        const u = U[j * K + i1 + t];
        if (u === 0) continue;
        const trow = t * N;
        for (let n = 0; n < N; n++) tail[trow + n] -= err[row + n] * u;
      }
    }
    // Lazy batch update of all later columns: W[i2:] −= U[i1:i2, i2:]ᵀ · Err.
    const rest = K - i2;
    if (rest > 0) {
      const ut = new Float32Array(rest * count);
      for (let i = 0; i < count; i++) for (let t = 0; t < rest; t++) ut[t * count + i] = U[(i1 + i) * K + i2 + t];
      tail = await update(ut, rest, count, err, N, tail.subarray(count * N));
    }
  }
  // Padding codes of a last partial block equal the zero point (they multiply zero inputs).
  for (let n = 0; n < N; n++) for (let k = K; k < stride; k++) q[n * stride + k] = zeros[n * nBlocks + nBlocks - 1];
  return { bits: o.bits, blockSize: bs, N, K, nBlocks, q, scales, zeroPoints: o.symmetric ? undefined : zeros };
}

/** C − A·B for A [m, k], B [k, n], C [m, n]: GPTQ's lazy batch update (onnxruntime's Gemm in the pipeline). */
export type GemmUpdate = (a: Float32Array, m: number, k: number, b: Float32Array, n: number, c: Float32Array) => Float32Array | Promise<Float32Array>;

function jsGemmUpdate(a: Float32Array, m: number, k: number, b: Float32Array, n: number, c: Float32Array): Float32Array {
  const out = Float32Array.from(c);
  for (let i = 0; i < m; i++) for (let t = 0; t < k; t++) {
    const v = a[i * k + t];
    if (v === 0) continue;
    for (let j = 0; j < n; j++) out[i * n + j] -= v * b[t * n + j];
  }
  return out;
}
