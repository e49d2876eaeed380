import type { HfModel } from '../src/index.js';

/**
 * A float64 Llama-family forward pass written from HF's modeling_llama /
 * modeling_mistral / modeling_qwen2 semantics (RMSNorm, rotate_half RoPE with
 * linear/llama3 scaling, repeat_kv GQA, causal softmax attention with an
 * optional sliding window, biases where present, SwiGLU, tied or untied head). Independent of the ONNX graph: tests compare
 * the two. Returns logits [seq, vocab].
 */
export function llamaReference(hf: HfModel, ids: number[]): Float64Array {
  const c = hf.config;
  const W = (name: string) => Float64Array.from(hf.weights.get(name).data);
  const has = (name: string) => hf.weights.has(name);
  const S = ids.length;
  const H = c.hiddenSize;
  const hd = c.headDim;
  const linear = (x: Float64Array, rows: number, name: string, out: number, inp: number, bias?: string) => {
    const w = W(name);
    const b = bias && has(bias) ? W(bias) : undefined;
    const y = new Float64Array(rows * out);
    for (let r = 0; r < rows; r++) for (let o = 0; o < out; o++) {
      let s = b ? b[o] : 0;
      for (let i = 0; i < inp; i++) s += x[r * inp + i] * w[o * inp + i];
      y[r * out + o] = s;
    }
    return y;
  };
  const rms = (x: Float64Array, name: string) => {
    const w = W(name);
    const y = new Float64Array(x.length);
    for (let r = 0; r < S; r++) {
      let ss = 0;
      for (let i = 0; i < H; i++) ss += x[r * H + i] ** 2;
      const inv = 1 / Math.sqrt(ss / H + c.rmsNormEps);
      // Gemma: x̂·(1 + w).
      for (let i = 0; i < H; i++) y[r * H + i] = x[r * H + i] * inv * (c.gemmaNorm ? 1 + w[i] : w[i]);
    }
    return y;
  };
  // Inverse frequencies as HF's rope init functions define them (default, linear, llama3).
  const invFreq = Array.from({ length: hd / 2 }, (_, i) => {
    const r = c.ropeScaling;
    // Dynamic NTK: a larger base once the sequence is longer than max_position_embeddings.
    const base = r?.type === 'dynamic' && S > c.maxPositions ? c.ropeTheta * ((r.factor * S) / c.maxPositions - (r.factor - 1)) ** (hd / (hd - 2)) : c.ropeTheta;
    const f = 1 / Math.pow(base, (2 * i) / hd);
    if (!r || r.type === 'dynamic') return f;
    if (r.type === 'linear') return f / r.factor;
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < r.originalMaxPositions / r.highFreqFactor) return f;
    if (wavelen > r.originalMaxPositions / r.lowFreqFactor) return f / r.factor;
    const smooth = (r.originalMaxPositions / wavelen - r.lowFreqFactor) / (r.highFreqFactor - r.lowFreqFactor);
    return (1 - smooth) * (f / r.factor) + smooth * f;
  });
  const rope = (x: Float64Array, heads: number) => {
    const half = hd / 2;
    for (let s = 0; s < S; s++) for (let h = 0; h < heads; h++) {
      const base = s * heads * hd + h * hd;
      for (let i = 0; i < half; i++) {
        const ang = s * invFreq[i];
        const a = x[base + i];
        const b = x[base + i + half];
        x[base + i] = a * Math.cos(ang) - b * Math.sin(ang);
        x[base + i + half] = b * Math.cos(ang) + a * Math.sin(ang);
      }
    }
  };
  const emb = W('model.embed_tokens.weight');
  let h = new Float64Array(S * H);
  ids.forEach((id, s) => h.set(emb.subarray(id * H, (id + 1) * H), s * H));
  if (c.gemmaNorm) h = h.map((v) => v * Math.sqrt(H));
  const nRep = c.numHeads / c.numKvHeads;
  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}`;
    const x = rms(h, `${p}.input_layernorm.weight`);
    const q = linear(x, S, `${p}.self_attn.q_proj.weight`, c.numHeads * hd, H, `${p}.self_attn.q_proj.bias`);
    const k = linear(x, S, `${p}.self_attn.k_proj.weight`, c.numKvHeads * hd, H, `${p}.self_attn.k_proj.bias`);
    const v = linear(x, S, `${p}.self_attn.v_proj.weight`, c.numKvHeads * hd, H, `${p}.self_attn.v_proj.bias`);
    rope(q, c.numHeads);
    rope(k, c.numKvHeads);
    const ctx = new Float64Array(S * c.numHeads * hd);
    for (let hh = 0; hh < c.numHeads; hh++) {
      const kvh = Math.floor(hh / nRep);
      for (let i = 0; i < S; i++) {
        const scores = new Float64Array(i + 1);
        let max = -Infinity;
        for (let j = 0; j <= i; j++) {
          // Mistral's sliding window: keys at distance ≥ window are invisible.
          if (c.slidingWindow && i - j >= c.slidingWindow) {
            scores[j] = -Infinity;
            continue;
          }
          let s = 0;
          for (let d = 0; d < hd; d++) s += q[i * c.numHeads * hd + hh * hd + d] * k[j * c.numKvHeads * hd + kvh * hd + d];
          scores[j] = s / Math.sqrt(hd);
          max = Math.max(max, scores[j]);
        }
        let sum = 0;
        for (let j = 0; j <= i; j++) sum += (scores[j] = scores[j] === -Infinity ? 0 : Math.exp(scores[j] - max));
        for (let j = 0; j <= i; j++) for (let d = 0; d < hd; d++) ctx[i * c.numHeads * hd + hh * hd + d] += (scores[j] / sum) * v[j * c.numKvHeads * hd + kvh * hd + d];
      }
    }
    const o = linear(ctx, S, `${p}.self_attn.o_proj.weight`, H, c.numHeads * hd, `${p}.self_attn.o_proj.bias`);
    h = h.map((val, i) => val + o[i]);
    const x2 = rms(h, `${p}.post_attention_layernorm.weight`);
    const I = c.intermediateSize;
    const g = linear(x2, S, `${p}.mlp.gate_proj.weight`, I, H, `${p}.mlp.gate_proj.bias`);
    const u = linear(x2, S, `${p}.mlp.up_proj.weight`, I, H, `${p}.mlp.up_proj.bias`);
    const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
    const a = g.map((gv, i) => (c.activation === 'silu' ? gv / (1 + Math.exp(-gv)) : gelu(gv)) * u[i]);
    const d = linear(a, S, `${p}.mlp.down_proj.weight`, H, I, `${p}.mlp.down_proj.bias`);
    h = h.map((val, i) => val + d[i]);
  }
  const xf = rms(h, 'model.norm.weight');
  return linear(xf, S, c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight', c.vocabSize, H);
}
