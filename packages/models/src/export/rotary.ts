import type { RopeScaling } from '../config.js';

/**
 * Inverse frequencies θ^(−2i/d) of rotary embeddings, rounded to float32 as HF
 * computes them, with the static rope_scaling variants: linear divides every
 * frequency by the factor; llama3 divides only the low frequencies and blends
 * the band between. (Dynamic scaling depends on the input: see the decoder.)
 */
export function inverseFrequencies(rotaryDim: number, theta: number, scaling?: RopeScaling): Float64Array {
  const half = rotaryDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = Math.fround(1 / Math.pow(theta, (2 * i) / rotaryDim));
  if (scaling?.type === 'linear') for (let i = 0; i < half; i++) inv[i] = Math.fround(inv[i] / scaling.factor);
  if (scaling?.type === 'llama3') {
    const { factor, lowFreqFactor, highFreqFactor, originalMaxPositions } = scaling;
    const lowWavelen = originalMaxPositions / lowFreqFactor;
    const highWavelen = originalMaxPositions / highFreqFactor;
    for (let i = 0; i < half; i++) {
      const wavelen = (2 * Math.PI) / inv[i];
      if (wavelen < highWavelen) continue;
      if (wavelen > lowWavelen) inv[i] = Math.fround(inv[i] / factor);
      else {
        const smooth = (originalMaxPositions / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        inv[i] = Math.fround((1 - smooth) * (inv[i] / factor) + smooth * inv[i]);
      }
    }
  }
  return inv;
}

/**
 * cos/sin tables of rotary position embeddings, [maxPositions, rotaryDim/2]:
 * angle(p, i) = p · invFreq(i), computed in float64 from float32 frequencies
 * and rounded once, which matches HF's float32 tables to ~1 ulp.
 */
export function rotaryTables(maxPositions: number, rotaryDim: number, theta: number, scaling?: RopeScaling): { cos: Float32Array; sin: Float32Array } {
  const half = rotaryDim / 2;
  const inv = inverseFrequencies(rotaryDim, theta, scaling);
  const cos = new Float32Array(maxPositions * half);
  const sin = new Float32Array(maxPositions * half);
  for (let i = 0; i < half; i++) {
    for (let p = 0; p < maxPositions; p++) {
      const angle = Math.fround(p * inv[i]);
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}
