import { blockParams, quantizeValue, type BlockwiseOptions } from '../blockwise.js';

/**
 * AWQ's two searches (Lin et al. 2023; AutoAWQ's auto_scale and auto_clip) as plainly as they can be written: the
 * test oracle of {@link awqSearchScale} (sampled outputs, onnxruntime candidate graphs) and {@link awqClip}
 * (per-block Gram matrices, coarse-to-fine steps). X is [n, K] calibration rows, each W is [N, K]; float64 loops
 * over every row, output and candidate: small shapes only.
 */

/** Q(w)·… for one block of one output, quantized with the range [lo, hi]: the dequantized values. */
function roundBlock(w: ArrayLike<number>, lo: number, hi: number, o: BlockwiseOptions): number[] {
  const { scale, zero } = blockParams(lo, hi, o.bits, o.symmetric);
  const levels = (1 << o.bits) - 1;
  return Array.from(w, (v) => (quantizeValue(Math.min(hi, Math.max(lo, v)), scale, zero, levels) - zero) * scale);
}

/** RTN of W [N, K] along K in blocks, dequantized (min/max ranges). */
function fakeQuantizeRows(w: Float64Array, N: number, K: number, o: BlockwiseOptions): Float64Array {
  const out = new Float64Array(N * K);
  for (let r = 0; r < N; r++) {
    for (let k0 = 0; k0 < K; k0 += o.blockSize) {
      const block = w.subarray(r * K + k0, r * K + Math.min(K, k0 + o.blockSize));
      const lo = Math.fround(Math.min(...block));
      const hi = Math.fround(Math.max(...block));
      out.set(roundBlock(Float32Array.from(block), lo, hi, o), r * K + k0);
    }
  }
  return out;
}

/**
 * The scale search: for α on a grid over [0, 1), s = mean|x|^α / mean|ŵ|^(1−α) normalised by √(max·min) (ŵ: |W|
 * over its block maximum), loss = mean over rows and outputs of (X·Wᵀ − (X/s)·Q(W·s)ᵀ)²; s = 1 is the baseline
 * (α = null). Returns the winning α and its loss.
 */
export function awqScaleReference(
  x: Float32Array,
  n: number,
  K: number,
  ws: { w: Float32Array; N: number }[],
  o: BlockwiseOptions & { grid?: number },
): { alpha: number | null; loss: number } {
  const grid = o.grid ?? 20;
  const xMean = Array.from({ length: K }, (_, k) => {
    let s = 0;
    for (let t = 0; t < n; t++) s += Math.abs(x[t * K + k]);
    return s / n;
  });
  const W = ws.flatMap(({ w }) => Array.from(w));
  const N = W.length / K;
  const wMean = new Array<number>(K).fill(0);
  for (let r = 0; r < N; r++) {
    for (let k0 = 0; k0 < K; k0 += o.blockSize) {
      const k1 = Math.min(K, k0 + o.blockSize);
      const m = Math.max(...W.slice(r * K + k0, r * K + k1).map(Math.abs));
      for (let k = k0; k < k1; k++) if (m > 0) wMean[k] += Math.abs(W[r * K + k]) / m / N;
    }
  }
  const loss = (s: number[]): number => {
    const scaled = Float64Array.from(W, (v, i) => Math.fround(v * s[i % K]));
    const q = fakeQuantizeRows(scaled, N, K, o);
    let sum = 0;
    for (let t = 0; t < n; t++) {
      for (let r = 0; r < N; r++) {
        let y = 0;
        let yq = 0;
        for (let k = 0; k < K; k++) {
          y += x[t * K + k] * W[r * K + k];
          yq += (x[t * K + k] / s[k]) * q[r * K + k];
        }
        sum += (y - yq) ** 2;
      }
    }
    return sum / (n * N);
  };
  let best: { alpha: number | null; loss: number } = { alpha: null, loss: loss(new Array(K).fill(1)) };
  for (let g = 0; g < grid; g++) {
    const alpha = g / grid;
    const s = xMean.map((xm, k) => Math.max(1e-4, Math.max(xm, 1e-8) ** alpha / Math.max(wMean[k], 1e-8) ** (1 - alpha)));
    const norm = Math.sqrt(Math.max(...s) * Math.min(...s));
    const l = loss(s.map((v) => Math.fround(v / norm)));
    if (l < best.loss) best = { alpha, loss: l };
  }
  return best;
}

/**
 * The clipping search: per output row (from `first` on) and block, the range [lo, hi]·(1 − i/grid) for
 * i < grid·maxShrink whose rounding gives the least mean squared block output error over the rows of X; W clipped
 * to the winners.
 */
export function awqClipReference(
  w: Float32Array,
  N: number,
  K: number,
  x: Float32Array,
  n: number,
  o: BlockwiseOptions & { grid?: number; maxShrink?: number; first?: number },
): Float32Array {
  const grid = o.grid ?? 20;
  const steps = Math.max(1, Math.floor(grid * (o.maxShrink ?? 0.5)));
  const out = Float32Array.from(w);
  for (let r = o.first ?? 0; r < N; r++) {
    for (let k0 = 0; k0 < K; k0 += o.blockSize) {
      const k1 = Math.min(K, k0 + o.blockSize);
      const block = w.subarray(r * K + k0, r * K + k1);
      const [lo, hi] = [Math.min(...block), Math.max(...block)];
      let best = { err: Infinity, f: 1 };
      for (let i = 0; i < steps; i++) {
        const f = 1 - i / grid;
        const q = roundBlock(block, lo * f, hi * f, o);
        let err = 0;
        for (let t = 0; t < n; t++) {
          let e = 0;
          for (let k = k0; k < k1; k++) e += x[t * K + k] * (q[k - k0] - block[k - k0]);
          err += e * e;
        }
        if (err < best.err) best = { err, f };
      }
      for (let k = k0; k < k1; k++) out[r * K + k] = Math.min(hi * best.f, Math.max(lo * best.f, w[r * K + k]));
    }
  }
  return out;
}
