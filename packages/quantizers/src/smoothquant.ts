import { int8Tensor, floatTensor, type Model, type Node } from '@alki/onnx';
import type { LinearSite } from './rewrite.js';

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

/** Symmetric int8 per output column of W [K, N]: codes [K, N] and scales [N] (scale = max|w|/127). */
export function int8PerChannel(w: Float32Array, K: number, N: number): { q: Int8Array; scales: Float32Array } {
  const scales = new Float32Array(N);
  for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) scales[n] = Math.max(scales[n], Math.abs(w[k * N + n]));
  for (let n = 0; n < N; n++) scales[n] = scales[n] > 0 ? scales[n] / 127 : 1;
  const q = new Int8Array(K * N);
  for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) q[k * N + n] = Math.max(-127, Math.min(127, Math.round(w[k * N + n] / scales[n])));
  return { q, scales };
}

/**
 * Rewrites one constant-weight MatMul as com.microsoft DynamicQuantizeMatMul:
 * activations are quantized to uint8 per tensor at run time, weights are int8
 * per output channel. Returns the bytes of the new weight tensors.
 */
export function writeDynamicQuantizeMatMul(model: Model, site: LinearSite): { bytes: number; q: Int8Array; scales: Float32Array } {
  const { q, scales } = int8PerChannel(site.weight.data as Float32Array, site.K, site.N);
  const name = site.weight.name;
  const B = int8Tensor(`${name}.int8`, [site.K, site.N], q);
  const S = floatTensor(`${name}.int8_scale`, [site.N], scales);
  model.graph.initializers.push(B, S);
  const node: Node = {
    opType: 'DynamicQuantizeMatMul',
    domain: 'com.microsoft',
    name: `${site.node.name ?? name}_W8A8`,
    inputs: [site.node.inputs[0], B.name, S.name],
    outputs: [site.node.outputs[0]],
    attributes: {},
  };
  model.graph.nodes[model.graph.nodes.indexOf(site.node)] = node;
  return { bytes: q.byteLength + scales.byteLength, q, scales };
}

