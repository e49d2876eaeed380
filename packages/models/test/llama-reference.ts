import type { HfModel } from '../src/index.js';

/**
 * A float64 decoder forward pass written from HF's modeling_llama /
 * modeling_mistral / modeling_qwen2 / modeling_gemma / modeling_phi /
 * modeling_stablelm semantics (RMSNorm or LayerNorm, rotate_half RoPE —
 * partial, with linear/llama3/dynamic scaling —, q/k LayerNorm, repeat_kv
 * GQA, causal softmax attention with an optional sliding window, biases where
 * present, SwiGLU/GeGLU or fc1→GELU→fc2, sequential or parallel residual,
 * tied or untied head). Independent of the ONNX graph: tests compare the
 * two. Returns logits [seq, vocab].
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
    for (let r = 0; r < rows; r++)
      for (let o = 0; o < out; o++) {
        let s = b ? b[o] : 0;
        for (let i = 0; i < inp; i++) s += x[r * inp + i] * w[o * inp + i];
        y[r * out + o] = s;
      }
    return y;
  };
  /** LayerNorm over rows of length n (weight w, optional bias). */
  const layerNorm = (x: Float64Array, n: number, w: Float64Array, bias?: Float64Array) => {
    const y = new Float64Array(x.length);
    for (let r = 0; r < x.length / n; r++) {
      let mean = 0;
      for (let i = 0; i < n; i++) mean += x[r * n + i] / n;
      let v = 0;
      for (let i = 0; i < n; i++) v += (x[r * n + i] - mean) ** 2 / n;
      const inv = 1 / Math.sqrt(v + c.normEps);
      for (let i = 0; i < n; i++) y[r * n + i] = (x[r * n + i] - mean) * inv * w[i] + (bias ? bias[i] : 0);
    }
    return y;
  };
  const rms = (x: Float64Array, name: string) => {
    if (c.norm === 'layer') return layerNorm(x, H, W(`${name}.weight`), W(`${name}.bias`));
    const w = W(`${name}.weight`);
    const y = new Float64Array(x.length);
    for (let r = 0; r < S; r++) {
      let ss = 0;
      for (let i = 0; i < H; i++) ss += x[r * H + i] ** 2;
      const inv = 1 / Math.sqrt(ss / H + c.normEps);
      // Gemma: x̂·(1 + w).
      for (let i = 0; i < H; i++) y[r * H + i] = x[r * H + i] * inv * (c.normPlusOne ? 1 + w[i] : w[i]);
    }
    return y;
  };
  /** q/k norm on [S, heads·hd]: phi one shared affine LayerNorm(hd), stablelm one bias-free LayerNorm per head. */
  const qkNorm = (x: Float64Array, heads: number, name: string) => {
    if (!c.qkNorm) return x;
    const out = new Float64Array(x.length);
    for (let s = 0; s < S; s++)
      for (let h = 0; h < heads; h++) {
        const seg = x.subarray(s * heads * hd + h * hd, s * heads * hd + (h + 1) * hd);
        const y = c.qkNorm === 'shared' ? layerNorm(seg, hd, W(`${name}.weight`), W(`${name}.bias`)) : layerNorm(seg, hd, W(`${name}.norms.${h}.weight`));
        out.set(y, s * heads * hd + h * hd);
      }
    return out;
  };
  // Inverse frequencies as HF's rope init functions define them (default, linear, llama3).
  const rd = c.rotaryDim;
  const invFreq = Array.from({ length: rd / 2 }, (_, i) => {
    const r = c.ropeScaling;
    // Dynamic NTK: a larger base once the sequence is longer than max_position_embeddings.
    const base =
      r?.type === 'dynamic' && S > c.maxPositions ? c.ropeTheta * ((r.factor * S) / c.maxPositions - (r.factor - 1)) ** (rd / (rd - 2)) : c.ropeTheta;
    const f = 1 / Math.pow(base, (2 * i) / rd);
    if (!r || r.type === 'dynamic') return f;
    if (r.type === 'linear') return f / r.factor;
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < r.originalMaxPositions / r.highFreqFactor) return f;
    if (wavelen > r.originalMaxPositions / r.lowFreqFactor) return f / r.factor;
    const smooth = (r.originalMaxPositions / wavelen - r.lowFreqFactor) / (r.highFreqFactor - r.lowFreqFactor);
    return (1 - smooth) * (f / r.factor) + smooth * f;
  });
  // Partial rotary: only the first rd dims of each head rotate (rotate_half within them).
  const rope = (x: Float64Array, heads: number) => {
    const half = rd / 2;
    for (let s = 0; s < S; s++)
      for (let h = 0; h < heads; h++) {
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
  if (c.scaleEmbeddings) h = h.map((v) => v * Math.sqrt(H));
  const nRep = c.numHeads / c.numKvHeads;
  const phi = c.modelType === 'phi';
  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}`;
    const x = rms(h, `${p}.input_layernorm`);
    const q = qkNorm(linear(x, S, `${p}.self_attn.q_proj.weight`, c.numHeads * hd, H, `${p}.self_attn.q_proj.bias`), c.numHeads, `${p}.self_attn.q_layernorm`);
    const k = qkNorm(
      linear(x, S, `${p}.self_attn.k_proj.weight`, c.numKvHeads * hd, H, `${p}.self_attn.k_proj.bias`),
      c.numKvHeads,
      `${p}.self_attn.k_layernorm`,
    );
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
        for (let j = 0; j <= i; j++) sum += scores[j] = scores[j] === -Infinity ? 0 : Math.exp(scores[j] - max);
        for (let j = 0; j <= i; j++)
          for (let d = 0; d < hd; d++) ctx[i * c.numHeads * hd + hh * hd + d] += (scores[j] / sum) * v[j * c.numKvHeads * hd + kvh * hd + d];
      }
    }
    const oName = phi ? `${p}.self_attn.dense` : `${p}.self_attn.o_proj`;
    const o = linear(ctx, S, `${oName}.weight`, H, c.numHeads * hd, `${oName}.bias`);
    const I = c.intermediateSize;
    const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
    const act = (v: number) => (c.activation === 'silu' ? v / (1 + Math.exp(-v)) : gelu(v));
    const mlp = (xm: Float64Array) => {
      if (c.mlp === 'fc') {
        const a = linear(xm, S, `${p}.mlp.fc1.weight`, I, H, `${p}.mlp.fc1.bias`).map(act);
        return linear(a, S, `${p}.mlp.fc2.weight`, H, I, `${p}.mlp.fc2.bias`);
      }
      const g = linear(xm, S, `${p}.mlp.gate_proj.weight`, I, H, `${p}.mlp.gate_proj.bias`);
      const u = linear(xm, S, `${p}.mlp.up_proj.weight`, I, H, `${p}.mlp.up_proj.bias`);
      return linear(
        g.map((gv, i) => act(gv) * u[i]),
        S,
        `${p}.mlp.down_proj.weight`,
        H,
        I,
        `${p}.mlp.down_proj.bias`,
      );
    };
    if (c.parallelResidual) {
      // phi / stablelm use_parallel_residual: both branches read the same normed input.
      const m = mlp(x);
      h = h.map((val, i) => val + o[i] + m[i]);
    } else {
      h = h.map((val, i) => val + o[i]);
      const m = mlp(rms(h, `${p}.post_attention_layernorm`));
      h = h.map((val, i) => val + m[i]);
    }
  }
  const xf = rms(h, phi ? 'model.final_layernorm' : 'model.norm');
  return linear(xf, S, c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight', c.vocabSize, H, 'lm_head.bias');
}
