import type { Model, Node, ScaleGroup } from '@alki/onnx';
import { findLinears } from './rewrite.js';

/**
 * Normalization ops whose output is x̂·γ (+ β), with where γ and β sit among their inputs: the Skip* ops take
 * (input, skip, γ, β | bias, …), so their γ is input 2, not 1.
 */
const NORM_OPS: Record<string, { gamma: number; beta?: number }> = {
  LayerNormalization: { gamma: 1, beta: 2 },
  SimplifiedLayerNormalization: { gamma: 1 },
  RMSNormalization: { gamma: 1 },
  SkipLayerNormalization: { gamma: 2, beta: 3 },
  SkipSimplifiedLayerNormalization: { gamma: 2 },
};

/**
 * Scale groups of a graph Alki did not build: MatMuls with constant weights
 * that read the same value form a group; when that value comes straight from
 * a normalization op with a constant scale (and bias), the scale folds there;
 * when it comes from a MatMul (+ bias Add) with a constant weight, it folds
 * into that layer's output columns; otherwise a Mul is inserted.
 */
export function inferScaleGroups(model: Model): ScaleGroup[] {
  const inits = new Set(model.graph.initializers.map((t) => t.name));
  const producer = new Map<string, Node>();
  for (const n of model.graph.nodes) for (const o of n.outputs) producer.set(o, n);
  const byInput = new Map<string, string[]>();
  for (const s of findLinears(model)) byInput.set(s.node.inputs[0], [...(byInput.get(s.node.inputs[0]) ?? []), s.weight.name]);
  const groups: ScaleGroup[] = [];
  for (const [input, linears] of byInput) {
    const p = producer.get(input);
    const at = p ? NORM_OPS[p.opType] : undefined;
    if (p && at && p.outputs[0] === input && inits.has(p.inputs[at.gamma] ?? '')) {
      const beta = at.beta !== undefined && inits.has(p.inputs[at.beta] ?? '') ? p.inputs[at.beta] : undefined;
      groups.push({ layer: 0, norm: p.inputs[at.gamma], normBias: beta, linears });
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
