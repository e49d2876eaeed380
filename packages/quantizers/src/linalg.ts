/**
 * Dense linear algebra for GPTQ's Hessian work (K up to several thousand).
 * The O(K³) parts are blocked so that almost all flops are products of
 * panels, done by a pluggable A·Bᵀ (onnxruntime's GEMM in the pipeline, plain
 * JS in unit tests). Small diagonal blocks are factored in float64 JS.
 */

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

/** Copies rows r0..r1, columns c0..c1 of a row-major [·, n] matrix into a dense Float32Array. */
function sub(a: Float64Array, n: number, r0: number, r1: number, c0: number, c1: number, transposed = false): Float32Array {
  const rows = r1 - r0;
  const cols = c1 - c0;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) {
    const v = a[(r0 + r) * n + c0 + c];
    if (transposed) out[c * rows + r] = v;
    else out[r * cols + c] = v;
  }
  return out;
}

/** In-place lower Cholesky of a small dense [b, b] block (row-major, float64); false if not PD. */
function cholSmall(a: Float64Array, b: number): boolean {
  for (let j = 0; j < b; j++) {
    let d = a[j * b + j];
    for (let k = 0; k < j; k++) d -= a[j * b + k] ** 2;
    if (!(d > 0)) return false;
    const l = Math.sqrt(d);
    a[j * b + j] = l;
    for (let i = j + 1; i < b; i++) {
      let s = a[i * b + j];
      for (let k = 0; k < j; k++) s -= a[i * b + k] * a[j * b + k];
      a[i * b + j] = s / l;
    }
    for (let k = j + 1; k < b; k++) a[j * b + k] = 0;
  }
  return true;
}

/** Inverse of a small lower-triangular [b, b] block (float64). */
function invLowerSmall(l: Float64Array, b: number): Float64Array {
  const x = new Float64Array(b * b);
  for (let i = 0; i < b; i++) {
    x[i * b + i] = 1 / l[i * b + i];
    for (let j = 0; j < i; j++) {
      let s = 0;
      for (let k = j; k < i; k++) s += l[i * b + k] * x[k * b + j];
      x[i * b + j] = -s / l[i * b + i];
    }
  }
  return x;
}

/**
 * In-place blocked lower Cholesky of a symmetric positive-definite [n, n]
 * matrix (right-looking: factor a diagonal block, solve the panel below it,
 * update the trailing matrix with one GEMM). Returns false if not PD.
 */
export async function choleskyLower(a: Float64Array, n: number, gemm: MatMulABt = matmulABt, block = 256): Promise<boolean> {
  for (let j0 = 0; j0 < n; j0 += block) {
    const j1 = Math.min(n, j0 + block);
    const b = j1 - j0;
    const d = new Float64Array(b * b);
    for (let r = 0; r < b; r++) for (let c = 0; c < b; c++) d[r * b + c] = a[(j0 + r) * n + j0 + c];
    if (!cholSmall(d, b)) return false;
    for (let r = 0; r < b; r++) for (let c = 0; c < b; c++) a[(j0 + r) * n + j0 + c] = d[r * b + c];
    const m = n - j1;
    if (m === 0) continue;
    // Panel: L21 = A21 · L11⁻ᵀ.
    const l11inv = Float32Array.from(invLowerSmall(d, b));
    const panel = await gemm(sub(a, n, j1, n, j0, j1), m, b, l11inv, b);
    for (let r = 0; r < m; r++) for (let c = 0; c < b; c++) a[(j1 + r) * n + j0 + c] = panel[r * b + c];
    // Trailing update: A22 −= L21·L21ᵀ.
    const upd = await gemm(panel, m, b, panel, m);
    for (let r = 0; r < m; r++) {
      const row = (j1 + r) * n + j1;
      for (let c = 0; c < m; c++) a[row + c] -= upd[r * m + c];
    }
  }
  for (let r = 0; r < n; r++) for (let c = r + 1; c < n; c++) a[r * n + c] = 0;
  return true;
}

/**
 * Inverse of an upper-triangular [n, n] matrix, blocked: for each block
 * column j, X[:j, j] = −X[:j, :j] · V[:j, j] · X_jj, two GEMMs per block.
 */
export async function invertUpper(v: Float64Array, n: number, gemm: MatMulABt = matmulABt, block = 256): Promise<Float64Array> {
  const x = new Float64Array(n * n);
  for (let j0 = 0; j0 < n; j0 += block) {
    const j1 = Math.min(n, j0 + block);
    const b = j1 - j0;
    // Diagonal block: invert the upper block as the transpose of a lower inverse.
    const lt = new Float64Array(b * b);
    for (let r = 0; r < b; r++) for (let c = 0; c < b; c++) lt[r * b + c] = v[(j0 + c) * n + j0 + r];
    const ltInv = invLowerSmall(lt, b);
    const xjj = new Float64Array(b * b);
    for (let r = 0; r < b; r++) for (let c = 0; c < b; c++) xjj[r * b + c] = ltInv[c * b + r];
    for (let r = 0; r < b; r++) for (let c = 0; c < b; c++) x[(j0 + r) * n + j0 + c] = xjj[r * b + c];
    if (j0 === 0) continue;
    // T = X[:j0, :j0] · V[:j0, j0:j1]  ([j0, b]); then X[:j0, j0:j1] = −T · X_jj.
    const t = await gemm(sub(x, n, 0, j0, 0, j0), j0, j0, sub(v, n, 0, j0, j0, j1, true), b);
    const xjjT = new Float32Array(b * b);
    for (let r = 0; r < b; r++) for (let c = 0; c < b; c++) xjjT[c * b + r] = xjj[r * b + c];
    const blk = await gemm(t, j0, b, xjjT, b);
    for (let r = 0; r < j0; r++) for (let c = 0; c < b; c++) x[r * n + j0 + c] = -blk[r * b + c];
  }
  return x;
}

/**
 * The upper-triangular U with H⁻¹ = UᵀU (GPTQ's Hinv, torch's
 * cholesky(cholesky_inverse(cholesky(H)), upper=True)), with one Cholesky and
 * one triangular inverse: with P the reversal permutation, PHP = L′L′ᵀ gives
 * H = VVᵀ for the upper V = PL′P, so U = V⁻¹.
 */
export async function upperCholeskyOfInverse(h: Float64Array, n: number, gemm: MatMulABt = matmulABt): Promise<Float64Array | undefined> {
  const r = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) r[i * n + j] = h[(n - 1 - i) * n + (n - 1 - j)];
  if (!(await choleskyLower(r, n, gemm))) return undefined;
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) v[i * n + j] = r[(n - 1 - i) * n + (n - 1 - j)];
  return invertUpper(v, n, gemm);
}
