import type { Model, Node } from '@alki/onnx';
import { findLinears } from './rewrite.js';

/** A group of linears reading one input (the shape of the export's `alki.scale_groups`). */
export interface InferredGroup {
  layer: number;
  norm?: string;
  normBias?: string;
  prev?: string;
  linears: string[];
  /** No producer can absorb a scale: a Mul is inserted before the linears instead. */
  insertMul?: boolean;
  /** Per weight, how many leading outputs AWQ must not clip (attention queries/keys). */
  unclipped?: Record<string, number>;
}

const NORM_OPS = new Set(['LayerNormalization', 'SimplifiedLayerNormalization', 'RMSNormalization', 'SkipLayerNormalization', 'SkipSimplifiedLayerNormalization']);

/**
 * Scale groups of a graph Alki did not build: MatMuls with constant weights
 * that read the same value form a group; when that value comes straight from
 * a normalization op with a constant scale (and bias), the scale folds there;
 * when it comes from a MatMul (+ bias Add) with a constant weight, it folds
 * into that layer's output columns; otherwise a Mul is inserted.
 */
export function inferScaleGroups(model: Model): InferredGroup[] {
  const inits = new Set(model.graph.initializers.map((t) => t.name));
  const producer = new Map<string, Node>();
  for (const n of model.graph.nodes) for (const o of n.outputs) producer.set(o, n);
  const byInput = new Map<string, string[]>();
  for (const s of findLinears(model)) byInput.set(s.node.inputs[0], [...(byInput.get(s.node.inputs[0]) ?? []), s.weight.name]);
  const groups: InferredGroup[] = [];
  for (const [input, linears] of byInput) {
    const p = producer.get(input);
    if (p && NORM_OPS.has(p.opType) && p.outputs[0] === input && inits.has(p.inputs[1] ?? '')) {
      const bias = p.opType === 'LayerNormalization' && inits.has(p.inputs[2] ?? '') ? p.inputs[2] : undefined;
      groups.push({ layer: 0, norm: p.inputs[1], normBias: bias, linears });
      continue;
    }
    let q = p;
    if (q?.opType === 'Add') q = producer.get(q.inputs.find((x) => !inits.has(x)) ?? '');
    if (q && q.opType === 'MatMul' && inits.has(q.inputs[1])) {
      groups.push({ layer: 0, prev: q.inputs[1], linears });
      continue;
    }
    groups.push({ layer: 0, linears, insertMul: true });
  }
  return groups;
}
