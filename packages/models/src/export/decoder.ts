import { throwIfAborted, type ProgressCallback } from '@alki/core';
import { DataType, GraphBuilder, createModel, floatTensor, transpose, type Model } from '@alki/onnx';
import type { DecoderConfig } from '../config.js';
import type { WeightStore } from '../weights.js';
import { Ops } from './ops.js';
import { rotaryTables } from './rotary.js';

/**
 * A group of linear layers that read the same input, with what produces that
 * input: a norm whose weight can absorb per-channel scales (AWQ, SmoothQuant),
 * or a preceding linear layer whose output columns can. Names are ONNX
 * initializer names.
 */
export interface ScaleGroup {
  /** Weight of the norm that feeds the linears (RMSNorm/LayerNorm gamma). */
  norm?: string;
  /** Bias of that norm, when it has one (LayerNorm beta). */
  normBias?: string;
  /** Weight [in, out] of the linear layer that feeds the linears instead of a norm. */
  prev?: string;
  /** MatMul weights [in, out] that read the same input. */
  linears: string[];
  /** Decoder layer index, or -1 for the head. */
  layer: number;
}

/** Metadata key under which the export records its scale groups (JSON). */
export const SCALE_GROUPS_KEY = 'alki.scale_groups';
/** Metadata key of the decoder layers' boundaries (JSON {@link LayerBoundary}[]). */
export const LAYERS_KEY = 'alki.layers';

/** The value names that enter and leave one decoder layer: calibration runs a layer as a graph of its own. */
export interface LayerBoundary {
  input: string;
  output: string;
}

export interface ExportOptions {
  /** Graph flavour; only 'portable' (standard ONNX ops) exists today. */
  flavour?: 'portable';
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
  producerVersion?: string;
}

export interface ExportResult {
  model: Model;
  scaleGroups: ScaleGroup[];
  layers: LayerBoundary[];
}

/** cos/sin gathered by position from precomputed tables (plain, linear and llama3 RoPE). */
function tableRotary(b: GraphBuilder, ops: Ops, pos: string, c: DecoderConfig): { cos: string; sin: string } {
  const hd = c.headDim;
  const tables = rotaryTables(c.maxPositions, hd, c.ropeTheta, c.ropeScaling);
  const gather = (name: string, data: Float32Array) => {
    const g = b.node('Gather', [b.initializer(floatTensor(name, [c.maxPositions, hd / 2], data)), pos], { axis: 0 });
    return b.node('Unsqueeze', [b.node('Concat', [g, g], { axis: -1 }), ops.i64([1])]);
  };
  return { cos: gather('rotary.cos_cache', tables.cos), sin: gather('rotary.sin_cache', tables.sin) };
}

/**
 * Dynamic NTK scaling (HF "dynamic"): once the sequence (max position + 1)
 * exceeds max_position_embeddings, the base becomes
 * θ·(factor·len/max − (factor − 1))^(d/(d−2)). The frequencies depend on the
 * input, so the angles are computed in the graph instead of gathered.
 */
function dynamicRotary(b: GraphBuilder, ops: Ops, pos: string, c: DecoderConfig): { cos: string; sin: string } {
  const d = c.headDim;
  const factor = (c.ropeScaling as { factor: number }).factor;
  const len = b.node('Add', [b.node('Cast', [b.node('ReduceMax', [pos], { keepdims: 0 })], { to: DataType.FLOAT }), ops.f32(1)]);
  const ratio = b.node('Max', [b.node('Sub', [b.node('Mul', [len, ops.f32(factor / c.maxPositions)]), ops.f32(factor - 1)]), ops.f32(1)]);
  const base = b.node('Mul', [ops.f32(c.ropeTheta), b.node('Pow', [ratio, ops.f32(d / (d - 2))])]);
  const exponents = b.initializer(floatTensor('rotary.exponents', [d / 2], Array.from({ length: d / 2 }, (_, i) => (-2 * i) / d)));
  const invFreq = b.node('Pow', [base, exponents]);
  const angles = b.node('Mul', [b.node('Unsqueeze', [b.node('Cast', [pos], { to: DataType.FLOAT }), ops.i64([-1])]), invFreq]);
  const both = (x: string) => b.node('Unsqueeze', [b.node('Concat', [x, x], { axis: -1 }), ops.i64([1])]);
  return { cos: both(b.node('Cos', [angles])), sin: both(b.node('Sin', [angles])) };
}

/** Opset of the default ONNX domain used by the portable graph. */
export const PORTABLE_OPSET = 17;

/**
 * Builds the ONNX decoder graph of a Llama-family model (llama, mistral,
 * qwen2, gemma: their differences are config switches) with KV cache:
 * inputs input_ids, attention_mask, position_ids, past_key_values.{i}.key|value;
 * outputs logits, present.{i}.key|value (the transformers.js / Optimum names).
 */
export function exportLlama(config: DecoderConfig, weights: WeightStore, options: ExportOptions = {}): ExportResult {
  const c = config;
  const b = new GraphBuilder('alki_decoder');
  const ops = new Ops(b);
  const F = DataType.FLOAT;
  const H = c.hiddenSize;
  const hd = c.headDim;
  const nRep = c.numHeads / c.numKvHeads;
  const progress = (done: number, detail?: string) => options.onProgress?.({ step: 'export', done, total: c.numLayers + 2, detail });

  const ids = b.input('input_ids', DataType.INT64, ['batch_size', 'sequence_length']);
  const mask = b.input('attention_mask', DataType.INT64, ['batch_size', 'total_sequence_length']);
  const pos = b.input('position_ids', DataType.INT64, ['batch_size', 'sequence_length']);
  const past = Array.from({ length: c.numLayers }, (_, i) => ({
    key: b.input(`past_key_values.${i}.key`, F, ['batch_size', c.numKvHeads, 'past_sequence_length', hd]),
    value: b.input(`past_key_values.${i}.value`, F, ['batch_size', c.numKvHeads, 'past_sequence_length', hd]),
  }));

  /** Adds a checkpoint linear weight [out, in] as a MatMul initializer [in, out]. */
  const linearWeight = (name: string, outDim: number, inDim: number) => {
    const w = weights.get(name, [outDim, inDim]);
    return b.initializer(floatTensor(name, [inDim, outDim], transpose(w.data, outDim, inDim)));
  };
  const vector = (name: string, n: number) => b.initializer(floatTensor(name, [n], weights.get(name, [n]).data));
  // Gemma's RMSNorm multiplies by (1 + w): stored as that sum, the graph (and AWQ's folding) stay plain RMSNorm.
  const normWeight = (name: string) => {
    const w = Float32Array.from(weights.get(name, [H]).data);
    if (c.gemmaNorm) for (let i = 0; i < H; i++) w[i] = Math.fround(1 + w[i]);
    return b.initializer(floatTensor(name, [H], w));
  };
  const optionalBias = (on: boolean, name: string, n: number) => (on ? vector(name, n) : undefined);

  progress(0, 'embeddings');
  const embedName = 'model.embed_tokens.weight';
  const embed = weights.get(embedName, [c.vocabSize, H]);
  b.initializer(floatTensor(embedName, [c.vocabSize, H], embed.data));
  let h = b.node('Gather', [embedName, ids], { axis: 0 });
  // Gemma scales embeddings by √hidden, rounded to the embedding's dtype (float32 here).
  if (c.gemmaNorm) h = b.node('Mul', [h, ops.f32(Math.fround(Math.sqrt(H)))]);

  // Rotary cos/sin, computed once and shared by all layers: [B, 1, S, hd].
  const { cos, sin } = c.ropeScaling?.type === 'dynamic' ? dynamicRotary(b, ops, pos, c) : tableRotary(b, ops, pos, c);

  // Additive attention bias [B, 1, 1, S, T]: causal (query at absolute p sees keys ≤ p) and padding.
  const seqLen = b.node('Slice', [b.node('Shape', [ids]), ops.i64([1]), ops.i64([2])]);
  const totalLen = b.node('Slice', [b.node('Shape', [mask]), ops.i64([1]), ops.i64([2])]);
  const pastLen = b.node('Sub', [totalLen, seqLen]);
  const scalar = (x: string) => b.node('Squeeze', [x, ops.i64([0])]);
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

  const scaleGroups: ScaleGroup[] = [];
  const layers: LayerBoundary[] = [];
  for (let i = 0; i < c.numLayers; i++) {
    const layerInput = h;
    throwIfAborted(options.signal);
    progress(i + 1, `layer ${i}`);
    const p = `model.layers.${i}`;
    b.scope = `/model/layers.${i}`;
    const inNorm = normWeight(`${p}.input_layernorm.weight`);
    const x = ops.rmsNorm(h, inNorm, c.rmsNormEps);
    const wq = linearWeight(`${p}.self_attn.q_proj.weight`, c.numHeads * hd, H);
    const wk = linearWeight(`${p}.self_attn.k_proj.weight`, c.numKvHeads * hd, H);
    const wv = linearWeight(`${p}.self_attn.v_proj.weight`, c.numKvHeads * hd, H);
    const q = ops.rope(ops.splitHeads(ops.linear(x, wq, optionalBias(c.qkvBias, `${p}.self_attn.q_proj.bias`, c.numHeads * hd)), c.numHeads, hd), cos, sin, hd);
    const k = ops.rope(ops.splitHeads(ops.linear(x, wk, optionalBias(c.qkvBias, `${p}.self_attn.k_proj.bias`, c.numKvHeads * hd)), c.numKvHeads, hd), cos, sin, hd);
    const v = ops.splitHeads(ops.linear(x, wv, optionalBias(c.qkvBias, `${p}.self_attn.v_proj.bias`, c.numKvHeads * hd)), c.numKvHeads, hd);
    const presentK = b.node('Concat', [past[i].key, k], { axis: 2 }, { outputs: [`present.${i}.key`] });
    const presentV = b.node('Concat', [past[i].value, v], { axis: 2 }, { outputs: [`present.${i}.value`] });
    b.output(presentK, F, ['batch_size', c.numKvHeads, 'total_sequence_length', hd]);
    b.output(presentV, F, ['batch_size', c.numKvHeads, 'total_sequence_length', hd]);

    // Grouped-query attention without copying K/V: queries are grouped as
    // [B, kvHeads, nRep, S, hd] and broadcast against K/V [B, kvHeads, 1, T, hd].
    const q5 = b.node('Mul', [b.node('Reshape', [q, ops.i64([0, c.numKvHeads, nRep, -1, hd])]), scale]);
    const k5 = b.node('Unsqueeze', [presentK, ops.i64([2])]);
    const v5 = b.node('Unsqueeze', [presentV, ops.i64([2])]);
    const scores = b.node('Add', [b.node('MatMul', [q5, b.node('Transpose', [k5], { perm: [0, 1, 2, 4, 3] })]), attnBias]);
    const ctx5 = b.node('MatMul', [b.node('Softmax', [scores], { axis: -1 }), v5]);
    const ctx = b.node('Reshape', [b.node('Transpose', [b.node('Reshape', [ctx5, ops.i64([0, c.numHeads, -1, hd])])], { perm: [0, 2, 1, 3] }), ops.i64([0, 0, c.numHeads * hd])]);
    const wo = linearWeight(`${p}.self_attn.o_proj.weight`, H, c.numHeads * hd);
    h = b.node('Add', [h, ops.linear(ctx, wo, optionalBias(c.oBias, `${p}.self_attn.o_proj.bias`, H))]);

    const postNorm = normWeight(`${p}.post_attention_layernorm.weight`);
    const x2 = ops.rmsNorm(h, postNorm, c.rmsNormEps);
    const I = c.intermediateSize;
    const wg = linearWeight(`${p}.mlp.gate_proj.weight`, I, H);
    const wu = linearWeight(`${p}.mlp.up_proj.weight`, I, H);
    const wd = linearWeight(`${p}.mlp.down_proj.weight`, H, I);
    const gate = ops.linear(x2, wg, optionalBias(c.mlpBias, `${p}.mlp.gate_proj.bias`, I));
    const up = ops.linear(x2, wu, optionalBias(c.mlpBias, `${p}.mlp.up_proj.bias`, I));
    const gated = c.activation === 'silu' ? b.node('Mul', [gate, b.node('Sigmoid', [gate])]) : ops.geluTanh(gate);
    const act = b.node('Mul', [gated, up]);
    h = b.node('Add', [h, ops.linear(act, wd, optionalBias(c.mlpBias, `${p}.mlp.down_proj.bias`, H))]);

    layers.push({ input: layerInput, output: h });
    scaleGroups.push(
      { layer: i, norm: inNorm, linears: [wq, wk, wv] },
      { layer: i, prev: wv, linears: [wo] },
      { layer: i, norm: postNorm, linears: [wg, wu] },
      { layer: i, prev: wu, linears: [wd] },
    );
  }
  b.scope = '';

  progress(c.numLayers + 1, 'head');
  const finalNorm = normWeight('model.norm.weight');
  const xf = ops.rmsNorm(h, finalNorm, c.rmsNormEps);
  // A tied head reuses the embedding values, stored transposed for MatMul.
  const headSource = c.tieWordEmbeddings ? embed : weights.get('lm_head.weight', [c.vocabSize, H]);
  const head = b.initializer(floatTensor('lm_head.weight', [H, c.vocabSize], transpose(headSource.data, c.vocabSize, H)));
  const logits = b.node('MatMul', [xf, head], {}, { outputs: ['logits'] });
  b.output(logits, F, ['batch_size', 'sequence_length', c.vocabSize]);
  scaleGroups.push({ layer: -1, norm: finalNorm, linears: [head] });
  progress(c.numLayers + 2);

  const model = createModel(b.build(), {
    opsets: { '': PORTABLE_OPSET },
    producerVersion: options.producerVersion,
    metadata: { [SCALE_GROUPS_KEY]: JSON.stringify(scaleGroups), [LAYERS_KEY]: JSON.stringify(layers), 'alki.flavour': 'portable', 'alki.model_type': c.modelType },
  });
  return { model, scaleGroups, layers };
}
