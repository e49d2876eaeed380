import { throwIfAborted, type ProgressCallback } from '@alki/core';
import { DataType, GraphBuilder, createModel, exportMetadataEntries, float, floatTensor, lazyTensor, transpose, type LayerSpan, type Model, type ScaleGroup } from '@alki/onnx';
import type { DecoderConfig } from '../config.js';
import type { WeightStore } from '../weights.js';
import { Ops } from './ops.js';
import { rotaryTables } from './rotary.js';
import { finalNormName, layerNames } from './names.js';

export interface ExportResult {
  model: Model;
  scaleGroups: ScaleGroup[];
  layers: LayerSpan[];
}

/** Graph flavours: standard ONNX ops only, or onnxruntime's fused com.microsoft ops (faster, onnxruntime only). */
export const GRAPH_FLAVOURS = ['ort', 'portable'] as const;
export type GraphFlavour = (typeof GRAPH_FLAVOURS)[number];

export interface ExportOptions {
  /**
   * 'ort' (default): GroupQueryAttention with fused rotary and KV cache,
   * (Skip)SimplifiedLayerNormalization / SkipLayerNormalization, packed QKV —
   * for onnxruntime (node, web). 'portable': standard ONNX opset 17 only.
   */
  flavour?: GraphFlavour;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
  producerVersion?: string;
}

/** cos/sin gathered by position from precomputed tables (plain, linear and llama3 RoPE): [B, 1, S, rotaryDim]. */
function tableRotary(b: GraphBuilder, ops: Ops, pos: string, c: DecoderConfig): { cos: string; sin: string } {
  const { cos, sin } = rotaryCaches(b, c);
  const gather = (cache: string) => {
    const g = b.node('Gather', [cache, pos], { axis: 0 });
    return b.node('Unsqueeze', [b.node('Concat', [g, g], { axis: -1 }), ops.i64([1])]);
  };
  return { cos: gather(cos), sin: gather(sin) };
}

/** The cos/sin tables [maxPositions, rotaryDim/2] as initializers. */
function rotaryCaches(b: GraphBuilder, c: DecoderConfig): { cos: string; sin: string } {
  const half = c.rotaryDim / 2;
  const tables = rotaryTables(c.maxPositions, c.rotaryDim, c.ropeTheta, c.ropeScaling);
  return {
    cos: b.initializer(floatTensor('rotary.cos_cache', [c.maxPositions, half], tables.cos)),
    sin: b.initializer(floatTensor('rotary.sin_cache', [c.maxPositions, half], tables.sin)),
  };
}

/**
 * Dynamic NTK scaling (HF "dynamic"): once the sequence (max position + 1)
 * exceeds max_position_embeddings, the base becomes
 * θ·(factor·len/max − (factor − 1))^(d/(d−2)). The frequencies depend on the
 * input, so the angles are computed in the graph: for positions `pos` (any
 * shape), with the sequence length `len` (float scalar). Returns cos/sin of
 * shape [...pos, rotaryDim/2].
 */
function dynamicAngles(b: GraphBuilder, ops: Ops, pos: string, len: string, c: DecoderConfig): { cos: string; sin: string } {
  const d = c.rotaryDim;
  const factor = (c.ropeScaling as { factor: number }).factor;
  const ratio = b.node('Max', [b.node('Sub', [b.node('Mul', [len, ops.f32(factor / c.maxPositions)]), ops.f32(factor - 1)]), ops.f32(1)]);
  const base = b.node('Mul', [ops.f32(c.ropeTheta), b.node('Pow', [ratio, ops.f32(d / (d - 2))])]);
  const exponents = b.initializer(floatTensor('rotary.exponents', [d / 2], Array.from({ length: d / 2 }, (_, i) => (-2 * i) / d)));
  const invFreq = b.node('Pow', [base, exponents]);
  const angles = b.node('Mul', [b.node('Unsqueeze', [b.node('Cast', [pos], { to: DataType.FLOAT }), ops.i64([-1])]), invFreq]);
  return { cos: b.node('Cos', [angles]), sin: b.node('Sin', [angles]) };
}

function dynamicRotary(b: GraphBuilder, ops: Ops, pos: string, c: DecoderConfig): { cos: string; sin: string } {
  const len = b.node('Add', [b.node('Cast', [b.node('ReduceMax', [pos], { keepdims: 0 })], { to: DataType.FLOAT }), ops.f32(1)]);
  const { cos, sin } = dynamicAngles(b, ops, pos, len, c);
  const both = (x: string) => b.node('Unsqueeze', [b.node('Concat', [x, x], { axis: -1 }), ops.i64([1])]);
  return { cos: both(cos), sin: both(sin) };
}

/** Opset of the default ONNX domain used by the portable graph. */
export const PORTABLE_OPSET = 17;

/** Opset of the com.microsoft domain used by the ort flavour. */
export const MS_OPSET = 1;

/**
 * Builds the ONNX decoder graph of a decoder-only transformer (llama,
 * mistral, qwen2, gemma, phi, stablelm: their differences are config
 * switches) with KV cache: inputs input_ids, attention_mask, position_ids,
 * past_key_values.{i}.key|value; outputs logits, present.{i}.key|value (the
 * transformers.js / Optimum names), in either graph flavour.
 */
export function exportDecoder(config: DecoderConfig, weights: WeightStore, options: ExportOptions = {}): ExportResult {
  const c = config;
  const flavour = options.flavour ?? 'ort';
  const ort = flavour === 'ort';
  const b = new GraphBuilder('alki_decoder');
  const ops = new Ops(b);
  const F = DataType.FLOAT;
  const H = c.hiddenSize;
  const hd = c.headDim;
  const nRep = c.numHeads / c.numKvHeads;
  const progress = (done: number, detail?: string) => options.onProgress?.({ step: 'export', done, total: c.numLayers + 2, detail });
  const ms = { domain: 'com.microsoft' };

  const ids = b.input('input_ids', DataType.INT64, ['batch_size', 'sequence_length']);
  const mask = b.input('attention_mask', DataType.INT64, ['batch_size', 'total_sequence_length']);
  const pos = b.input('position_ids', DataType.INT64, ['batch_size', 'sequence_length']);
  const past = Array.from({ length: c.numLayers }, (_, i) => ({
    key: b.input(`past_key_values.${i}.key`, F, ['batch_size', c.numKvHeads, 'past_sequence_length', hd]),
    value: b.input(`past_key_values.${i}.value`, F, ['batch_size', c.numKvHeads, 'past_sequence_length', hd]),
  }));

  /**
   * A checkpoint linear weight [out, in] as a MatMul initializer [in, out]: lazy (onnx lazy.ts), read and transposed
   * when a later step (quantizer, writer) reads it, so that one layer's floats at a time are in memory.
   */
  const linearWeight = (name: string, outDim: number, inDim: number) => {
    weights.checkShape(`${name}.weight`, [outDim, inDim]);
    const rows = () => weights.get(`${name}.weight`).data;
    return b.initializer(lazyTensor(`${name}.weight`, F, [inDim, outDim], () => transpose(rows(), outDim, inDim), rows));
  };
  const vector = (name: string, n: number) => b.initializer(floatTensor(name, [n], weights.get(name, [n]).data));
  const bias = (on: boolean, name: string, n: number) => (on ? vector(`${name}.bias`, n) : undefined);
  /** Norm weight (and LayerNorm bias). Gemma's RMSNorm multiplies by (1 + w): stored as that sum, the graph (and AWQ's folding) stay plain RMSNorm. */
  const normParams = (name: string, n = H) => {
    const w = Float32Array.from(weights.get(`${name}.weight`, [n]).data);
    if (c.gemmaNorm) for (let i = 0; i < n; i++) w[i] = Math.fround(1 + w[i]);
    const weight = b.initializer(floatTensor(`${name}.weight`, [n], w));
    return { weight, bias: c.norm === 'layer' ? vector(`${name}.bias`, n) : undefined };
  };
  type Norm = ReturnType<typeof normParams>;
  const norm = (x: string, p: Norm) => {
    if (c.norm === 'layer') return ops.layerNorm(x, p.weight, p.bias, c.normEps);
    return ort ? b.node('SimplifiedLayerNormalization', [x, p.weight], { axis: -1, epsilon: float(c.normEps) }) : ops.rmsNorm(x, p.weight, c.normEps);
  };
  /** norm(x + skip) and x + skip: one SkipSimplifiedLayerNormalization / SkipLayerNormalization in the ort flavour. */
  const skipNorm = (x: string, skip: string, p: Norm): { normed: string; sum: string } => {
    if (!ort) {
      const sum = b.node('Add', [skip, x]);
      return { normed: norm(sum, p), sum };
    }
    const op = c.norm === 'layer' ? 'SkipLayerNormalization' : 'SkipSimplifiedLayerNormalization';
    const inputs = c.norm === 'layer' ? [x, skip, p.weight, p.bias!] : [x, skip, p.weight];
    const [normed, , , sum] = b.nodeN(op, inputs, { epsilon: float(c.normEps) }, { ...ms, outputs: 4 });
    return { normed, sum };
  };

  progress(0, 'embeddings');
  const embedName = 'model.embed_tokens.weight';
  weights.checkShape(embedName, [c.vocabSize, H]);
  b.initializer(lazyTensor(embedName, F, [c.vocabSize, H], () => weights.get(embedName).data));
  let h = b.node('Gather', [embedName, ids], { axis: 0 });
  // Gemma scales embeddings by √hidden, rounded to the embedding's dtype (float32 here).
  if (c.gemmaNorm) h = b.node('Mul', [h, ops.f32(Math.fround(Math.sqrt(H)))]);

  const totalLen = b.node('Slice', [b.node('Shape', [mask]), ops.i64([1]), ops.i64([2])]);
  const scalar = (x: string) => b.node('Squeeze', [x, ops.i64([0])]);
  type Attention = (i: number, x: string, n: ReturnType<typeof layerNames>) => string;
  /** cos/sin [B, 1, S, rotaryDim] gathered at position_ids, built once on first use. */
  let positional: { cos: string; sin: string } | undefined;
  const rotaryAtPositions = () => (positional ??= c.ropeScaling?.type === 'dynamic' ? dynamicRotary(b, ops, pos, c) : tableRotary(b, ops, pos, c));
  // onnxruntime's GroupQueryAttention needs head_dim a multiple of 16, and fuses rotary only when rotaryDim/2 is a
  // multiple of 8 (e.g. not stablelm-3b's 20 rotary dims of 80); elsewhere the ort flavour falls back to the
  // portable attention, or applies rotary before GroupQueryAttention.
  const useGqa = ort && hd % 16 === 0;
  const fusedRotary = useGqa && (c.rotaryDim / 2) % 8 === 0;
  // q, k and v from one MatMul where GroupQueryAttention can take them packed (no q/k norm or rotary between).
  const packedQkv = fusedRotary && !c.qkNorm;
  const attention: Attention = useGqa ? gqaAttention() : portableAttention();

  function gqaAttention(): Attention {
    // GroupQueryAttention: per-sequence key counts from the mask (right padding only, as GQA assumes), rotary
    // applied inside from cos/sin caches [positions, rotaryDim/2] at positions it derives from those counts.
    const seqlensK = b.node('Cast', [b.node('Sub', [b.node('ReduceSum', [mask, ops.i64([1])], { keepdims: 0 }), ops.i64([1], true)])], { to: DataType.INT32 });
    const total32 = b.node('Cast', [scalar(totalLen)], { to: DataType.INT32 });
    let caches: { cos: string; sin: string } | undefined;
    if (fusedRotary && c.ropeScaling?.type === 'dynamic') {
      const positions = b.node('Range', [ops.i64([0], true), scalar(totalLen), ops.i64([1], true)]);
      caches = dynamicAngles(b, ops, positions, b.node('Cast', [scalar(totalLen)], { to: DataType.FLOAT }), c);
    } else if (fusedRotary) caches = rotaryCaches(b, c);
    /** Rotary outside GroupQueryAttention, on [B, S, heads·hd]. */
    const ropeFlat = (x: string, count: number) => {
      if (fusedRotary) return x;
      const { cos, sin } = rotaryAtPositions();
      const bhsd = ops.splitHeads(x, count, hd);
      const r = ops.rope(bhsd, cos, sin, hd, c.rotaryDim);
      return b.node('Reshape', [b.node('Transpose', [r], { perm: [0, 2, 1, 3] }), ops.i64([0, 0, count * hd])]);
    };
    return (i, x, n) => {
      const nq = c.numHeads * hd;
      const nkv = c.numKvHeads * hd;
      let qkvInputs: string[];
      if (packedQkv) {
        // One MatMul for q, k and v: GroupQueryAttention takes the packed projection as it is.
        const rows = nq + 2 * nkv;
        /** The q, k and v tensors stacked along their output rows. */
        const qkvParts = [[n.q, nq], [n.k, nkv], [n.v, nkv]] as const;
        for (const [name, out] of qkvParts) weights.checkShape(`${name}.weight`, [out, H]);
        const stacked = (suffix: 'weight' | 'bias') => {
          const parts = qkvParts.map(([name, out]) => weights.get(`${name}.${suffix}`, suffix === 'weight' ? [out, H] : [out]).data);
          const all = new Float32Array(parts.reduce((sum, p) => sum + p.length, 0));
          let at = 0;
          for (const p of parts) {
            all.set(p, at);
            at += p.length;
          }
          return all;
        };
        const wqkv = b.initializer(lazyTensor(`${n.qkv}.weight`, F, [H, rows], () => transpose(stacked('weight'), rows, H), () => stacked('weight')));
        const bqkv = c.qkvBias ? b.initializer(floatTensor(`${n.qkv}.bias`, [rows], stacked('bias'))) : undefined;
        qkvInputs = [ops.linear(x, wqkv, bqkv), '', ''];
      } else {
        const q = ops.linear(x, linearWeight(n.q, nq, H), bias(c.qkvBias, n.q, nq));
        const k = ops.linear(x, linearWeight(n.k, nkv, H), bias(c.qkvBias, n.k, nkv));
        const v = ops.linear(x, linearWeight(n.v, nkv, H), bias(c.qkvBias, n.v, nkv));
        const qn = n.qNorm ? qkNorm(q, n.qNorm, c.numHeads, 'bshd') : q;
        const kn = n.kNorm ? qkNorm(k, n.kNorm, c.numKvHeads, 'bshd') : k;
        qkvInputs = [ropeFlat(qn, c.numHeads), ropeFlat(kn, c.numKvHeads), v];
      }
      const [out] = b.nodeN('GroupQueryAttention', [...qkvInputs, past[i].key, past[i].value, seqlensK, total32, ...(caches ? [caches.cos, caches.sin] : [])], {
        num_heads: c.numHeads,
        kv_num_heads: c.numKvHeads,
        do_rotary: caches ? 1 : 0,
        // HF admits keys at distance < window; onnxruntime's CPU kernel reads local_window_size as that same
        // count (checked against the float64 reference: window − 1 differs).
        ...(c.slidingWindow ? { local_window_size: c.slidingWindow } : {}),
      }, { ...ms, outputs: [b.fresh('attn'), `present.${i}.key`, `present.${i}.value`] });
      return out;
    };
  }

  function portableAttention(): Attention {
    // Additive attention bias [B, 1, 1, S, T]: causal (query at absolute p sees keys ≤ p) and padding.
    const seqLen = b.node('Slice', [b.node('Shape', [ids]), ops.i64([1]), ops.i64([2])]);
    const pastLen = b.node('Sub', [totalLen, seqLen]);
    const keyIdx = b.node('Range', [ops.i64([0], true), scalar(totalLen), ops.i64([1], true)]);
    const queryIdx = b.node('Range', [scalar(pastLen), scalar(totalLen), ops.i64([1], true)]);
    const causal = b.node('LessOrEqual', [b.node('Unsqueeze', [keyIdx, ops.i64([0])]), b.node('Unsqueeze', [queryIdx, ops.i64([1])])]);
    const notPad = b.node('Unsqueeze', [b.node('Cast', [mask], { to: DataType.BOOL }), ops.i64([1, 2])]);
    let visible = causal;
    if (c.slidingWindow) {
      // Mistral: a query at p sees keys k with p − k < window.
      const distance = b.node('Sub', [b.node('Unsqueeze', [queryIdx, ops.i64([1])]), b.node('Unsqueeze', [keyIdx, ops.i64([0])])]);
      visible = b.node('And', [causal, b.node('Less', [distance, ops.i64([c.slidingWindow], true)])]);
    }
    const allowed = b.node('And', [visible, notPad]);
    // -1e30 rather than -inf: a fully padded row then softmaxes to uniform instead of NaN.
    const attnBias = b.node('Unsqueeze', [b.node('Where', [allowed, ops.f32(0), ops.f32(-1e30)]), ops.i64([2])]);
    const scale = ops.f32(1 / Math.sqrt(hd));
    return (i, x, n) => {
      const heads = (name: string, count: number, normName?: string) => {
        const y = ops.splitHeads(ops.linear(x, linearWeight(name, count * hd, H), bias(c.qkvBias, name, count * hd)), count, hd);
        return normName ? qkNorm(y, normName, count, 'bhsd') : y;
      };
      const { cos, sin } = rotaryAtPositions();
      const q = ops.rope(heads(n.q, c.numHeads, n.qNorm), cos, sin, hd, c.rotaryDim);
      const k = ops.rope(heads(n.k, c.numKvHeads, n.kNorm), cos, sin, hd, c.rotaryDim);
      const v = heads(n.v, c.numKvHeads);
      const presentK = b.node('Concat', [past[i].key, k], { axis: 2 }, { outputs: [`present.${i}.key`] });
      const presentV = b.node('Concat', [past[i].value, v], { axis: 2 }, { outputs: [`present.${i}.value`] });
      // Grouped-query attention without copying K/V: queries are grouped as
      // [B, kvHeads, nRep, S, hd] and broadcast against K/V [B, kvHeads, 1, T, hd].
      const q5 = b.node('Mul', [b.node('Reshape', [q, ops.i64([0, c.numKvHeads, nRep, -1, hd])]), scale]);
      const k5 = b.node('Unsqueeze', [presentK, ops.i64([2])]);
      const v5 = b.node('Unsqueeze', [presentV, ops.i64([2])]);
      const scores = b.node('Add', [b.node('MatMul', [q5, b.node('Transpose', [k5], { perm: [0, 1, 2, 4, 3] })]), attnBias]);
      const ctx5 = b.node('MatMul', [b.node('Softmax', [scores], { axis: -1 }), v5]);
      return b.node('Reshape', [b.node('Transpose', [b.node('Reshape', [ctx5, ops.i64([0, c.numHeads, -1, hd])])], { perm: [0, 2, 1, 3] }), ops.i64([0, 0, c.numHeads * hd])]);
    };
  }

  /**
   * q/k LayerNorm over head_dim before rotary: phi shares one affine norm across heads; stablelm has one
   * bias-free norm per head (normalized with unit scale, then multiplied by the per-head weights).
   * `layout`: bshd = [B, S, heads·hd] (returned flat), bhsd = [B, heads, S, hd].
   */
  function qkNorm(x: string, name: string, count: number, layout: 'bshd' | 'bhsd'): string {
    const x4 = layout === 'bshd' ? b.node('Reshape', [x, ops.i64([0, 0, count, hd])]) : x;
    let y: string;
    if (c.qkNorm === 'shared') {
      y = ops.layerNorm(x4, vector(`${name}.weight`, hd), vector(`${name}.bias`, hd), c.normEps);
    } else {
      const w = new Float32Array(count * hd);
      for (let h = 0; h < count; h++) w.set(weights.get(`${name}.norms.${h}.weight`, [hd]).data, h * hd);
      const ones = b.initializer(floatTensor(`${name}.unit_scale`, [hd], new Float32Array(hd).fill(1)));
      const perHead = b.initializer(floatTensor(`${name}.weight`, layout === 'bshd' ? [count, hd] : [count, 1, hd], w));
      y = b.node('Mul', [ops.layerNorm(x4, ones, undefined, c.normEps), perHead]);
    }
    return layout === 'bshd' ? b.node('Reshape', [y, ops.i64([0, 0, count * hd])]) : y;
  }

  const normGroup = (layer: number, p: Norm, linears: string[]): ScaleGroup => ({ layer, norm: p.weight, ...(p.bias ? { normBias: p.bias } : {}), linears });
  const act = (x: string) => (c.activation === 'silu' ? b.node('Mul', [x, b.node('Sigmoid', [x])]) : ops.geluTanh(x));
  const scaleGroups: ScaleGroup[] = [];
  const layers: LayerSpan[] = [];
  for (let i = 0; i < c.numLayers; i++) {
    const layerInput = h;
    throwIfAborted(options.signal);
    progress(i + 1, `layer ${i}`);
    b.scope = `/model/layers.${i}`;
    const n = layerNames(c, i);
    const inNorm = normParams(n.inputNorm);
    const x = norm(h, inNorm);
    const attn = attention(i, x, n);
    for (const kv of ['key', 'value']) b.output(`present.${i}.${kv}`, F, ['batch_size', c.numKvHeads, 'total_sequence_length', hd]);
    const wo = linearWeight(n.o, H, c.numHeads * hd);
    const attnOut = ops.linear(attn, wo, bias(c.oBias, n.o, H));
    const qkvLinears = packedQkv ? [`${n.qkv}.weight`] : [`${n.q}.weight`, `${n.k}.weight`, `${n.v}.weight`];
    const vWeight = qkvLinears[qkvLinears.length - 1];
    const qk = (c.numHeads + c.numKvHeads) * hd;
    const unclipped = packedQkv ? { [`${n.qkv}.weight`]: qk } : { [`${n.q}.weight`]: c.numHeads * hd, [`${n.k}.weight`]: c.numKvHeads * hd };

    const I = c.intermediateSize;
    let x2 = x;
    let residual = h;
    let postNorm: Norm | undefined;
    if (!c.parallelResidual) {
      postNorm = normParams(n.postNorm!);
      const s = skipNorm(attnOut, h, postNorm);
      x2 = s.normed;
      residual = s.sum;
    }
    let mlpOut: string;
    let mlpIn: string[];
    let mlpGroups: ScaleGroup[];
    if (c.mlp === 'gated') {
      const wg = linearWeight(n.gate!, I, H);
      const wu = linearWeight(n.up!, I, H);
      const wd = linearWeight(n.down!, H, I);
      const gate = ops.linear(x2, wg, bias(c.mlpBias, n.gate!, I));
      const up = ops.linear(x2, wu, bias(c.mlpBias, n.up!, I));
      mlpOut = ops.linear(b.node('Mul', [act(gate), up]), wd, bias(c.mlpBias, n.down!, H));
      mlpIn = [wg, wu];
      mlpGroups = [{ layer: i, prev: wu, linears: [wd] }];
    } else {
      const w1 = linearWeight(n.fc1!, I, H);
      const w2 = linearWeight(n.fc2!, H, I);
      mlpOut = ops.linear(act(ops.linear(x2, w1, bias(c.mlpBias, n.fc1!, I))), w2, bias(c.mlpBias, n.fc2!, H));
      mlpIn = [w1];
      // fc2 reads GELU(fc1): no producer can absorb a scale (AWQ clips it; GPTQ needs none).
      mlpGroups = [{ layer: i, linears: [w2] }];
    }
    h = c.parallelResidual ? b.node('Add', [b.node('Add', [h, attnOut]), mlpOut]) : b.node('Add', [residual, mlpOut]);

    layers.push({ input: layerInput, output: h });
    scaleGroups.push(
      ...(c.parallelResidual ? [{ ...normGroup(i, inNorm, [...qkvLinears, ...mlpIn]), unclipped }] : [{ ...normGroup(i, inNorm, qkvLinears), unclipped }, normGroup(i, postNorm!, mlpIn)]),
      { layer: i, prev: vWeight, linears: [wo] },
      ...mlpGroups,
    );
  }
  b.scope = '';

  progress(c.numLayers + 1, 'head');
  const finalNorm = normParams(finalNormName(c));
  const xf = norm(h, finalNorm);
  // A tied head reuses the embedding values, stored transposed for MatMul.
  const headSource = c.tieWordEmbeddings ? embedName : 'lm_head.weight';
  weights.checkShape(headSource, [c.vocabSize, H]);
  const headRows = () => weights.get(headSource).data;
  const head = b.initializer(lazyTensor('lm_head.weight', F, [H, c.vocabSize], () => transpose(headRows(), c.vocabSize, H), headRows));
  const headBias = c.headBias ? vector('lm_head.bias', c.vocabSize) : undefined;
  const logits = headBias ? b.node('Add', [b.node('MatMul', [xf, head]), headBias], {}, { outputs: ['logits'] }) : b.node('MatMul', [xf, head], {}, { outputs: ['logits'] });
  b.output(logits, F, ['batch_size', 'sequence_length', c.vocabSize]);
  scaleGroups.push(normGroup(-1, finalNorm, [head]));
  progress(c.numLayers + 2);

  const model = createModel(b.build(), {
    opsets: ort ? { '': PORTABLE_OPSET, 'com.microsoft': MS_OPSET } : { '': PORTABLE_OPSET },
    producerVersion: options.producerVersion,
    metadata: exportMetadataEntries({ scaleGroups, layers, flavour, modelType: c.modelType, tiedEmbedding: c.tieWordEmbeddings ? { embedding: embedName, head } : undefined }),
  });
  return { model, scaleGroups, layers };
}
