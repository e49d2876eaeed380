import { blockParams, mseBlockParams, quantizeValue, type BlockwiseOptions, type BlockwiseQuantized } from '../blockwise.js';

/**
 * GPTQ as Algorithm 1 of Frantar et al. (2022) states it, with the paper's symbols and nothing else: the test
 * oracle of the fast {@link gptq} (strips, lazy batches, sub-blocks, onnxruntime GEMMs). W is [N, K] (row n =
 * output n), H = 2XᵀX/n is [K, K]; everything is float64 and O(K³ + N·K²) in plain loops: small shapes only.
 * Block (group) parameters come from the updated weights when a block's first column is reached (min/max, or with
 * `mseClip` the shrink of least squared rounding error); dead inputs (H_kk = 0) are pinned and their weights
 * zeroed. With `actOrder` columns go by decreasing H_kk and blocks stay contiguous in K (static groups).
 */
export function gptqReference(
  w: Float32Array,
  H: Float64Array,
  N: number,
  K: number,
  o: BlockwiseOptions & { percDamp?: number; actOrder?: boolean },
): BlockwiseQuantized {
  const W = Float64Array.from(w);
  const h = Float64Array.from(H);
  for (let k = 0; k < K; k++) {
    if (h[k * K + k] === 0) {
      h[k * K + k] = 1;
      for (let n = 0; n < N; n++) W[n * K + k] = 0;
    }
  }
  let meanDiag = 0;
  for (let k = 0; k < K; k++) meanDiag += h[k * K + k] / K;
  for (let k = 0; k < K; k++) h[k * K + k] += (o.percDamp ?? 0.01) * meanDiag;
  // The processing order: position j quantizes column perm[j]; H and W are read in that order.
  const perm = Array.from({ length: K }, (_, k) => k);
  if (o.actOrder) perm.sort((a, b) => h[b * K + b] - h[a * K + a]);
  const hp = Float64Array.from({ length: K * K }, (_, i) => h[perm[Math.floor(i / K)] * K + perm[i % K]]);
  // H⁻¹ ← Cholesky(H⁻¹)ᵀ: the upper factor U with H⁻¹ = UᵀU.
  const U = upperCholesky(inverse(hp, K), K);
  const bs = o.blockSize;
  const nBlocks = Math.ceil(K / bs);
  const levels = (1 << o.bits) - 1;
  const q = new Uint8Array(N * nBlocks * bs);
  const scales = new Float32Array(N * nBlocks);
  const zeros = new Uint8Array(N * nBlocks);
  /** Block b's scale and zero point per output, from the weights as they are now. */
  const setParams = (b: number) => {
    const k0 = b * bs;
    const k1 = Math.min(K, k0 + bs);
    const lo = new Float32Array(N).fill(Infinity);
    const hi = new Float32Array(N).fill(-Infinity);
    for (let n = 0; n < N; n++) {
      for (let k = k0; k < k1; k++) {
        lo[n] = Math.min(lo[n], W[n * K + k]);
        hi[n] = Math.max(hi[n], W[n * K + k]);
      }
    }
    const sc = new Float32Array(N);
    const zp = new Uint8Array(N);
    if (o.mseClip) {
      // mseBlockParams reads rows of inputs ([k, n]): the block transposed.
      const block = Float32Array.from({ length: (k1 - k0) * N }, (_, i) => W[(i % N) * K + k0 + Math.floor(i / N)]);
      mseBlockParams(block, k0, k1, (k) => (k - k0) * N, N, lo, hi, o.bits, o.symmetric, sc, zp);
    } else {
      for (let n = 0; n < N; n++) ({ scale: sc[n], zero: zp[n] } = blockParams(lo[n], hi[n], o.bits, o.symmetric));
    }
    for (let n = 0; n < N; n++) {
      scales[n * nBlocks + b] = sc[n];
      zeros[n * nBlocks + b] = zp[n];
    }
  };
  // Natural order: a block's parameters when its first column is reached. Act-order: all before any update.
  if (o.actOrder) for (let b = 0; b < nBlocks; b++) setParams(b);
  for (let j = 0; j < K; j++) {
    const col = perm[j];
    const b = Math.floor(col / bs);
    if (!o.actOrder && col % bs === 0) setParams(b);
    for (let n = 0; n < N; n++) {
      // q = quant(w_j); E = (w_j − q) / [H⁻¹]_jj; W_{:, later} −= E·[H⁻¹]_{j, later}
      const s = scales[n * nBlocks + b];
      const z = zeros[n * nBlocks + b];
      const code = quantizeValue(W[n * K + col], s, z, levels);
      q[n * nBlocks * bs + col] = code;
      const e = (W[n * K + col] - (code - z) * s) / U[j * K + j];
      for (let t = j + 1; t < K; t++) W[n * K + perm[t]] -= e * U[j * K + t];
    }
  }
  for (let n = 0; n < N; n++) for (let k = K; k < nBlocks * bs; k++) q[n * nBlocks * bs + k] = zeros[n * nBlocks + nBlocks - 1];
  return { bits: o.bits, blockSize: bs, N, K, nBlocks, q, scales, zeroPoints: o.symmetric ? undefined : zeros };
}

/** A⁻¹ by Gauss–Jordan elimination with partial pivoting. */
function inverse(a: Float64Array, n: number): Float64Array {
  const m = Float64Array.from(a);
  const inv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) inv[i * n + i] = 1;
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r * n + c]) > Math.abs(m[p * n + c])) p = r;
    for (const x of [m, inv]) for (let k = 0; k < n; k++) [x[c * n + k], x[p * n + k]] = [x[p * n + k], x[c * n + k]];
    const d = m[c * n + c];
    for (let k = 0; k < n; k++) {
      m[c * n + k] /= d;
      inv[c * n + k] /= d;
    }
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = m[r * n + c];
      for (let k = 0; k < n; k++) {
        m[r * n + k] -= f * m[c * n + k];
        inv[r * n + k] -= f * inv[c * n + k];
      }
    }
  }
  return inv;
}

/** The upper U with A = UᵀU (torch.linalg.cholesky(A, upper=True)). */
function upperCholesky(a: Float64Array, n: number): Float64Array {
  const u = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    let d = a[i * n + i];
    for (let k = 0; k < i; k++) d -= u[k * n + i] ** 2;
    u[i * n + i] = Math.sqrt(d);
    for (let j = i + 1; j < n; j++) {
      let v = a[i * n + j];
      for (let k = 0; k < i; k++) v -= u[k * n + i] * u[k * n + j];
      u[i * n + j] = v / u[i * n + i];
    }
  }
  return u;
}
