import { AlkiError } from '@alki/core';
import {
  blockParams,
  MSE_SHRINK,
  mseBlockParams,
  quantizeValue,
  rowRanges,
  TILE,
  type BlockwiseOptions,
  type BlockwiseQuantized,
  type WeightLayout,
} from './blockwise.js';
import { matmulABt, upperCholeskyOfInverse, type MatMulABt } from './linalg.js';
import { Scratch } from './scratch.js';
import type { KernelExports } from './simd/kernels.js';

/** GPTQ options (Frantar et al. 2022, "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained Transformers"). */
export interface GptqOptions extends BlockwiseOptions {
  /** Dampening λ as a fraction of the mean Hessian diagonal (default 0.01). */
  percDamp?: number;
  /** Columns per lazy batch update (default 128, as in the paper). */
  lazyBlock?: number;
  /** Process columns in order of decreasing Hessian diagonal ("act-order"). */
  actOrder?: boolean;
  /** Outputs per independent strip (default 512). */
  stripWidth?: number;
  /** Columns per inner sub-block of a lazy batch (default 16; equal to lazyBlock: the paper's column-by-column loop). */
  subBlock?: number;
  /** Each block's range by the least squared error of its own rounding (see mseBlockParams) instead of min/max (default true). */
  mseClip?: boolean;
  /** Work memory reused between calls (layer after layer). */
  scratch?: Scratch;
}

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
  U: Float32Array;
}

export async function prepareGptqHessian(
  hessian: Float32Array | Float64Array,
  K: number,
  o: Pick<GptqOptions, 'percDamp' | 'actOrder' | 'scratch'> & {
    /** Work in `hessian` itself (a Float32Array) instead of a copy; U ends up there. */ overwrite?: boolean;
  } = {},
  gemm: MatMulABt = matmulABt,
): Promise<GptqHessian> {
  const H = o.overwrite && hessian instanceof Float32Array ? hessian : Float32Array.from(hessian);
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
    Hp = new Float32Array(K * K);
    for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) Hp[i * K + j] = H[perm[i] * K + perm[j]];
  }
  const U = await upperCholeskyOfInverse(Hp, K, gemm, { overwrite: true, scratch: o.scratch });
  if (!U)
    throw new AlkiError(
      'NUMERIC',
      'GPTQ: the Hessian is not positive definite even after dampening',
      'raise the dampening (percDamp), or use more calibration samples',
    );
  return { K, perm, pos, dead, U };
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
export async function gptq(
  w: Float32Array,
  hessian: Float32Array | Float64Array | GptqHessian,
  N: number,
  K: number,
  o: GptqOptions & { /** How `w` is laid out (default 'NK', the paper's [N, K]; 'KN' is the MatMul layout). */ layout?: WeightLayout },
  gemm: MatMulABt = matmulABt,
  update: GemmUpdate = jsGemmUpdate,
): Promise<BlockwiseQuantized> {
  const bs = o.blockSize;
  const nBlocks = Math.ceil(K / bs);
  const stride = nBlocks * bs;
  const levels = (1 << o.bits) - 1;
  const lazy = o.lazyBlock ?? 128;
  const sub = Math.min(lazy, o.subBlock ?? 16);
  const { perm, pos, dead, U } = 'U' in hessian ? hessian : await prepareGptqHessian(hessian, K, o, gemm);

  const scales = new Float32Array(N * nBlocks);
  const zeros = new Uint8Array(N * nBlocks);
  const q = new Uint8Array(N * stride);
  // Outputs are independent given U: GPTQ runs on strips of outputs. Narrow strips keep each batch update's
  // onnxruntime output (rest × strip floats) small enough for the allocator to recycle: 2048-wide strips made
  // down_proj's updates 45 MB outputs, each fresh memory (page faults), 2–3× slower overall (see ort/memory.ts).
  const strip = Math.min(N, o.stripWidth ?? 512);
  const scratch = o.scratch ?? new Scratch();
  scratch.reserve(K * strip + lazy * strip + K * lazy + 3 * strip);
  const tailBuf = scratch.take(K * strip);
  const errBuf = scratch.take(lazy * strip);
  const uBuf = scratch.take(K * lazy);
  const rangeBuf = { s: scratch.take(strip), z: scratch.take(strip), e: scratch.take(strip), best: new Float32Array(strip), open: new Uint8Array(strip) };
  const simd = scratch.simd(tailBuf, errBuf, rangeBuf.s, rangeBuf.z, rangeBuf.e);
  const blo = new Float32Array(strip);
  const bhi = new Float32Array(strip);
  // A strip's codes and block parameters with the outputs contiguous ([column or block, output]): the column loop
  // reads and writes them in order; they go to the [N, …] layouts once per strip.
  const codes = new Uint8Array(K * strip);
  const sScale = new Float32Array(nBlocks * strip);
  const sZero = new Uint8Array(nBlocks * strip);
  try {
    for (let n0 = 0; n0 < N; n0 += strip) {
      const Ns = Math.min(N, n0 + strip) - n0;
      /** target [rest, Ns] −= U[j0:j0+k, j0+k:j0+k+rest]ᵀ · e: the errors e [k, Ns] of columns j0… reach the next `rest`. */
      const spread = async (j0: number, k: number, rest: number, e: Float32Array, target: Float32Array) => {
        const u = uBuf.subarray(0, k * rest);
        for (let i = 0; i < k; i++) u.set(U.subarray((j0 + i) * K + j0 + k, (j0 + i) * K + j0 + k + rest), i * rest);
        await update(u, rest, k, e, Ns, target);
      };
      // The weights not yet quantized, [K − i1, Ns] in processing order: row j is input column perm[i1 + j].
      // Keeping them as rows makes each lazy batch update one GEMM on a contiguous tail (no copies).
      let tail = tailBuf.subarray(0, K * Ns);
      tail.fill(0);
      if (o.layout === 'KN') {
        for (let j = 0; j < K; j++) if (!dead[perm[j]]) tail.set(w.subarray(perm[j] * N + n0, perm[j] * N + n0 + Ns), j * Ns);
      } else {
        for (let n = 0; n < Ns; n++) for (let j = 0; j < K; j++) tail[j * Ns + n] = dead[perm[j]] ? 0 : w[(n0 + n) * K + perm[j]];
      }
      // A block's scale/zero come from its current (updated) weights when its first column is reached; with
      // act-order (a block's columns scattered over the order) all blocks' from the weights before any update, as
      // gptq.py's static_groups, so that the result does not depend on where lazy batches happen to cut.
      const haveParams = new Uint8Array(nBlocks);
      const mseClip = o.mseClip ?? true;
      // The SIMD range search reads a block's rows as one strided run: not under act-order, whose blocks' rows are scattered.
      const rangeSimd = simd && mseClip && !o.actOrder && Ns % 4 === 0 ? { kernels: simd, ...rangeBuf } : undefined;
      if (o.actOrder) {
        for (let blk = 0; blk < nBlocks; blk++)
          setBlockParams({ tail, sScale, sZero, haveParams, blo, bhi, K, Ns, pos, i1: 0, bs, bits: o.bits, symmetric: o.symmetric, mseClip }, blk);
      }
      for (let i1 = 0; i1 < K; i1 += lazy) {
        const i2 = Math.min(K, i1 + lazy);
        const count = i2 - i1;
        const err = errBuf.subarray(0, count * Ns);
        // Within a lazy block, errors spread column by column only inside sub-blocks of `sub` columns; each
        // finished sub-block reaches the rest of the lazy block with one GEMM (JS work K·sub/2·N instead of K·lazy/2·N).
        for (let s1 = 0; s1 < count; s1 += sub) {
          const s2 = Math.min(count, s1 + sub);
          quantizeColumns({
            tail,
            err,
            codes,
            sScale,
            sZero,
            haveParams,
            blo,
            bhi,
            U,
            K,
            Ns,
            perm,
            pos,
            i1,
            s1,
            s2,
            bs,
            bits: o.bits,
            symmetric: o.symmetric,
            levels,
            mseClip,
            simd,
            rangeSimd,
          });
          if (s2 < count) await spread(i1 + s1, s2 - s1, count - s2, err.subarray(s1 * Ns, s2 * Ns), tail.subarray(s2 * Ns, count * Ns));
        }
        // Lazy batch update of all later columns: W[i2:] −= U[i1:i2, i2:]ᵀ · Err.
        tail = tail.subarray(count * Ns);
        if (K > i2) await spread(i1, count, K - i2, err, tail);
      }
      // The strip's codes and parameters to their [N, …] layouts, in tiles of outputs (cache-friendly transposes).
      for (let t0 = 0; t0 < Ns; t0 += TILE) {
        const t1 = Math.min(Ns, t0 + TILE);
        for (let j = 0; j < K; j++) {
          const dst = (n0 + t0) * stride + perm[j];
          const src = j * Ns;
          for (let n = t0; n < t1; n++) q[dst + (n - t0) * stride] = codes[src + n];
        }
        for (let b = 0; b < nBlocks; b++) {
          for (let n = t0; n < t1; n++) {
            scales[(n0 + n) * nBlocks + b] = sScale[b * Ns + n];
            zeros[(n0 + n) * nBlocks + b] = sZero[b * Ns + n];
          }
        }
      }
    }
  } finally {
    scratch.release(0);
  }
  // Padding codes of a last partial block equal the zero point (they multiply zero inputs).
  for (let n = 0; n < N; n++) for (let k = K; k < stride; k++) q[n * stride + k] = zeros[n * nBlocks + nBlocks - 1];
  return { bits: o.bits, blockSize: bs, N, K, nBlocks, q, scales, zeroPoints: o.symmetric ? undefined : zeros };
}

/** What {@link quantizeColumns} works on: one strip's state inside one lazy block. */
interface ColumnWork {
  /** The strip's weights not yet quantized, from the lazy block's first column on: [rest, Ns]. */
  tail: Float32Array;
  /** Scaled errors of the lazy block's columns, [lazy, Ns]. */
  err: Float32Array;
  /** The strip's codes in processing order, [K, Ns]. */
  codes: Uint8Array;
  sScale: Float32Array;
  sZero: Uint8Array;
  haveParams: Uint8Array;
  blo: Float32Array;
  bhi: Float32Array;
  U: Float32Array;
  K: number;
  Ns: number;
  perm: number[];
  pos: Int32Array;
  /** First column of the lazy block; the sub-block is its columns [s1, s2). */
  i1: number;
  s1: number;
  s2: number;
  bs: number;
  bits: number;
  symmetric: boolean;
  levels: number;
  mseClip?: boolean;
  /** The SIMD kernels over `tail` and `err`'s memory, when they are in a WebAssembly scratch. */
  simd: KernelExports | undefined;
  /** The SIMD range search and its buffers (a candidate's scales, zero points and errors per output), where it applies. */
  rangeSimd?: RangeSimd;
}

interface RangeSimd {
  kernels: KernelExports;
  s: Float32Array;
  z: Float32Array;
  e: Float32Array;
  /** Each output's least error so far, and whether it is still searching (JS memory: the kernel does not read them). */
  best: Float32Array;
  open: Uint8Array;
}

/**
 * GPTQ's column loop over one sub-block: each column is rounded (its block's parameters fixed from the updated
 * weights when first reached) and its scaled error spreads to the sub-block's later columns. A plain synchronous
 * function, so that V8 keeps the arrays in registers (inside the async caller the loop ran ~4× slower).
 */
function quantizeColumns(c: ColumnWork): void {
  const { tail, err, codes, sScale, sZero, haveParams, U, K, Ns, perm, i1, s1, s2, bs, levels, simd } = c;
  const tailAt = tail.byteOffset;
  const errAt = err.byteOffset;
  for (let i = s1; i < s2; i++) {
    const j = i1 + i;
    const col = perm[j];
    const blk = Math.floor(col / bs);
    const pb = blk * Ns;
    if (!haveParams[blk]) setBlockParams(c, blk);
    const d = U[j * K + j];
    const row = i * Ns;
    const crow = j * Ns;
    for (let n = 0; n < Ns; n++) {
      const s = sScale[pb + n];
      const z = sZero[pb + n];
      const wv = tail[row + n];
      const code = quantizeValue(wv, s, z, levels);
      codes[crow + n] = code;
      err[row + n] = (wv - (code - z) * s) / d;
    }
    for (let t = i + 1; t < s2; t++) {
      const u = U[j * K + i1 + t];
      if (u === 0) continue;
      const trow = t * Ns;
      if (simd) simd.subScaled(tailAt + 4 * trow, errAt + 4 * row, Ns, u);
      else for (let n = 0; n < Ns; n++) tail[trow + n] -= err[row + n] * u;
    }
  }
}

/** A block's scale and zero point per output of the strip, from its rows of the tail (min/max or MSE ranges). */
function setBlockParams(
  c: Pick<
    ColumnWork,
    'tail' | 'sScale' | 'sZero' | 'haveParams' | 'blo' | 'bhi' | 'K' | 'Ns' | 'pos' | 'i1' | 'bs' | 'bits' | 'symmetric' | 'mseClip' | 'rangeSimd'
  >,
  blk: number,
): void {
  const { tail, sScale, sZero, blo, bhi, K, Ns, pos, i1, bs } = c;
  const pb = blk * Ns;
  const k0 = blk * bs;
  const k1 = Math.min(K, k0 + bs);
  const rowStart = (k: number) => (pos[k] - i1) * Ns;
  rowRanges(tail, k0, k1, rowStart, 1, Ns, blo, bhi);
  if (c.mseClip && c.rangeSimd)
    mseBlockParamsSimd(c.rangeSimd, tail, rowStart(k0), k1 - k0, Ns, blo, bhi, c.bits, c.symmetric, sScale.subarray(pb, pb + Ns), sZero.subarray(pb, pb + Ns));
  else if (c.mseClip) mseBlockParams(tail, k0, k1, rowStart, Ns, blo, bhi, c.bits, c.symmetric, sScale.subarray(pb, pb + Ns), sZero.subarray(pb, pb + Ns));
  else {
    for (let n = 0; n < Ns; n++) {
      const { scale, zero } = blockParams(blo[n], bhi[n], c.bits, c.symmetric);
      sScale[pb + n] = scale;
      sZero[pb + n] = zero;
    }
  }
  c.haveParams[blk] = 1;
}

/**
 * mseBlockParams for a block whose `rows` rows of `Ns` outputs follow each other in `tail` from `at`: each candidate
 * range's errors for all outputs at once in SIMD (float32), then, as there, each output keeps its range at its first
 * minimum (the candidates after it are computed but not looked at).
 */
function mseBlockParamsSimd(
  r: RangeSimd,
  tail: Float32Array,
  at: number,
  rows: number,
  Ns: number,
  lo: Float32Array,
  hi: Float32Array,
  bits: number,
  symmetric: boolean,
  scale: Float32Array,
  zero: Uint8Array,
): void {
  const levels = (1 << bits) - 1;
  const best = r.best.fill(Infinity, 0, Ns);
  const open = r.open.fill(1, 0, Ns);
  for (const a of MSE_SHRINK) {
    for (let n = 0; n < Ns; n++) {
      const p = blockParams(a * lo[n], a * hi[n], bits, symmetric);
      r.s[n] = p.scale;
      r.z[n] = p.zero;
    }
    r.kernels.blockSquaredErrors(tail.byteOffset + 4 * at, 4 * Ns, rows, Ns, r.s.byteOffset, r.z.byteOffset, r.e.byteOffset, levels);
    let searching = false;
    for (let n = 0; n < Ns; n++) {
      if (!open[n]) continue;
      if (r.e[n] < best[n]) {
        best[n] = r.e[n];
        scale[n] = r.s[n];
        zero[n] = r.z[n];
        searching = true;
      } else open[n] = 0;
    }
    if (!searching) return;
  }
}

/**
 * C −= Aᵀ·B in place, for A [k, m], B [k, n], C [m, n]: GPTQ's batch updates (onnxruntime's Gemm in the pipeline).
 * A is given as k rows of U (copied contiguously), so no transpose is needed.
 */
export type GemmUpdate = (a: Float32Array, m: number, k: number, b: Float32Array, n: number, c: Float32Array) => void | Promise<void>;

function jsGemmUpdate(a: Float32Array, m: number, k: number, b: Float32Array, n: number, c: Float32Array): void {
  for (let i = 0; i < m; i++)
    for (let t = 0; t < k; t++) {
      const v = a[t * m + i];
      if (v === 0) continue;
      for (let j = 0; j < n; j++) c[i * n + j] -= v * b[t * n + j];
    }
}
