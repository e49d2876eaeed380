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
import { Scratch } from './scratch.js';

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

/** Size at or below which a block is factored directly (float64 JS). */
const BASE = 128;

/** Split point of an [n, n] problem: a multiple of 32 near n/2. */
const half = (n: number): number => Math.ceil(n / 2 / 32) * 32;

/** Output panels of a structured product: at least this wide (narrower, calls cost more than the skipped zeros save). */
export const DEFAULT_PANEL = 256;

/** Widest panel {@link panels} makes for a size n (at most 2·panel, rounded up to 32). */
const maxPanel = (panel: number): number => Math.ceil((2 * panel) / 32) * 32;

/** Floats of scratch {@link cholInverseInPlace} needs for size n: its four blocks and two panel-sized copies. */
function scratchFor(n: number, panel: number): number {
  if (n <= BASE) return 0;
  const h = half(n);
  const m = n - h;
  return Math.max(scratchFor(h, panel), 2 * h * h + 2 * m * h + 2 * Math.min(h, maxPanel(panel)) * h + scratchFor(m, panel));
}

/** The lower triangle of the [n, n] block at `off` (row stride ld) into a dense array, zeros above. */
function copyLower(a: Float32Array, off: number, ld: number, n: number, out: Float32Array): void {
  for (let r = 0; r < n; r++) {
    out.set(a.subarray(off + r * ld, off + r * ld + r + 1), r * n);
    out.fill(0, r * n + r + 1, (r + 1) * n);
  }
}

/** Element (r, c) of a matrix is d[off + r·ld + c]. */
interface View {
  d: Float32Array;
  off: number;
  ld: number;
}

/** Rows [r0, r1) × columns [k0, k1) of `v`, dense: `v`'s own memory when already contiguous, else copied into `buf`. */
function block(v: View, r0: number, r1: number, k0: number, k1: number, buf: Float32Array): Float32Array {
  const w = k1 - k0;
  const start = v.off + r0 * v.ld + k0;
  if (w === v.ld || r1 - r0 === 1) return v.d.subarray(start, start + (r1 - r0) * w);
  for (let r = r0; r < r1; r++) buf.set(v.d.subarray(v.off + r * v.ld + k0, v.off + r * v.ld + k1), (r - r0) * w);
  return buf.subarray(0, (r1 - r0) * w);
}

/** Splits [0, n) into about equal panels at least `panel` wide (multiples of 32 but the last). */
function panels(n: number, panel: number): [number, number][] {
  const count = Math.max(1, Math.floor(n / panel));
  const width = Math.ceil(n / count / 32) * 32;
  const out: [number, number][] = [];
  for (let p0 = 0; p0 < n; p0 += width) out.push([p0, Math.min(n, p0 + width)]);
  return out;
}

/** Work buffers of a panel product: a copy of A's part, of B's part, and one result panel. */
interface PanelBuffers {
  a: Float32Array;
  b: Float32Array;
  part: Float32Array;
}

/**
 * out [m, n] (dense) = A·Bᵀ for A [m, k], B [n, k] where, for each output column panel [c0, c1), B's rows are zero
 * outside inputs `span(c0, c1)`: with a triangular B, about half the multiply-adds of a full product.
 */
async function panelColumns(
  A: View,
  m: number,
  B: View,
  n: number,
  span: (c0: number, c1: number) => [number, number],
  out: Float32Array,
  buf: PanelBuffers,
  gemm: MatMulABt,
  panel: number,
): Promise<void> {
  for (const [c0, c1] of panels(n, panel)) {
    const [k0, k1] = span(c0, c1);
    const w = c1 - c0;
    const ap = block(A, 0, m, k0, k1, buf.a);
    const bp = block(B, c0, c1, k0, k1, buf.b);
    if (w === n) await gemm(ap, m, k1 - k0, bp, w, out);
    else {
      const part = await gemm(ap, m, k1 - k0, bp, w, buf.part.subarray(0, m * w));
      for (let r = 0; r < m; r++) out.set(part.subarray(r * w, (r + 1) * w), r * n + c0);
    }
  }
}

/**
 * out [m, n] (dense) = L·Bᵀ for L [m, m] lower triangular (read below and on its diagonal only) and B [n, m]: output
 * row panel [r0, r1) reads L's columns < r1.
 */
async function lowerPanelRows(
  L: View,
  m: number,
  B: View,
  n: number,
  out: Float32Array,
  buf: Omit<PanelBuffers, 'part'>,
  gemm: MatMulABt,
  panel: number,
): Promise<void> {
  for (const [r0, r1] of panels(m, panel)) {
    const lp = buf.a.subarray(0, (r1 - r0) * r1);
    for (let r = r0; r < r1; r++) {
      lp.set(L.d.subarray(L.off + r * L.ld, L.off + r * L.ld + r + 1), (r - r0) * r1);
      lp.fill(0, (r - r0) * r1 + r + 1, (r - r0 + 1) * r1);
    }
    await gemm(lp, r1 - r0, r1, block(B, 0, n, 0, r1, buf.b), n, out.subarray(r0 * n, r1 * n));
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
 * L⁻¹ = [L11⁻¹ 0; −L22⁻¹·L21·L11⁻¹ L22⁻¹]. Four products per level, each
 * with a triangular operand or a symmetric result: done in output panels that
 * skip the zero half, ~n³/3 multiply-adds in all instead of ~2n³/3.
 * Returns false when A is not positive definite.
 */
async function cholInverseInPlace(a: Float32Array, off: number, ld: number, n: number, gemm: MatMulABt, ws: Scratch, panel: number): Promise<boolean> {
  if (n <= BASE) return cholInverseSmall(a, off, ld, n);
  const h = half(n);
  const m = n - h;
  const off21 = off + h * ld;
  const off22 = off21 + h;
  if (!(await cholInverseInPlace(a, off, ld, h, gemm, ws, panel))) return false;
  const mark = ws.mark;
  const l11i = ws.take(h * h);
  const mh1 = ws.take(h * h);
  const mh2 = ws.take(m * h);
  const mh3 = ws.take(m * h);
  const wide = Math.min(h, maxPanel(panel)) * h;
  const narrow = { a: mh1, b: ws.take(wide), part: ws.take(wide) };
  copyLower(a, off, ld, h, l11i);
  // L21 = A21·L11⁻ᵀ [m, h] into mh2: L11⁻¹ is lower triangular, so output column c reads A21's columns ≤ c.
  const l21 = mh2;
  await panelColumns({ d: a, off: off21, ld }, m, { d: l11i, off: 0, ld: h }, h, (_, c1) => [0, c1], l21, narrow, gemm, panel);
  // A22 −= L21·L21ᵀ, lower triangle only: output rows [r0, r1) need L21's rows < r1 (contiguous).
  for (const [r0, r1] of panels(m, panel)) {
    const prod = await gemm(l21.subarray(r0 * h, r1 * h), r1 - r0, h, l21.subarray(0, r1 * h), r1, mh3.subarray(0, (r1 - r0) * r1));
    for (let r = r0; r < r1; r++) for (let c = 0; c <= r; c++) a[off22 + r * ld + c] -= prod[(r - r0) * r1 + c];
  }
  if (!(await cholInverseInPlace(a, off22, ld, m, gemm, ws, panel))) return false;
  // L11⁻ᵀ (upper triangular, into mh1), so that A·Bᵀ gives T = L21·L11⁻¹ [m, h] (into mh3): column c reads L21's columns ≥ c.
  const l11t = transpose(l11i, h, h, mh1);
  await panelColumns({ d: l21, off: 0, ld: h }, m, { d: l11t, off: 0, ld: h }, h, (c0) => [c0, h], mh3, { ...narrow, a: l11i }, gemm, panel);
  const tt = transpose(mh3, m, h, mh1.subarray(0, h * m)); // [h, m]
  // L22⁻¹·T [m, h] into mh3 (free now).
  const c = mh3;
  await lowerPanelRows({ d: a, off: off22, ld }, m, { d: tt, off: 0, ld: m }, h, c, { a: narrow.b, b: mh2 }, gemm, panel);
  for (let r = 0; r < m; r++) for (let j = 0; j < h; j++) a[off21 + r * ld + j] = -c[r * h + j];
  ws.release(mark);
  return true;
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
  o: { overwrite?: boolean; scratch?: Scratch; /** Output panel width of the structured products (default {@link DEFAULT_PANEL}). */ panel?: number } = {},
): Promise<Float32Array | undefined> {
  const u = o.overwrite && h instanceof Float32Array ? h : Float32Array.from(h);
  const scratch = o.scratch ?? new Scratch();
  const panel = o.panel ?? DEFAULT_PANEL;
  if (!(Number.isInteger(panel) && panel >= 32)) throw new Error(`upperCholeskyOfInverse: panel must be a whole number ≥ 32, got ${panel}`);
  scratch.reserve(scratchFor(n, panel));
  // Reversing the element order maps (r, c) to (n−1−r, n−1−c).
  u.subarray(0, n * n).reverse();
  try {
    if (!(await cholInverseInPlace(u, 0, n, n, gemm, scratch, panel))) return undefined;
  } finally {
    scratch.release(0);
  }
  u.subarray(0, n * n).reverse();
  // The lower triangle of L′⁻¹ became the upper one; below the diagonal is stale input.
  for (let r = 1; r < n; r++) u.fill(0, r * n, r * n + r);
  return u;
}
