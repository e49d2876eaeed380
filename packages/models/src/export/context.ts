import { DataType, GraphBuilder, floatTensor, lazyTensor, transpose } from '@alki/onnx';
import { architecture, type Architecture } from '../architectures.js';
import type { DecoderConfig } from '../config.js';
import type { WeightStore } from '../weights.js';
import { Ops } from './ops.js';

/** onnxruntime's contrib-op domain (GroupQueryAttention, Skip(Simplified)LayerNormalization). */
export const MS_DOMAIN = { domain: 'com.microsoft' };

/**
 * What every graph-building function of the export reads: the graph being built, the checkpoint's config and its
 * architecture's record, the weights, the flavour, and the graph inputs. One per export; functions take it first.
 */
export interface ExportContext {
  b: GraphBuilder;
  ops: Ops;
  c: DecoderConfig;
  arch: Architecture;
  weights: WeightStore;
  /** The ort flavour (onnxruntime's fused com.microsoft ops) rather than the portable one. */
  ort: boolean;
  ids: string;
  mask: string;
  pos: string;
  /** past_key_values.{i}.key|value, per layer. */
  past: { key: string; value: string }[];
  /** cos/sin [B, 1, S, rotaryDim] gathered at position_ids: built on first use (rotary-graph.ts). */
  positional?: { cos: string; sin: string };
}

/** A new graph with the decoder's inputs (the transformers.js / Optimum names). */
export function createContext(c: DecoderConfig, weights: WeightStore, ort: boolean): ExportContext {
  const b = new GraphBuilder('alki_decoder');
  const ids = b.input('input_ids', DataType.INT64, ['batch_size', 'sequence_length']);
  const mask = b.input('attention_mask', DataType.INT64, ['batch_size', 'total_sequence_length']);
  const pos = b.input('position_ids', DataType.INT64, ['batch_size', 'sequence_length']);
  const past = Array.from({ length: c.numLayers }, (_, i) => ({
    key: b.input(`past_key_values.${i}.key`, DataType.FLOAT, ['batch_size', c.numKvHeads, 'past_sequence_length', c.headDim]),
    value: b.input(`past_key_values.${i}.value`, DataType.FLOAT, ['batch_size', c.numKvHeads, 'past_sequence_length', c.headDim]),
  }));
  return { b, ops: new Ops(b), c, arch: architecture(c.modelType), weights, ort, ids, mask, pos, past };
}

/**
 * A checkpoint linear weight [out, in] as a MatMul initializer [in, out]: lazy (onnx lazy.ts), read and transposed
 * when a later step (quantizer, writer) reads it, so that one layer's floats at a time are in memory.
 */
export function linearWeight(ctx: ExportContext, name: string, outDim: number, inDim: number): string {
  const { b, weights } = ctx;
  weights.checkShape(`${name}.weight`, [outDim, inDim]);
  const rows = () => weights.get(`${name}.weight`).data;
  return b.initializer(lazyTensor(`${name}.weight`, DataType.FLOAT, [inDim, outDim], () => transpose(rows(), outDim, inDim), rows));
}

/** A 1-D checkpoint tensor as an initializer of the same name. */
export function vector(ctx: ExportContext, name: string, n: number): string {
  return ctx.b.initializer(floatTensor(name, [n], ctx.weights.get(name, [n]).data));
}

/** `${name}.bias` when the architecture has that bias (`on`). */
export function bias(ctx: ExportContext, on: boolean, name: string, n: number): string | undefined {
  return on ? vector(ctx, `${name}.bias`, n) : undefined;
}
