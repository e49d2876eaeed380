/**
 * Dense linear algebra for GPTQ's Hessian work (K up to several thousand).
 * The O(K³) parts are recursive 2×2 block algorithms whose flops are a few
 * large products, done by a pluggable A·Bᵀ (onnxruntime's GEMM in the
 * pipeline, plain JS in unit tests); only blocks of at most {@link BASE}
 * rows are factored in float64 JS. Large matrices are float32, as in the
 * reference GPTQ (torch float32 Cholesky). Work happens in place and in a
 * reusable {@link Scratch}: fresh memory is slow to touch (see slice-sessions.ts).
 */

import { transpose } from '@alki/onnx';

/** C = A·Bᵀ for A [m, k] and B [n, k], into `out` when given (a new array otherwise). */
export type MatMulABt = (a: Float32Array, m: number, k: number, b: Float32Array, n: number, out?: Float32Array) => Float32Array | Promise<Float32Array>;

/** Plain JS A·Bᵀ (both operands row-major with k contiguous). */
export function matmulABt(a: Float32Array, m: number, k: number, b: Float32Array, n: number, out: Float32Array = new Float32Array(m * n)): Float32Array {
  for (let i = 0; i < m; i++) {
    const ai = i * k;
    for (let j = 0; j < n; j++) {
      const bj = j * k;
      let s = 0;
      for (let t = 0; t < k; t++) s += a[ai + t] * b[bj + t];
      out[i * n + j] = s;
    }
  }
  return out;
}

/**
 * Work memory kept between calls: one growing buffer handed out as a stack
 * of sub-arrays. Callers that quantize layer after layer pass the same one.
 */
export class Scratch {
  private buf = new Float32Array(0);
  private top = 0;

  /** Makes room for `length` floats above the current top (only while nothing is taken). */
  reserve(length: number): void {
    if (this.top !== 0) throw new Error('Scratch.reserve while buffers are taken');
    if (this.buf.length < length) this.buf = new Float32Array(length);
  }

  /** `length` floats (not zeroed) until {@link release}(mark). */
  take(length: number): Float32Array {
    if (this.top + length > this.buf.length) throw new Error('Scratch: reserve more before taking');
    const out = this.buf.subarray(this.top, this.top + length);
    this.top += length;
    return out;
  }

  get mark(): number {
    return this.top;
  }

  release(mark: number): void {
    this.top = mark;
  }
}

/** Size at or below which a block is factored directly (float64 JS). */
const BASE = 128;

/** Split point of an [n, n] problem: a multiple of 32 near n/2. */
const half = (n: number): number => Math.ceil(n / 2 / 32) * 32;

/** Floats of scratch {@link cholInverseInPlace} needs for size n. */
function scratchFor(n: number): number {
  if (n <= BASE) return 0;
  const h = half(n);
  const m = n - h;
  return Math.max(scratchFor(h), h * h + 2 * m * h + m * m + scratchFor(m));
}

/** The lower triangle of the [n, n] block at `off` (row stride ld) into a dense array, zeros above. */
function copyLower(a: Float32Array, off: number, ld: number, n: number, out: Float32Array): void {
  for (let r = 0; r < n; r++) {
    out.set(a.subarray(off + r * ld, off + r * ld + r + 1), r * n);
    out.fill(0, r * n + r + 1, (r + 1) * n);
  }
}

/** L⁻¹ of the lower Cholesky factor of the small SPD block at `off`, in float64, written over its lower triangle. */
function cholInverseSmall(a: Float32Array, off: number, ld: number, n: number): boolean {
  const l = new Float64Array(n * n);
  for (let r = 0; r < n; r++) for (let c = 0; c <= r; c++) l[r * n + c] = a[off + r * ld + c];
  for (let j = 0; j < n; j++) {
    let d = l[j * n + j];
    for (let k = 0; k < j; k++) d -= l[j * n + k] ** 2;
    if (!(d > 0)) return false;
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
  for (let r = 0; r < n; r++) for (let c = 0; c <= r; c++) a[off + r * ld + c] = x[r * n + c];
  return true;
}

/**
 * L⁻¹ where A = LLᵀ (lower Cholesky) of a symmetric positive-definite
 * [n, n] block (at `off`, row stride `ld`; only its lower triangle is read),
 * written over that lower triangle, without forming L: with
 * A = [A11 ·; A21 A22], L21 = A21·L11⁻ᵀ, S = A22 − L21·L21ᵀ = L22·L22ᵀ, and
 * L⁻¹ = [L11⁻¹ 0; −L22⁻¹·L21·L11⁻¹ L22⁻¹]. Four products per level.
 * Returns false when A is not positive definite.
 */
async function cholInverseInPlace(a: Float32Array, off: number, ld: number, n: number, gemm: MatMulABt, ws: Scratch): Promise<boolean> {
  if (n <= BASE) return cholInverseSmall(a, off, ld, n);
  const h = half(n);
  const m = n - h;
  const off21 = off + h * ld;
  const off22 = off21 + h;
  if (!(await cholInverseInPlace(a, off, ld, h, gemm, ws))) return false;
  const mark = ws.mark;
  const l11i = ws.take(h * h);
  const mh1 = ws.take(m * h);
  const mh2 = ws.take(m * h);
  const mm = ws.take(m * m);
  copyLower(a, off, ld, h, l11i);
  for (let r = 0; r < m; r++) mh1.set(a.subarray(off21 + r * ld, off21 + r * ld + h), r * h);
  const l21 = await gemm(mh1, m, h, l11i, h, mh2); // A21·L11⁻ᵀ
  const prod = await gemm(l21, m, h, l21, m, mm);
  for (let r = 0; r < m; r++) for (let c = 0; c <= r; c++) a[off22 + r * ld + c] -= prod[r * m + c];
  if (!(await cholInverseInPlace(a, off22, ld, m, gemm, ws))) return false;
  // L11⁻ᵀ in place (square), so that A·Bᵀ products give L21·L11⁻¹.
  for (let r = 0; r < h; r++) for (let c = r + 1; c < h; c++) [l11i[r * h + c], l11i[c * h + r]] = [l11i[c * h + r], l11i[r * h + c]];
  const t = await gemm(l21, m, h, l11i, h, mh1); // L21·L11⁻¹ [m, h]
  const tt = transpose(t, m, h, mh2); // [h, m]
  copyLower(a, off22, ld, m, mm); // L22⁻¹
  const c = await gemm(mm, m, m, tt, h, mh1); // L22⁻¹·L21·L11⁻¹ [m, h]
  for (let r = 0; r < m; r++) for (let j = 0; j < h; j++) a[off21 + r * ld + j] = -c[r * h + j];
  ws.release(mark);
  return true;
}

/** Reverses a [n, n] matrix's element order in place: (r, c) ↔ (n−1−r, n−1−c). */
function reverse(a: Float32Array | Float64Array): void {
  for (let i = 0, j = a.length - 1; i < j; i++, j--) [a[i], a[j]] = [a[j], a[i]];
}

/**
 * The upper-triangular U with H⁻¹ = UᵀU (GPTQ's Hinv, torch's
 * cholesky(cholesky_inverse(cholesky(H)), upper=True)): with P the reversal
 * permutation, PHP = L′L′ᵀ gives H = VVᵀ for the upper V = PL′P, so
 * U = V⁻¹ = P·L′⁻¹·P — one recursive Cholesky-inverse. With `overwrite`,
 * U is computed in `h` itself (a Float32Array) and returned.
 */
export async function upperCholeskyOfInverse(
  h: Float32Array | Float64Array,
  n: number,
  gemm: MatMulABt = matmulABt,
  o: { overwrite?: boolean; scratch?: Scratch } = {},
): Promise<Float32Array | undefined> {
  const u = o.overwrite && h instanceof Float32Array ? h : Float32Array.from(h);
  const scratch = o.scratch ?? new Scratch();
  scratch.reserve(scratchFor(n));
  reverse(u);
  try {
    if (!(await cholInverseInPlace(u, 0, n, n, gemm, scratch))) return undefined;
  } finally {
    scratch.release(0);
  }
  reverse(u);
  // The lower triangle of L′⁻¹ became the upper one; below the diagonal is stale input.
  for (let r = 1; r < n; r++) u.fill(0, r * n, r * n + r);
  return u;
}
