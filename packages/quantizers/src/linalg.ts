/**
 * Small dense linear algebra on row-major Float64Array matrices, for the
 * Hessian work of GPTQ (K up to a few thousand).
 */

/** In-place lower Cholesky factor of a symmetric positive-definite [n, n] matrix; returns false if not PD. */
export function choleskyLower(a: Float64Array, n: number): boolean {
  for (let j = 0; j < n; j++) {
    const rj = j * n;
    let d = a[rj + j];
    for (let k = 0; k < j; k++) d -= a[rj + k] * a[rj + k];
    if (!(d > 0)) return false;
    const ljj = Math.sqrt(d);
    a[rj + j] = ljj;
    const inv = 1 / ljj;
    for (let i = j + 1; i < n; i++) {
      const ri = i * n;
      let s = a[ri + j];
      for (let k = 0; k < j; k++) s -= a[ri + k] * a[rj + k];
      a[ri + j] = s * inv;
    }
    for (let k = j + 1; k < n; k++) a[rj + k] = 0;
  }
  return true;
}

/** Inverse of an upper-triangular [n, n] matrix (a new matrix). */
export function invertUpper(u: Float64Array, n: number): Float64Array {
  const x = new Float64Array(n * n);
  for (let i = n - 1; i >= 0; i--) {
    const ri = i * n;
    x[ri + i] = 1 / u[ri + i];
    for (let j = i + 1; j < n; j++) {
      // x[i][j] = −(Σ_{k=i+1..j} u[i][k]·x[k][j]) / u[i][i]
      let s = 0;
      for (let k = i + 1; k <= j; k++) s += u[ri + k] * x[k * n + j];
      x[ri + j] = -s * x[ri + i];
    }
  }
  return x;
}

/**
 * The upper-triangular U with H⁻¹ = UᵀU (what GPTQ calls Hinv, torch's
 * cholesky(cholesky_inverse(cholesky(H)), upper=True)), computed with one
 * Cholesky and one triangular inverse: with P the reversal permutation,
 * PHP = L′L′ᵀ gives H = VVᵀ for the upper V = PL′P, so U = V⁻¹.
 */
export function upperCholeskyOfInverse(h: Float64Array, n: number): Float64Array | undefined {
  const r = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) r[i * n + j] = h[(n - 1 - i) * n + (n - 1 - j)];
  if (!choleskyLower(r, n)) return undefined;
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) v[i * n + j] = r[(n - 1 - i) * n + (n - 1 - j)];
  return invertUpper(v, n);
}

/** C = A·Bᵀ for A [m, k] and B [n, k] (both rows contiguous in k): the layer output X·Wᵀ. */
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
