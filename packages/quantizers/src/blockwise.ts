/**
 * Blockwise quantization parameters along K: every output column n of a
 * weight is cut into blocks of `blockSize` consecutive inputs, each with its
 * own scale (and zero point). A last partial block is padded with zeros.
 */
export interface BlockwiseQuantized {
  bits: number;
  blockSize: number;
  /** Rows (output features). */
  N: number;
  /** Inputs (reduction dimension). */
  K: number;
  nBlocks: number;
  /** Unsigned codes, [N, nBlocks * blockSize] (padding codes equal the zero point). */
  q: Uint8Array;
  /** [N, nBlocks]. */
  scales: Float32Array;
  /** [N, nBlocks] unsigned zero points; undefined for symmetric (implicit 2^(bits−1)). */
  zeroPoints?: Uint8Array;
}

/**
 * How a weight's values are laid out: 'NK' (row n = output n, as PyTorch's nn.Linear and the papers) or 'KN'
 * (row k = input k, as ONNX MatMul's B and the export's initializers).
 */
export type WeightLayout = 'NK' | 'KN';

/** Options shared by the blockwise weight quantizers. */
export interface BlockwiseOptions {
  bits: 2 | 4 | 8;
  blockSize: number;
  /** Each block's range by the least squared error of its rounding ({@link mseBlockParams}) instead of min/max. */
  mseClip?: boolean;
  /** true: signed codes around the implicit zero point 2^(bits−1); false: explicit zero points. */
  symmetric: boolean;
}

const VELTKAMP_11 = 2 ** 42 + 1;

/**
 * `x` rounded to a float16 value: to 11 significant bits (Veltkamp's split: three flops) in float16's normal range,
 * to a multiple of 2⁻²⁴ below it (float16's subnormals: a block of values that small loses its precision in the
 * scale, not its codes), unchanged from 65520 on (such a tensor keeps float32 scales: halfScales). Every block scale
 * goes through it, so that the scales are float16 values: stored as float16 on disk (graph/half-scales.ts) they are
 * exact, and the codes were chosen for the very scale the kernel applies.
 */
export function halfPrecision(x: number): number {
  const a = Math.abs(x);
  if (a < 2 ** -14) return Math.round(x * 2 ** 24) / 2 ** 24;
  // From 65520 on (and NaN) the nearest 11-bit value is 65536 or more: not a float16.
  if (!(a < 65520)) return x;
  const t = VELTKAMP_11 * x;
  return t - (t - x);
}

/**
 * Scale and zero point of one block of values [lo, hi] (already clipped):
 * asymmetric maps [min(lo,0), max(hi,0)] onto 0..2^b−1 (zero stays exact);
 * symmetric maps the value of largest magnitude onto −2^(b−1), using all
 * 2^b levels (llama.cpp's Q4_0 rule), so the scale may be negative.
 */
export function blockParams(lo: number, hi: number, bits: number, symmetric: boolean): { scale: number; zero: number } {
  const levels = (1 << bits) - 1;
  if (symmetric) {
    const m = Math.abs(lo) > Math.abs(hi) ? lo : hi;
    const scale = halfPrecision(m / -(1 << (bits - 1)));
    return { scale: scale === 0 ? 1 : scale, zero: 1 << (bits - 1) };
  }
  const min = Math.min(lo, 0);
  const max = Math.max(hi, 0);
  const scale = halfPrecision((max - min) / levels);
  if (scale === 0) return { scale: 1, zero: 0 };
  const zero = Math.min(levels, Math.max(0, Math.round(-min / scale)));
  return { scale, zero };
}

/** Smallest and largest of w[offset + k0 .. offset + k1). */
export function blockRange(w: ArrayLike<number>, offset: number, k0: number, k1: number): { lo: number; hi: number } {
  let lo = Infinity;
  let hi = -Infinity;
  for (let k = offset + k0; k < offset + k1; k++) {
    const v = w[k];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return { lo, hi };
}

/**
 * Per output n < N, the smallest and largest value over the rows k ∈ [k0, k1) of a block, where element (n, k)
 * sits at rowStart(k) + n·nStep; into lo/hi. Walks each row once (contiguous for the MatMul layout).
 */
export function rowRanges(
  w: ArrayLike<number>,
  k0: number,
  k1: number,
  rowStart: (k: number) => number,
  nStep: number,
  N: number,
  lo: Float32Array,
  hi: Float32Array,
): void {
  lo.fill(Infinity, 0, N);
  hi.fill(-Infinity, 0, N);
  for (let k = k0; k < k1; k++) {
    const r = rowStart(k);
    for (let n = 0; n < N; n++) {
      const v = w[r + n * nStep];
      if (v < lo[n]) lo[n] = v;
      if (v > hi[n]) hi[n] = v;
    }
  }
}

/** Range shrink factors tried by {@link mseBlockParams} (1 = the plain min/max range). */
export const MSE_SHRINK = [1, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7];

/**
 * Per output n < N, the block parameters whose rounding of the block's own values has the least squared error
 * among the ranges [α·lo, α·hi], α in {@link MSE_SHRINK} — clipping a few outliers of a block often lowers the error
 * of all its other values (llama.cpp's k-quants and AWQ's clipping search do the same per block). Element (n, k) of
 * rows k0 ≤ k < k1 is at rowStart(k) + n; lo/hi hold the plain ranges; results go to scale/zero. Each output stops
 * at its first local minimum: 1.0 s less of a TinyLlama-shaped GPTQ layer's ~2.4 s search than the whole grid
 * (Intel Xeon Sapphire Rapids, 2 cores, AVX-512 VNNI), and on stories260K as good for RTN (the same choices) and for
 * GPTQ (+5.94% against +6.18% over three calibration seeds, docs/performance.md).
 */
export function mseBlockParams(
  w: ArrayLike<number>,
  k0: number,
  k1: number,
  rowStart: (k: number) => number,
  N: number,
  lo: Float32Array,
  hi: Float32Array,
  bits: number,
  symmetric: boolean,
  scale: Float32Array,
  zero: Uint8Array,
): void {
  const levels = (1 << bits) - 1;
  const best = new Float64Array(N).fill(Infinity);
  const s = new Float32Array(N);
  const z = new Float64Array(N);
  const err = new Float64Array(N);
  // The outputs still searching: each leaves at its first minimum, and the passes over the block walk only these.
  const open = Int32Array.from({ length: N }, (_, n) => n);
  let nOpen = N;
  // Shrinking both ends by α keeps the sign of the largest magnitude, which symmetric blockParams maps onto −2^(b−1).
  for (let c = 0; c < MSE_SHRINK.length && nOpen > 0; c++) {
    const a = MSE_SHRINK[c];
    for (let j = 0; j < nOpen; j++) {
      const n = open[j];
      const p = blockParams(a * lo[n], a * hi[n], bits, symmetric);
      s[n] = p.scale;
      z[n] = p.zero;
      err[n] = 0;
    }
    for (let k = k0; k < k1; k++) {
      const r = rowStart(k);
      for (let j = 0; j < nOpen; j++) {
        const n = open[j];
        const v = w[r + n];
        const sn = s[n];
        const zn = z[n];
        // quantizeValue, inlined: this loop is most of a GPTQ layer's JS time.
        let q = Math.floor(v / sn + 0.5) + zn;
        q = q < 0 ? 0 : q > levels ? levels : q;
        const d = v - (q - zn) * sn;
        err[n] += d * d;
      }
    }
    // Past an output's first minimum it stops (the error is nearly always unimodal in the shrink), as mseBlockRange does.
    let kept = 0;
    for (let j = 0; j < nOpen; j++) {
      const n = open[j];
      if (err[n] < best[n]) {
        best[n] = err[n];
        scale[n] = s[n];
        zero[n] = z[n];
        open[kept++] = n;
      }
    }
    nOpen = kept;
  }
}

/**
 * {@link mseBlockParams} for one block whose values are w[offset + k0 … offset + k1) with range [lo, hi]: the same
 * candidates in the same order and the same sums, so both give identical parameters.
 */
export function mseBlockRange(
  w: ArrayLike<number>,
  offset: number,
  k0: number,
  k1: number,
  lo: number,
  hi: number,
  bits: number,
  symmetric: boolean,
): { scale: number; zero: number } {
  const levels = (1 << bits) - 1;
  let best = Infinity;
  let out = { scale: 1, zero: 0 };
  for (const a of MSE_SHRINK) {
    const p = blockParams(a * lo, a * hi, bits, symmetric);
    const sf = Math.fround(p.scale);
    let err = 0;
    for (let k = offset + k0; k < offset + k1; k++) {
      const v = w[k];
      const d = v - (quantizeValue(v, sf, p.zero, levels) - p.zero) * sf;
      err += d * d;
    }
    if (err < best) {
      best = err;
      out = p;
    } else break; // the error is unimodal in the shrink: past the minimum it only grows
  }
  return out;
}

/** Code of x for a block: clamp(round(x/scale) + zero, 0, 2^b−1), halves rounded up. */
export function quantizeValue(x: number, scale: number, zero: number, levels: number): number {
  // floor(v + 0.5) is Math.round (but for v one ulp below a half) and 3× faster in V8.
  const q = Math.floor(x / scale + 0.5) + zero;
  return q < 0 ? 0 : q > levels ? levels : q;
}

/**
 * Outputs per tile when a walk along rows of the MatMul layout [K, N] (contiguous in n) reads or writes codes kept
 * per output ([N, …]): within a tile, each output's codes of a block stay in one cache line (see below, rtn and
 * gptq's transposes).
 */
export const TILE = 64;

/**
 * Visits every element (n, k) of `qw` with its code's dequantized value, in tiles of `TILE` outputs × one block:
 * the float side is walked along rows of the MatMul layout while each output's codes of the block stay in one cache
 * line. A per-element callback over a strided walk was 5× slower (a third of a GPTQ build's post-processing on the
 * TinyLlama shape).
 */

/**
 * Dequantizes, dropping padding: to [N, K] (row n = output n, the default) or,
 * with `layout` 'KN', to the MatMul layout [K, N] (row k = input k); into `out` when given.
 */
export function dequantizeBlockwise(qw: BlockwiseQuantized, layout: WeightLayout = 'NK', out: Float32Array = new Float32Array(qw.N * qw.K)): Float32Array {
  measureBlockwise(qw, undefined, layout, out);
  return out;
}

/**
 * ‖W − Ŵ‖ / ‖W‖ for a float weight W and its quantized form, without
 * materializing Ŵ; W is [N, K] or, with `layout` 'KN', the MatMul layout [K, N].
 */
export function relativeErrorOf(qw: BlockwiseQuantized, w: Float32Array, layout: WeightLayout = 'NK'): number {
  return measureBlockwise(qw, w, layout);
}

/**
 * One pass over `qw`: ‖W − Ŵ‖ / ‖W‖ against `w` (when given), and Ŵ written to `out` (when given; it may be `w`
 * itself: each element is read before it is replaced). Layouts as in {@link dequantizeBlockwise}.
 */
export function measureBlockwise(qw: BlockwiseQuantized, w: Float32Array | undefined, layout: WeightLayout, out?: Float32Array): number {
  const { N, K, nBlocks, blockSize: bs, q, scales } = qw;
  const stride = nBlocks * bs;
  const implicit = 1 << (qw.bits - 1);
  const [rowStep, colStep] = layout === 'NK' ? [K, 1] : [1, N];
  const s = new Float32Array(TILE);
  const z = new Float32Array(TILE);
  let num = 0;
  let den = 0;
  for (let b = 0; b < nBlocks; b++) {
    const k0 = b * bs;
    const k1 = Math.min(K, k0 + bs);
    for (let n0 = 0; n0 < N; n0 += TILE) {
      const nt = Math.min(TILE, N - n0);
      for (let i = 0; i < nt; i++) {
        s[i] = scales[(n0 + i) * nBlocks + b];
        z[i] = qw.zeroPoints ? qw.zeroPoints[(n0 + i) * nBlocks + b] : implicit;
      }
      for (let k = k0; k < k1; k++) {
        for (let i = 0; i < nt; i++) {
          const n = n0 + i;
          const at = n * rowStep + k * colStep;
          const d = (q[n * stride + k] - z[i]) * s[i];
          if (w) {
            const v = w[at];
            num += (v - d) * (v - d);
            den += v * v;
          }
          if (out) out[at] = d;
        }
      }
    }
  }
  return Math.sqrt(num / (den || 1));
}
