import { blockParams, blockRange, dequantizeBlockwise, quantizeValue, type BlockwiseOptions } from './blockwise.js';
import { rtn } from './rtn.js';
import { matmulABt, type MatMulABt } from './linalg.js';

/** AWQ options (Lin et al. 2023, "AWQ: Activation-aware Weight Quantization for LLM Compression and Acceleration"). */
export interface AwqOptions extends BlockwiseOptions {
  /** Grid points of the scale exponent search in [0, 1) (default 20). */
  grid?: number;
}

/**
 * Prepares the loss of AWQ candidates for one group — mean over X [n, K] and outputs of (X·(Q(W·s)/s)ᵀ − ref)² —
 * as a function of s; onnxruntime's version runs the whole candidate as one graph.
 */
export type CandidateLoss = (w: Float32Array, N: number, K: number, x: Float32Array, n: number, ref: Float32Array, o: BlockwiseOptions) => Promise<(s: Float32Array) => Promise<number>>;

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
 * grid over [0, 1); the α whose Q(W·s)·(X/s) is closest to W·X wins (α = 0
 * with s = 1 is the baseline, so the result is never worse than RTN on X).
 */
export async function awqSearchScale(x: Float32Array, n: number, K: number, xAbsMean: Float64Array | Float32Array, linears: AwqLinear[], o: AwqOptions, matmul: MatMulABt = matmulABt, candidates?: CandidateLoss): Promise<{ scale: Float32Array; alpha: number; loss: number; baseLoss: number }> {
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
  const ref = await matmul(x, n, K, wAll, Nall);
  const lossOf = candidates
    ? await candidates(wAll, Nall, K, x, n, ref, o)
    : async (s: Float32Array): Promise<number> => meanSquaredDiff(ref, await matmul(x, n, K, scaledFakeQuantize(wAll, s, Nall, K, o), Nall));
  const ones = new Float32Array(K).fill(1);
  const baseLoss = await lossOf(ones);
  let best = { scale: ones, alpha: 0, loss: baseLoss };
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
 * AWQ's clipping search for one linear W [N, K] (already scaled) on input
 * rows X [n, K]: per output row and quantization block, shrink the block's
 * range to max·(1 − i/grid) for i < grid·maxShrink and keep the one whose
 * block output X_b·Q(clip(w_b))ᵀ is closest to X_b·w_bᵀ. The block outputs of
 * all rows at once are one A·Bᵀ product (onnxruntime's GEMM in the pipeline).
 * Returns W clipped.
 */
/**
 * Batched block products for {@link awqClip}: for nb blocks, X [nb, n, b]
 * times Qᵀ (Qt [nb, b, N]) gives [nb, n, N]; with `ref` it returns instead
 * Σ_t (X·Qᵀ − ref)² per block and output, [nb, N]. onnxruntime in the pipeline.
 */
export interface BlockProducts {
  outputs(x: Float32Array, qt: Float32Array, nb: number, n: number, b: number, N: number): Float32Array | Promise<Float32Array>;
  errors(x: Float32Array, qt: Float32Array, ref: Float32Array, nb: number, n: number, b: number, N: number): Float32Array | Promise<Float32Array>;
}

const jsBlockProducts: BlockProducts = {
  outputs(x, qt, nb, n, b, N) {
    const y = new Float32Array(nb * n * N);
    for (let p = 0; p < nb; p++) for (let t = 0; t < n; t++) for (let k = 0; k < b; k++) {
      const v = x[(p * n + t) * b + k];
      if (v === 0) continue;
      for (let r = 0; r < N; r++) y[(p * n + t) * N + r] += v * qt[(p * b + k) * N + r];
    }
    return y;
  },
  errors(x, qt, ref, nb, n, b, N) {
    const y = this.outputs(x, qt, nb, n, b, N) as Float32Array;
    const e = new Float32Array(nb * N);
    for (let p = 0; p < nb; p++) for (let t = 0; t < n; t++) for (let r = 0; r < N; r++) e[p * N + r] += (y[(p * n + t) * N + r] - ref[(p * n + t) * N + r]) ** 2;
    return e;
  },
};

/**
 * AWQ's clipping search for one linear W [N, K] (already scaled) on input
 * rows X [n, K]: per output row and quantization block, shrink the block's
 * range to max·(1 − i/grid) for i < grid·maxShrink and keep the one whose
 * block output X_b·Q(clip(w_b))ᵀ is closest to X_b·w_bᵀ. Blocks are
 * evaluated in batches, one product per shrink step. Returns W clipped.
 */
export async function awqClip(w: Float32Array, N: number, K: number, x: Float32Array, n: number, o: AwqOptions & { maxShrink?: number }, products: BlockProducts = jsBlockProducts): Promise<Float32Array> {
  const grid = o.grid ?? 20;
  const steps = Math.max(1, Math.floor(grid * (o.maxShrink ?? 0.5)));
  const levels = (1 << o.bits) - 1;
  const out = Float32Array.from(w);
  const b = o.blockSize;
  const nBlocks = Math.ceil(K / b);
  // Blocks per batch: keep the [nb, n, N] products near 32M floats.
  const per = Math.max(1, Math.min(nBlocks, Math.floor((1 << 25) / (n * N))));
  for (let p0 = 0; p0 < nBlocks; p0 += per) {
    const nb = Math.min(per, nBlocks - p0);
    // Zero-padded last block: padding inputs are 0, so they add nothing.
    const xs = new Float32Array(nb * n * b);
    const wt = new Float32Array(nb * b * N);
    const lo = new Float32Array(nb * N).fill(Infinity);
    const hi = new Float32Array(nb * N).fill(-Infinity);
    for (let p = 0; p < nb; p++) {
      const k0 = (p0 + p) * b;
      const k1 = Math.min(K, k0 + b);
      for (let t = 0; t < n; t++) xs.set(x.subarray(t * K + k0, t * K + k1), (p * n + t) * b);
      for (let r = 0; r < N; r++) {
        for (let k = k0; k < k1; k++) {
          const v = w[r * K + k];
          wt[(p * b + k - k0) * N + r] = v;
          if (v < lo[p * N + r]) lo[p * N + r] = v;
          if (v > hi[p * N + r]) hi[p * N + r] = v;
        }
      }
    }
    const ref = await products.outputs(xs, wt, nb, n, b, N);
    const bestErr = new Float32Array(nb * N).fill(Infinity);
    const bestF = new Float32Array(nb * N).fill(1);
    const qt = new Float32Array(nb * b * N);
    for (let i = 0; i < steps; i++) {
      const f = 1 - i / grid;
      for (let p = 0; p < nb; p++) {
        const width = Math.min(K, (p0 + p + 1) * b) - (p0 + p) * b;
        for (let r = 0; r < N; r++) {
          const clo = lo[p * N + r] * f;
          const chi = hi[p * N + r] * f;
          const { scale, zero } = blockParams(clo, chi, o.bits, o.symmetric);
          for (let k = 0; k < width; k++) {
            const v = Math.min(chi, Math.max(clo, wt[(p * b + k) * N + r]));
            qt[(p * b + k) * N + r] = (quantizeValue(v, scale, zero, levels) - zero) * scale;
          }
        }
      }
      const err = await products.errors(xs, qt, ref, nb, n, b, N);
      for (let j = 0; j < nb * N; j++) {
        if (err[j] < bestErr[j]) {
          bestErr[j] = err[j];
          bestF[j] = f;
        }
      }
    }
    for (let p = 0; p < nb; p++) {
      const k0 = (p0 + p) * b;
      const k1 = Math.min(K, k0 + b);
      for (let r = 0; r < N; r++) {
        const f = bestF[p * N + r];
        if (f === 1) continue;
        const clo = lo[p * N + r] * f;
        const chi = hi[p * N + r] * f;
        for (let k = k0; k < k1; k++) out[r * K + k] = Math.min(chi, Math.max(clo, w[r * K + k]));
      }
    }
  }
  return out;
}
