import { blockParams, mseBlockParams, quantizeValue, rowRanges, TILE, type BlockwiseOptions, type BlockwiseQuantized, type WeightLayout } from './blockwise.js';

/**
 * Round-to-nearest blockwise quantization of a weight given as [N, K] rows
 * (row n = the K inputs of output feature n) or, with `layout` 'KN', in the
 * MatMul layout [K, N]: each block's scale comes from its own range, each
 * value is rounded independently.
 */
export function rtn(w: Float32Array, N: number, K: number, o: BlockwiseOptions, layout: WeightLayout = 'NK'): BlockwiseQuantized {
  const bs = o.blockSize;
  const nBlocks = Math.ceil(K / bs);
  const stride = nBlocks * bs;
  const levels = (1 << o.bits) - 1;
  const q = new Uint8Array(N * stride);
  const scales = new Float32Array(N * nBlocks);
  const zeroPoints = o.symmetric ? undefined : new Uint8Array(N * nBlocks);
  // Element (n, k) of W; the KN layout is walked block row by block row (contiguous reads).
  const [rowStep, colStep] = layout === 'NK' ? [K, 1] : [1, N];
  const lo = new Float32Array(N);
  const hi = new Float32Array(N);
  // With mseClip, each block's searched parameters; mseBlockParams walks rows of contiguous outputs, so the [N, K]
  // layout goes through a block-sized transpose (the MatMul layout is read in place).
  const mse = o.mseClip ? { scale: new Float32Array(N), zero: new Uint8Array(N), block: layout === 'NK' ? new Float32Array(bs * N) : undefined } : undefined;
  for (let b = 0; b < nBlocks; b++) {
    const k0 = b * bs;
    const k1 = Math.min(K, k0 + bs);
    rowRanges(w, k0, k1, (k) => k * colStep, rowStep, N, lo, hi);
    if (mse?.block) {
      for (let k = k0; k < k1; k++) for (let n = 0; n < N; n++) mse.block[(k - k0) * N + n] = w[n * rowStep + k];
      mseBlockParams(mse.block, k0, k1, (k) => (k - k0) * N, N, lo, hi, o.bits, o.symmetric, mse.scale, mse.zero);
    } else if (mse) mseBlockParams(w, k0, k1, (k) => k * N, N, lo, hi, o.bits, o.symmetric, mse.scale, mse.zero);
    for (let n = 0; n < N; n++) {
      const { scale, zero } = mse ? { scale: mse.scale[n], zero: mse.zero[n] } : blockParams(lo[n], hi[n], o.bits, o.symmetric);
      scales[n * nBlocks + b] = scale;
      if (zeroPoints) zeroPoints[n * nBlocks + b] = zero;
      // Padding codes of a last partial block equal the zero point (they multiply zero inputs).
      for (let k = k1; k < k0 + bs; k++) q[n * stride + k] = zero;
    }
    // In tiles of outputs, so that each output's codes of the block stay in one cache line while the block's rows
    // are walked (in the KN layout, a whole row of outputs at a time wrote a page apart per code: 1.8× slower in all).
    for (let t0 = 0; t0 < N; t0 += TILE) {
      const t1 = Math.min(N, t0 + TILE);
      for (let k = k0; k < k1; k++) {
        for (let n = t0; n < t1; n++) {
          const z = zeroPoints ? zeroPoints[n * nBlocks + b] : 1 << (o.bits - 1);
          q[n * stride + k] = quantizeValue(w[n * rowStep + k * colStep], scales[n * nBlocks + b], z, levels);
        }
      }
    }
  }
  return { bits: o.bits, blockSize: bs, N, K, nBlocks, q, scales, zeroPoints };
}
