import { blockParams, blockRange, quantizeValue, type BlockwiseOptions, type BlockwiseQuantized } from './blockwise.js';

/**
 * Round-to-nearest blockwise quantization of a weight given as [N, K] rows
 * (row n = the K inputs of output feature n): each block's scale comes from
 * its own range, each value is rounded independently.
 */
export function rtn(w: Float32Array, N: number, K: number, o: BlockwiseOptions): BlockwiseQuantized {
  const nBlocks = Math.ceil(K / o.blockSize);
  const stride = nBlocks * o.blockSize;
  const levels = (1 << o.bits) - 1;
  const q = new Uint8Array(N * stride);
  const scales = new Float32Array(N * nBlocks);
  const zeroPoints = o.symmetric ? undefined : new Uint8Array(N * nBlocks);
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < nBlocks; b++) {
      const k0 = b * o.blockSize;
      const k1 = Math.min(K, k0 + o.blockSize);
      const { lo, hi } = blockRange(w, n * K, k0, k1);
      const { scale, zero } = blockParams(lo, hi, o.bits, o.symmetric);
      scales[n * nBlocks + b] = scale;
      if (zeroPoints) zeroPoints[n * nBlocks + b] = zero;
      for (let k = k0; k < k0 + o.blockSize; k++) {
        q[n * stride + k] = k < k1 ? quantizeValue(w[n * K + k], scale, zero, levels) : zero;
      }
    }
  }
  return { bits: o.bits, blockSize: o.blockSize, N, K, nBlocks, q, scales, zeroPoints };
}
