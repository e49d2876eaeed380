/**
 * cos/sin tables of rotary position embeddings, [maxPositions, rotaryDim/2]:
 * angle(p, i) = p · theta^(−2i/rotaryDim). Computed in float64 and rounded
 * once, which matches HF's float32 tables to ~1 ulp.
 */
export function rotaryTables(maxPositions: number, rotaryDim: number, theta: number): { cos: Float32Array; sin: Float32Array } {
  const half = rotaryDim / 2;
  const cos = new Float32Array(maxPositions * half);
  const sin = new Float32Array(maxPositions * half);
  for (let i = 0; i < half; i++) {
    // HF computes inv_freq in float32; rounding it the same way keeps long-context angles identical.
    const invFreq = Math.fround(1 / Math.pow(theta, (2 * i) / rotaryDim));
    for (let p = 0; p < maxPositions; p++) {
      const angle = Math.fround(p * invFreq);
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}
