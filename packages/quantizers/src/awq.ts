import { blockParams, blockRange, dequantizeBlockwise, quantizeValue, type BlockwiseOptions } from './blockwise.js';
import { rtn } from './rtn.js';
import { matmulABt, type MatMulABt } from './linalg.js';
import { Scratch } from './scratch.js';

/** AWQ options (Lin et al. 2023, "AWQ: Activation-aware Weight Quantization for LLM Compression and Acceleration"). */
export interface AwqOptions extends BlockwiseOptions {
  /** Grid points of the scale exponent search in [0, 1) (default 20). */
  grid?: number;
  /**
   * Outputs (rows of W, evenly spaced over the group's linears) on which the scale search measures each
   * candidate (default: all). The loss is a mean over outputs, so a large sample ranks candidates the same
   * at a fraction of the cost.
   */
  searchOutputs?: number;
}

/**
 * Prepares the loss of AWQ candidates for one group — mean over X [n, K] and outputs of (X·(Q(W·s)/s)ᵀ − ref)² —
 * as a function of s; onnxruntime's version runs the whole candidate as one graph.
 */
export type CandidateLoss = (
  w: Float32Array,
  N: number,
  K: number,
  x: Float32Array,
  n: number,
  ref: Float32Array,
  o: BlockwiseOptions,
) => Promise<(s: Float32Array) => Promise<number>>;

/** A linear layer as AWQ sees it: W [N, K], rows = outputs. */
export interface AwqLinear {
  w: Float32Array;
  N: number;
}

/** Quantize then dequantize W [N, K] blockwise along K (RTN), into a new array. */
export function fakeQuantize(w: Float32Array, N: number, K: number, o: BlockwiseOptions): Float32Array {
  return dequantizeBlockwise(rtn(w, N, K, o));
}

/**
 * Q(W·s)/s for W [N, K] and per-input scales s, blockwise along K — the weights AWQ's candidate s would give,
 * seen from the unscaled input — in one pass per block (what fakeQuantize of W·s, then ÷ s, computes).
 */
export function scaledFakeQuantize(w: Float32Array, s: Float32Array, N: number, K: number, o: BlockwiseOptions): Float32Array {
  const out = new Float32Array(N * K);
  const levels = (1 << o.bits) - 1;
  for (let r = 0; r < N; r++) {
    const row = r * K;
    for (let k0 = 0; k0 < K; k0 += o.blockSize) {
      const k1 = Math.min(K, k0 + o.blockSize);
      for (let k = k0; k < k1; k++) out[row + k] = w[row + k] * s[k];
      const { lo, hi } = blockRange(out, row, k0, k1);
      const { scale, zero } = blockParams(lo, hi, o.bits, o.symmetric);
      for (let k = k0; k < k1; k++) out[row + k] = ((quantizeValue(out[row + k], scale, zero, levels) - zero) * scale) / s[k];
    }
  }
  return out;
}

function meanSquaredDiff(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return s / a.length;
}

/**
 * AWQ's activation-aware scale search for linears that read the same input X
 * ([n, K] calibration rows): per input channel s = mean|x|^α / mean|ŵ|^(1−α)
 * (ŵ: |W| normalised by its block maximum), normalised by √(max·min); α on a
 * grid over [0, 1); the α whose Q(W·s)·(X/s) is closest to W·X wins. s = 1 is
 * the baseline (reported as α = null), so the result is never worse than RTN on X.
 */
export async function awqSearchScale(
  x: Float32Array,
  n: number,
  K: number,
  xAbsMean: Float64Array | Float32Array,
  linears: AwqLinear[],
  o: AwqOptions,
  matmul: MatMulABt = matmulABt,
  candidates?: CandidateLoss,
): Promise<{ scale: Float32Array; alpha: number | null; loss: number; baseLoss: number }> {
  const grid = o.grid ?? 20;
  const Nall = linears.reduce((s, l) => s + l.N, 0);
  const wAll = new Float32Array(Nall * K);
  let off = 0;
  for (const l of linears) {
    wAll.set(l.w, off * K);
    off += l.N;
  }
  // Mean over outputs of |w| normalised by the max of its quantization block.
  const wMean = new Float64Array(K);
  for (let r = 0; r < Nall; r++) {
    for (let k0 = 0; k0 < K; k0 += o.blockSize) {
      const k1 = Math.min(K, k0 + o.blockSize);
      let m = 0;
      for (let k = k0; k < k1; k++) m = Math.max(m, Math.abs(wAll[r * K + k]));
      if (m > 0) for (let k = k0; k < k1; k++) wMean[k] += Math.abs(wAll[r * K + k]) / m;
    }
  }
  for (let k = 0; k < K; k++) wMean[k] /= Nall;
  const Ne = Math.min(Nall, o.searchOutputs ?? Nall);
  const wEval = Ne === Nall ? wAll : new Float32Array(Ne * K);
  if (Ne < Nall) for (let r = 0; r < Ne; r++) wEval.set(wAll.subarray(Math.floor((r * Nall) / Ne) * K, (Math.floor((r * Nall) / Ne) + 1) * K), r * K);
  const ref = await matmul(x, n, K, wEval, Ne);
  const lossOf = candidates
    ? await candidates(wEval, Ne, K, x, n, ref, o)
    : async (s: Float32Array): Promise<number> => meanSquaredDiff(ref, await matmul(x, n, K, scaledFakeQuantize(wEval, s, Ne, K, o), Ne));
  const ones = new Float32Array(K).fill(1);
  const baseLoss = await lossOf(ones);
  // alpha null: no scaling won (s = 1), which is not the grid's α = 0 (s = 1/mean|ŵ|).
  let best: { scale: Float32Array; alpha: number | null; loss: number } = { scale: ones, alpha: null, loss: baseLoss };
  for (let g = 0; g < grid; g++) {
    const alpha = g / grid;
    const s = new Float32Array(K);
    let max = 0;
    let min = Infinity;
    for (let k = 0; k < K; k++) {
      s[k] = Math.max(1e-4, Math.pow(Math.max(xAbsMean[k], 1e-8), alpha) / Math.pow(Math.max(wMean[k], 1e-8), 1 - alpha));
      max = Math.max(max, s[k]);
      min = Math.min(min, s[k]);
    }
    const norm = Math.sqrt(max * min);
    for (let k = 0; k < K; k++) s[k] /= norm;
    const loss = await lossOf(s);
    if (loss < best.loss) best = { scale: s, alpha, loss };
  }
  return { ...best, baseLoss };
}

/**
 * The products behind {@link awqClip}: per-block Gram matrices of the input,
 * and the quadratic forms that turn weight errors into output errors
 * (onnxruntime's batched MatMul in the pipeline, JS here).
 */
export interface ClipProducts {
  /** G_p = X_pᵀX_p for each block p of b input columns of X [n, K] (K a multiple of b): [nb, b, b]. */
  blockGram(x: Float32Array, n: number, K: number, b: number): Float32Array | Promise<Float32Array>;
  /** E[p, r] = d_prᵀ·G_p·d_pr for D [nb, N, b] and G [nb, b, b]: [nb, N]. */
  quadratic(d: Float32Array, g: Float32Array, nb: number, N: number, b: number): Float32Array | Promise<Float32Array>;
}

export const jsClipProducts: ClipProducts = {
  blockGram(x, n, K, b) {
    const nb = K / b;
    const g = new Float32Array(nb * b * b);
    for (let t = 0; t < n; t++)
      for (let p = 0; p < nb; p++)
        for (let i = 0; i < b; i++) {
          const xi = x[t * K + p * b + i];
          if (xi === 0) continue;
          for (let j = 0; j < b; j++) g[(p * b + i) * b + j] += xi * x[t * K + p * b + j];
        }
    return g;
  },
  quadratic(d, g, nb, N, b) {
    const e = new Float32Array(nb * N);
    for (let p = 0; p < nb; p++)
      for (let r = 0; r < N; r++) {
        const o = (p * N + r) * b;
        let s = 0;
        for (let i = 0; i < b; i++) for (let j = 0; j < b; j++) s += d[o + i] * g[(p * b + i) * b + j] * d[o + j];
        e[p * N + r] = s;
      }
    return e;
  },
};

/** The per-block Gram matrices of X [n, K] that {@link awqClip} needs, [ceil(K/b), b, b] (a last partial block zero-padded). */
export async function awqBlockGram(x: Float32Array, n: number, K: number, b: number, products: ClipProducts = jsClipProducts): Promise<Float32Array> {
  const nb = Math.ceil(K / b);
  let xp = x;
  if (K % b) {
    // Zero-padded inputs add nothing to the last block's Gram matrix.
    xp = new Float32Array(n * nb * b);
    for (let t = 0; t < n; t++) xp.set(x.subarray(t * K, (t + 1) * K), t * nb * b);
  }
  return products.blockGram(xp, n, nb * b, b);
}

/**
 * AWQ's clipping search for one linear W [N, K] (already scaled) on input
 * rows X [n, K]: per output row and quantization block, shrink the block's
 * range to max·(1 − i/grid) for i < grid·maxShrink and keep the one whose
 * block output X_b·Q(clip(w_b))ᵀ is closest to X_b·w_bᵀ. That error is
 * dᵀ·G_b·d for the block's weight error d and G_b = X_bᵀX_b, so each shrink
 * step costs one pass over the weights plus one batched product with the
 * b×b Gram matrices, whatever the number of rows; every second step is
 * tried, then each block's neighbours of its best. Outputs before `first`
 * are left alone (AWQ does not clip attention queries and keys). Linears that read the same X may share
 * `gram` ({@link awqBlockGram}). Returns W clipped.
 */
export async function awqClip(
  w: Float32Array,
  N: number,
  K: number,
  x: Float32Array,
  n: number,
  o: AwqOptions & { maxShrink?: number; first?: number; /** Clip `w` itself instead of a copy. */ inPlace?: boolean; scratch?: Scratch; gram?: Float32Array },
  products: ClipProducts = jsClipProducts,
): Promise<Float32Array> {
  const grid = o.grid ?? 20;
  const steps = Math.max(1, Math.floor(grid * (o.maxShrink ?? 0.5)));
  const levels = (1 << o.bits) - 1;
  const out = o.inPlace ? w : Float32Array.from(w);
  const b = o.blockSize;
  const nb = Math.ceil(K / b);
  const first = o.first ?? 0;
  const rows = N - first;
  if (rows <= 0) return out;
  const G = o.gram ?? (await awqBlockGram(x, n, K, b, products));
  const lo = new Float32Array(nb * rows);
  const hi = new Float32Array(nb * rows);
  for (let r = 0; r < rows; r++) {
    for (let p = 0; p < nb; p++) {
      const range = blockRange(w, (first + r) * K, p * b, Math.min(K, (p + 1) * b));
      lo[p * rows + r] = range.lo;
      hi[p * rows + r] = range.hi;
    }
  }
  const bestErr = new Float32Array(nb * rows).fill(Infinity);
  const bestStep = new Int32Array(nb * rows);
  // The weight errors of one evaluation, [nb, rows, b] (zeros in padding), and W's blocks in the same order: the
  // evaluations then walk both sequentially (walking W's rows block by block, a page apart, took 1.5× as long).
  const scratch = o.scratch ?? new Scratch();
  scratch.reserve(2 * nb * rows * b + 5 * nb * rows);
  const d = scratch.take(nb * rows * b).fill(0);
  const wt = scratch.take(nb * rows * b);
  // Each block's (clo, chi, 1/scale, scale, zero) for the SIMD kernel, which needs whole blocks of a multiple of 4.
  const params = scratch.take(5 * nb * rows);
  const simd = K % b === 0 && b % 4 === 0 ? scratch.simd(d, wt, params) : undefined;
  for (let r = 0; r < rows; r++) {
    for (let p = 0; p < nb; p++) {
      const k0 = p * b;
      const width = Math.min(K, k0 + b) - k0;
      wt.set(w.subarray((first + r) * K + k0, (first + r) * K + k0 + width), (p * rows + r) * b);
    }
  }
  /** Errors with block (p, r) shrunk by its own step stepOf(p·rows + r); keeps the best step of each. */
  const evaluate = async (stepOf: (j: number) => number): Promise<void> => {
    if (simd) {
      for (let j = 0; j < nb * rows; j++) {
        const f = 1 - stepOf(j) / grid;
        const clo = lo[j] * f;
        const chi = hi[j] * f;
        const { scale, zero } = blockParams(clo, chi, o.bits, o.symmetric);
        params[5 * j] = clo;
        params[5 * j + 1] = chi;
        params[5 * j + 2] = 1 / scale;
        params[5 * j + 3] = scale;
        params[5 * j + 4] = zero;
      }
      simd.clipErrors(wt.byteOffset, d.byteOffset, params.byteOffset, nb * rows, b, levels);
    } else evaluateJs(stepOf);
    const err = await products.quadratic(d, G, nb, rows, b);
    for (let j = 0; j < nb * rows; j++) {
      if (err[j] < bestErr[j]) {
        bestErr[j] = err[j];
        bestStep[j] = stepOf(j);
      }
    }
  };
  /** The same errors in JS, in float64 (any block size and K). */
  const evaluateJs = (stepOf: (j: number) => number): void => {
    for (let p = 0; p < nb; p++) {
      const width = Math.min(K, (p + 1) * b) - p * b;
      for (let r = 0; r < rows; r++) {
        const j = p * rows + r;
        const f = 1 - stepOf(j) / grid;
        const clo = lo[j] * f;
        const chi = hi[j] * f;
        const { scale, zero } = blockParams(clo, chi, o.bits, o.symmetric);
        const inv = 1 / scale;
        const at = j * b;
        // quantizeValue with a multiply instead of a divide: this loop runs N × K times per evaluation.
        for (let k = at; k < at + width; k++) {
          const wv = wt[k];
          const v = wv < clo ? clo : wv > chi ? chi : wv;
          let q = Math.floor(v * inv + 0.5) + zero;
          q = q < 0 ? 0 : q > levels ? levels : q;
          d[k] = (q - zero) * scale - wv;
        }
      }
    }
  };
  try {
    // Every second step, then each block's two neighbours of its best: 7 evaluations instead of 10 for the
    // default grid (the error is close to unimodal in the shrink factor).
    const coarse = steps >= 6 ? 2 : 1;
    for (let i = 0; i < steps; i += coarse) await evaluate(() => i);
    if (coarse === 2) {
      const around = Int32Array.from(bestStep);
      for (const delta of [-1, 1]) await evaluate((j) => Math.min(steps - 1, Math.max(0, around[j] + delta)));
    }
  } finally {
    scratch.release(0);
  }
  for (let r = 0; r < rows; r++) {
    const row = (first + r) * K;
    for (let p = 0; p < nb; p++) {
      const f = 1 - bestStep[p * rows + r] / grid;
      if (f === 1) continue;
      const clo = lo[p * rows + r] * f;
      const chi = hi[p * rows + r] * f;
      for (let k = p * b; k < Math.min(K, (p + 1) * b); k++) out[row + k] = Math.min(chi, Math.max(clo, out[row + k]));
    }
  }
  return out;
}
