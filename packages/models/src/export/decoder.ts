import { throwIfAborted, type ProgressCallback } from '@alki/core';
import { DataType, createModel, exportMetadataEntries, lazyTensor, transpose, type LayerSpan, type Model, type ScaleGroup } from '@alki/onnx';
import type { DecoderConfig } from '../config.js';
import type { WeightStore } from '../weights.js';
import { attention, prepareAttention, type Attention } from './attention.js';
import { bias, createContext, linearWeight, vector, type ExportContext } from './context.js';
import { mlp } from './mlp.js';
import { finalNormName, layerNames } from './names.js';
import { norm, normGroup, normParams, skipNorm } from './norm.js';

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

/** Opset of the default ONNX domain used by the portable graph. */
export const PORTABLE_OPSET = 17;

/** Opset of the com.microsoft domain used by the ort flavour. */
export const MS_OPSET = 1;

/**
 * Builds the ONNX decoder graph of a decoder-only transformer (llama, mistral, qwen2, gemma, phi, stablelm: what
 * differs is in their records, architectures.ts) with KV cache: inputs input_ids, attention_mask, position_ids,
 * past_key_values.{i}.key|value; outputs logits, present.{i}.key|value (the transformers.js / Optimum names), in
 * either graph flavour. Internal: exportModel (export/index.ts) is the entry point.
 */
export function exportDecoder(config: DecoderConfig, weights: WeightStore, options: ExportOptions = {}): ExportResult {
  const flavour = options.flavour ?? 'ort';
  const ctx = createContext(config, weights, flavour === 'ort');
  const { b, c } = ctx;
  const progress = (done: number, detail?: string) => options.onProgress?.({ step: 'export', done, total: c.numLayers + 2, detail });

  progress(0, 'embeddings');
  let h = embed(ctx);
  const attn = prepareAttention(ctx);
  const scaleGroups: ScaleGroup[] = [];
  const layers: LayerSpan[] = [];
  for (let i = 0; i < c.numLayers; i++) {
    throwIfAborted(options.signal);
    progress(i + 1, `layer ${i}`);
    b.scope = `/model/layers.${i}`;
    const layer = decoderLayer(ctx, attn, i, h);
    // Each layer is a self-contained span (residual stream in, residual stream out): calibration runs one at a time.
    layers.push({ input: h, output: layer.output });
    scaleGroups.push(...layer.scaleGroups);
    h = layer.output;
  }
  b.scope = '';

  progress(c.numLayers + 1, 'head');
  const head = lmHead(ctx, h);
  scaleGroups.push(head.scaleGroup);
  progress(c.numLayers + 2);

  const model = createModel(b.build(), {
    opsets: ctx.ort ? { '': PORTABLE_OPSET, 'com.microsoft': MS_OPSET } : { '': PORTABLE_OPSET },
    producerVersion: options.producerVersion,
    metadata: exportMetadataEntries({
      scaleGroups,
      layers,
      flavour,
      modelType: c.modelType,
      tiedEmbedding: c.tieWordEmbeddings ? { embedding: embeddingName(ctx), head: head.weight } : undefined,
    }),
  });
  return { model, scaleGroups, layers };
}

/** The token embedding table's name (checkpoint and graph). */
function embeddingName(ctx: ExportContext): string {
  return `${ctx.arch.names.embedding}.weight`;
}

/** Token embeddings of input_ids: [B, S, hidden]. */
function embed(ctx: ExportContext): string {
  const { b, c, weights } = ctx;
  const name = embeddingName(ctx);
  weights.checkShape(name, [c.vocabSize, c.hiddenSize]);
  b.initializer(lazyTensor(name, DataType.FLOAT, [c.vocabSize, c.hiddenSize], () => weights.get(name).data));
  const h = b.node('Gather', [name, ctx.ids], { axis: 0 });
  // Gemma scales embeddings by √hidden, rounded to the embedding's dtype (float32 here).
  return c.scaleEmbeddings ? b.node('Mul', [h, ctx.ops.f32(Math.fround(Math.sqrt(c.hiddenSize)))]) : h;
}

/**
 * One pre-norm decoder layer on the residual stream `h`: h + attn(norm(h)), then + mlp(norm(·)); or, with a
 * parallel residual (phi, stablelm's use_parallel_residual), h + attn(norm(h)) + mlp(norm(h)) from one norm.
 * Returns the next residual stream and the layer's scale groups.
 */
function decoderLayer(ctx: ExportContext, attn: Attention, i: number, h: string): { output: string; scaleGroups: ScaleGroup[] } {
  const { b, ops, c } = ctx;
  const n = layerNames(c, i);
  const inNorm = normParams(ctx, n.inputNorm);
  const x = norm(ctx, h, inNorm);
  const a = attention(ctx, attn, i, x, n);
  const wo = linearWeight(ctx, n.o, c.hiddenSize, c.numHeads * c.headDim);
  const attnOut = ops.linear(a.output, wo, bias(ctx, c.oBias, n.o, c.hiddenSize));
  // o_proj reads the attention of v: v's output columns can absorb its scales.
  const oGroup: ScaleGroup = { layer: i, prev: a.qkv[a.qkv.length - 1], linears: [wo] };
  if (c.parallelResidual) {
    const m = mlp(ctx, i, x, n);
    const output = b.node('Add', [b.node('Add', [h, attnOut]), m.output]);
    return { output, scaleGroups: [{ ...normGroup(i, inNorm, [...a.qkv, ...m.inputs]), unclipped: a.unclipped }, oGroup, ...m.groups] };
  }
  const postNorm = normParams(ctx, n.postNorm!);
  const s = skipNorm(ctx, attnOut, h, postNorm);
  const m = mlp(ctx, i, s.normed, n);
  const output = b.node('Add', [s.sum, m.output]);
  return { output, scaleGroups: [{ ...normGroup(i, inNorm, a.qkv), unclipped: a.unclipped }, normGroup(i, postNorm, m.inputs), oGroup, ...m.groups] };
}

/** Final norm and vocabulary head (the embedding table when tied): outputs logits [B, S, vocab]. */
function lmHead(ctx: ExportContext, h: string): { weight: string; scaleGroup: ScaleGroup } {
  const { b, c, weights } = ctx;
  const finalNorm = normParams(ctx, finalNormName(c));
  const xf = norm(ctx, h, finalNorm);
  const name = ctx.arch.names.head;
  // A tied head reuses the embedding values, stored transposed for MatMul.
  const source = c.tieWordEmbeddings ? embeddingName(ctx) : `${name}.weight`;
  weights.checkShape(source, [c.vocabSize, c.hiddenSize]);
  const rows = () => weights.get(source).data;
  const weight = b.initializer(
    lazyTensor(`${name}.weight`, DataType.FLOAT, [c.hiddenSize, c.vocabSize], () => transpose(rows(), c.vocabSize, c.hiddenSize), rows),
  );
  const headBias = c.headBias ? vector(ctx, `${name}.bias`, c.vocabSize) : undefined;
  const logits = headBias
    ? b.node('Add', [b.node('MatMul', [xf, weight]), headBias], {}, { outputs: ['logits'] })
    : b.node('MatMul', [xf, weight], {}, { outputs: ['logits'] });
  b.output(logits, DataType.FLOAT, ['batch_size', 'sequence_length', c.vocabSize]);
  return { weight, scaleGroup: normGroup(-1, finalNorm, [weight]) };
}
