import { blockParams, blockRange, mseBlockRange, quantizeValue, type BlockwiseOptions } from './blockwise.js';

/** A weight rounded to nearest and already in MatMulNBits' packed layout (see matmul-nbits.ts). */
export interface PackedRtn {
  bits: 2 | 4 | 8;
  blockSize: number;
  N: number;
  K: number;
  nBlocks: number;
  /** [N, nBlocks, blockSize·bits/8], codes low bits first. */
  B: Uint8Array;
  /** [N, nBlocks]. */
  scales: Float32Array;
  /** [N · ceil(nBlocks·bits/8)] packed the same way; undefined when symmetric. */
  zeroPoints?: Uint8Array;
  /** ‖W − Ŵ‖ / ‖W‖; NaN when W holds NaN or ±Inf (the caller reports where: assertFinite). */
  relativeError: number;
  /** ‖W − Ŵ‖² and ‖W‖², from which parts of a weight rounded apart (rtn-pool.ts) give the whole's relative error. */
  squaredError: number;
  squaredNorm: number;
}

/**
 * The fast path of {@link rtn} + {@link matMulNBitsTensors} + {@link relativeErrorOf} for a weight given as
 * checkpoint rows [N, K]: one contiguous pass per row that rounds, packs and measures the error, without the
 * unpacked code array or a transpose. Bit-identical to the three steps it replaces (tested against them); it is
 * what makes RTN of a 1.1B model take seconds rather than a minute.
 */
export function rtnPacked(w: Float32Array, N: number, K: number, o: BlockwiseOptions): PackedRtn {
  const { bits, blockSize: bs, symmetric } = o;
  const nBlocks = Math.ceil(K / bs);
  const blob = (bs * bits) / 8;
  const perByte = 8 / bits;
  const levels = (1 << bits) - 1;
  const mask = levels;
  const B = new Uint8Array(N * nBlocks * blob);
  const scales = new Float32Array(N * nBlocks);
  const zpBytes = Math.ceil((nBlocks * bits) / 8);
  const zeroPoints = symmetric ? undefined : new Uint8Array(N * zpBytes);
  let num = 0;
  let den = 0;

  for (let n = 0; n < N; n++) {
    const row = n * K;
    for (let b = 0; b < nBlocks; b++) {
      const k0 = b * bs;
      const k1 = Math.min(K, k0 + bs);
      const { lo, hi } = blockRange(w, row, k0, k1);
      const { scale, zero } = o.mseClip ? mseBlockRange(w, row, k0, k1, lo, hi, bits, symmetric) : blockParams(lo, hi, bits, symmetric);
      const sf = Math.fround(scale);
      scales[n * nBlocks + b] = sf;
      if (zeroPoints) zeroPoints[n * zpBytes + ((b / perByte) | 0)] |= (zero & mask) << ((b % perByte) * bits);
      const out = (n * nBlocks + b) * blob;
      if (bits === 4 && k1 - k0 === bs) {
        // The common case, unrolled by byte: two codes per byte, no padding.
        for (let i = 0, r = row + k0; i < bs; i += 2, r += 2) {
          const v0 = w[r];
          const v1 = w[r + 1];
          const c0 = quantizeValue(v0, sf, zero, 15);
          const c1 = quantizeValue(v1, sf, zero, 15);
          const d0 = v0 - (c0 - zero) * sf;
          const d1 = v1 - (c1 - zero) * sf;
          num += d0 * d0 + d1 * d1;
          den += v0 * v0 + v1 * v1;
          B[out + (i >> 1)] = c0 | (c1 << 4);
        }
        continue;
      }
      if (bits === 8 && k1 - k0 === bs) {
        for (let i = 0, r = row + k0; i < bs; i++, r++) {
          const v = w[r];
          const c = quantizeValue(v, sf, zero, 255);
          const d = v - (c - zero) * sf;
          num += d * d;
          den += v * v;
          B[out + i] = c;
        }
        continue;
      }
      for (let k = k0; k < k0 + bs; k++) {
        let code = zero;
        if (k < k1) {
          const v = w[row + k];
          code = quantizeValue(v, sf, zero, levels);
          const d = v - (code - zero) * sf;
          num += d * d;
          den += v * v;
        }
        const i = k - k0;
        if (bits === 8) B[out + i] = code;
        else B[out + ((i / perByte) | 0)] |= code << ((i % perByte) * bits);
      }
    }
  }
  return {
    bits,
    blockSize: bs,
    N,
    K,
    nBlocks,
    B,
    scales,
    zeroPoints,
    relativeError: relativeErrorFromSums(num, den),
    squaredError: num,
    squaredNorm: den,
  };
}

/** ‖W − Ŵ‖ / ‖W‖ from the two squared norms; NaN when either is not finite (a NaN or ±Inf weight). */
export function relativeErrorFromSums(num: number, den: number): number {
  return Number.isFinite(den) && Number.isFinite(num) ? Math.sqrt(num / (den || 1)) : NaN;
}
