/**
 * Dense linear algebra for GPTQ's Hessian work (K up to several thousand).
 * The O(K³) parts are recursive 2×2 block algorithms whose flops are a few
 * large products, done by a pluggable A·Bᵀ (onnxruntime's GEMM in the
 * pipeline, plain JS in unit tests); only blocks of at most {@link BASE}
 * rows are factored in float64 JS. Large matrices are float32, as in the
 * reference GPTQ (torch float32 Cholesky).
 */

import { transpose } from '@alki/onnx';

/** C = A·Bᵀ for A [m, k] and B [n, k]. */
export type MatMulABt = (a: Float32Array, m: number, k: number, b: Float32Array, n: number) => Float32Array | Promise<Float32Array>;

/** Plain JS A·Bᵀ (both operands row-major with k contiguous). */
export function matmulABt(a: Float32Array, m: number, k: number, b: Float32Array, n: number): Float32Array {
  const c = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    const ai = i * k;
    for (let j = 0; j < n; j++) {
      const bj = j * k;
      let s = 0;
      for (let t = 0; t < k; t++) s += a[ai + t] * b[bj + t];
      c[i * n + j] = s;
    }
  }
  return c;
}

/** Size at or below which a block is factored directly (float64 JS). */
const BASE = 128;

/** Rows r0..r0+rows, columns c0..c0+cols of a row-major [·, n] matrix, as a dense copy. */
function block(a: Float32Array, n: number, r0: number, rows: number, c0: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) out.set(a.subarray((r0 + r) * n + c0, (r0 + r) * n + c0 + cols), r * cols);
  return out;
}

/** L⁻¹ for the lower Cholesky factor L of a small SPD block, in float64; undefined if not PD. */
function cholInverseSmall(a: Float32Array, n: number): Float32Array | undefined {
  const l = Float64Array.from(a);
  for (let j = 0; j < n; j++) {
    let d = l[j * n + j];
    for (let k = 0; k < j; k++) d -= l[j * n + k] ** 2;
    if (!(d > 0)) return undefined;
    const s = Math.sqrt(d);
    l[j * n + j] = s;
    for (let i = j + 1; i < n; i++) {
      let v = l[i * n + j];
      for (let k = 0; k < j; k++) v -= l[i * n + k] * l[j * n + k];
      l[i * n + j] = v / s;
    }
  }
  const x = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    x[i * n + i] = 1 / l[i * n + i];
    for (let j = 0; j < i; j++) {
      let v = 0;
      for (let k = j; k < i; k++) v += l[i * n + k] * x[k * n + j];
      x[i * n + j] = -v / l[i * n + i];
    }
  }
  return Float32Array.from(x);
}

/**
 * L⁻¹ where A = LLᵀ (lower Cholesky) of a symmetric positive-definite
 * [n, n] matrix, without forming L: with A = [A11 ·; A21 A22],
 * L21 = A21·L11⁻ᵀ, S = A22 − L21·L21ᵀ = L22·L22ᵀ, and
 * L⁻¹ = [L11⁻¹ 0; −L22⁻¹·L21·L11⁻¹ L22⁻¹]. Four products per level.
 * Returns undefined when A is not positive definite.
 */
export async function cholInverseLower(a: Float32Array, n: number, gemm: MatMulABt = matmulABt): Promise<Float32Array | undefined> {
  if (n <= BASE) return cholInverseSmall(a, n);
  const h = Math.ceil(n / 2 / 32) * 32;
  const m = n - h;
  const l11i = await cholInverseLower(block(a, n, 0, h, 0, h), h, gemm);
  if (!l11i) return undefined;
  const l21 = await gemm(block(a, n, h, m, 0, h), m, h, l11i, h);
  const s = block(a, n, h, m, h, m);
  const prod = await gemm(l21, m, h, l21, m);
  for (let i = 0; i < s.length; i++) s[i] -= prod[i];
  const l22i = await cholInverseLower(s, m, gemm);
  if (!l22i) return undefined;
  const t = await gemm(l21, m, h, transpose(l11i, h, h), h); // L21·L11⁻¹ [m, h]
  const c = await gemm(l22i, m, m, transpose(t, m, h), h); // L22⁻¹·L21·L11⁻¹ [m, h]
  const out = new Float32Array(n * n);
  for (let r = 0; r < h; r++) out.set(l11i.subarray(r * h, r * h + h), r * n);
  for (let r = 0; r < m; r++) {
    const row = (h + r) * n;
    for (let j = 0; j < h; j++) out[row + j] = -c[r * h + j];
    out.set(l22i.subarray(r * m, r * m + m), row + h);
  }
  return out;
}

/**
 * The upper-triangular U with H⁻¹ = UᵀU (GPTQ's Hinv, torch's
 * cholesky(cholesky_inverse(cholesky(H)), upper=True)): with P the reversal
 * permutation, PHP = L′L′ᵀ gives H = VVᵀ for the upper V = PL′P, so
 * U = V⁻¹ = P·L′⁻¹·P — one recursive Cholesky-inverse.
 */
export async function upperCholeskyOfInverse(h: Float32Array | Float64Array, n: number, gemm: MatMulABt = matmulABt): Promise<Float32Array | undefined> {
  const r = new Float32Array(n * n);
  const last = n * n - 1;
  for (let i = 0; i < n * n; i++) r[i] = h[last - i];
  const li = await cholInverseLower(r, n, gemm);
  if (!li) return undefined;
  const u = new Float32Array(n * n);
  for (let i = 0; i < n * n; i++) u[i] = li[last - i];
  return u;
}
