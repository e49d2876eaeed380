import { int8Tensor, floatTensor, uint8Tensor, type Model, type Node } from '@alki/onnx';
import type { LinearSite } from './graph/rewrite.js';

/**
 * SmoothQuant's smoothing factors (Xiao et al. 2022, eq. 4) for linears that
 * read one input: s_j = max|x_j|^α / max|w_j|^(1−α), with max|w_j| over every
 * output of every linear in the group (W given as [K, N] MatMul weights).
 * Dividing X by s and multiplying W's rows by s moves activation outliers
 * into the weights; α = 0.5 splits the difficulty evenly.
 */
export function smoothingFactors(xAbsMax: Float32Array, weights: { data: Float32Array; N: number }[], alpha: number): Float32Array {
  const K = xAbsMax.length;
  const wMax = new Float32Array(K);
  for (const { data, N } of weights) {
    for (let k = 0; k < K; k++) {
      let m = wMax[k];
      for (let n = 0; n < N; n++) m = Math.max(m, Math.abs(data[k * N + n]));
      wMax[k] = m;
    }
  }
  const s = new Float32Array(K);
  for (let k = 0; k < K; k++) {
    const v = Math.pow(Math.max(xAbsMax[k], 1e-5), alpha) / Math.pow(Math.max(wMax[k], 1e-5), 1 - alpha);
    s[k] = Number.isFinite(v) && v > 1e-5 ? v : 1e-5;
  }
  return s;
}

/**
 * How W8A8 weights are stored for DynamicQuantizeMatMul, whose activations are
 * uint8 per tensor at run time. onnxruntime picks its integer kernel by the
 * weight type, and on x86 without VNNI the u8×s8 kernel adds pairs of products
 * in 16 bits (vpmaddubsw), which saturates for |codes| near 127:
 * - `s8`: int8 codes in ±127 — exact on VNNI (AVX-512 VNNI, AVX-VNNI), arm64
 *   and wasm; saturates on AVX2-only and AVX-512-without-VNNI x86.
 * - `s7`: int8 codes in ±63 (onnxruntime's `reduce_range`): 2·255·63 < 2¹⁵, so
 *   the same fast kernel cannot saturate anywhere; one bit less of weight precision.
 * - `u8`: uint8 codes with zero point 128: onnxruntime's u8×u8 kernel widens to
 *   16 bits first, exact everywhere, but has no VNNI/AMX path (slower prefill).
 * See docs/decisions.md for the measured trade.
 */
export type W8A8Format = 's8' | 's7' | 'u8';
export const W8A8_FORMATS: readonly W8A8Format[] = ['s8', 's7', 'u8'];
/** Safe on every CPU at the fast kernel's speed (docs/decisions.md). */
export const DEFAULT_W8A8_FORMAT: W8A8Format = 's7';

/** The stored type and largest code magnitude of a format (what decides whether a kernel can saturate). */
export function w8a8Codes(format: W8A8Format): { type: 'int8' | 'uint8'; maxCode: number } {
  return format === 'u8' ? { type: 'uint8', maxCode: 127 } : { type: 'int8', maxCode: format === 's7' ? 63 : 127 };
}

/** Symmetric per output column of W [K, N]: codes in ±qmax [K, N] and scales [N] (scale = max|w|/qmax). */
export function int8PerChannel(w: Float32Array, K: number, N: number, qmax = 127): { q: Int8Array; scales: Float32Array } {
  const scales = new Float32Array(N);
  for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) scales[n] = Math.max(scales[n], Math.abs(w[k * N + n]));
  for (let n = 0; n < N; n++) scales[n] = scales[n] > 0 ? scales[n] / qmax : 1;
  const q = new Int8Array(K * N);
  for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) q[k * N + n] = Math.max(-qmax, Math.min(qmax, Math.round(w[k * N + n] / scales[n])));
  return { q, scales };
}

/**
 * Rewrites one constant-weight MatMul as com.microsoft DynamicQuantizeMatMul:
 * activations are quantized to uint8 per tensor at run time, weights are
 * stored per output channel in `format` (see {@link W8A8Format}). Returns the
 * bytes of the new weight tensors and the signed codes (value = q · scale).
 */
export function writeDynamicQuantizeMatMul(model: Model, site: LinearSite, format: W8A8Format = 's8'): { bytes: number; q: Int8Array; scales: Float32Array } {
  const { q, scales } = int8PerChannel(site.weight.data as Float32Array, site.K, site.N, format === 's7' ? 63 : 127);
  const name = site.weight.name;
  const S = floatTensor(`${name}.int8_scale`, [site.N], scales);
  const tensors =
    format === 'u8'
      ? [
          uint8Tensor(
            `${name}.uint8`,
            [site.K, site.N],
            Uint8Array.from(q, (v) => v + 128),
          ),
          S,
          uint8Tensor(`${name}.uint8_zero_point`, [site.N], new Uint8Array(site.N).fill(128)),
        ]
      : [int8Tensor(`${name}.int8`, [site.K, site.N], q), S];
  model.graph.initializers.push(...tensors);
  const node: Node = {
    opType: 'DynamicQuantizeMatMul',
    domain: 'com.microsoft',
    name: `${site.node.name ?? name}_W8A8`,
    inputs: [site.node.inputs[0], ...tensors.map((t) => t.name)],
    outputs: [site.node.outputs[0]],
    attributes: {},
  };
  model.graph.nodes[model.graph.nodes.indexOf(site.node)] = node;
  return { bytes: tensors.reduce((sum, t) => sum + t.data.byteLength, 0), q, scales };
}
