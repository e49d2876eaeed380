import { AlkiError } from '@alki/core';
import type { Graph, Model, Node, ValueInfo } from '@alki/onnx';

/**
 * The part of a graph that computes `outputs`, with `cuts` turned into graph
 * inputs: nodes are collected backwards from the outputs and stop at cuts,
 * graph inputs and initializers. Cuts the outputs do not depend on are left
 * out. Initializers are shared, not copied.
 */
export function extractSubgraph(model: Model, outputs: string[], cuts: ValueInfo[]): Graph {
  const g = model.graph;
  const producer = new Map<string, Node>();
  for (const n of g.nodes) for (const o of n.outputs) producer.set(o, n);
  const inits = new Map(g.initializers.map((t) => [t.name, t]));
  const graphInputs = new Map(g.inputs.map((v) => [v.name, v]));
  const cutNames = new Set(cuts.map((c) => c.name));
  const keep = new Set<Node>();
  const usedInputs = new Map<string, ValueInfo>();
  const usedInits = new Set<string>();
  const stack = [...outputs];
  const seen = new Set<string>();
  const reachedCuts = new Set<string>();
  while (stack.length) {
    const name = stack.pop()!;
    if (seen.has(name) || name === '') continue;
    seen.add(name);
    if (cutNames.has(name)) {
      reachedCuts.add(name);
      continue;
    }
    if (graphInputs.has(name)) {
      usedInputs.set(name, graphInputs.get(name)!);
      continue;
    }
    if (inits.has(name)) {
      usedInits.add(name);
      continue;
    }
    const n = producer.get(name);
    if (!n) throw new AlkiError('CORRUPT_ONNX', `value "${name}" has no producer in the graph`, 'the model graph is incomplete');
    if (keep.has(n)) continue;
    keep.add(n);
    for (const i of n.inputs) stack.push(i);
  }
  // Nodes that do not depend on the cuts (masks, rotary tables computed from the graph inputs) first: the export
  // builds such shared nodes inside layer 0, so this makes every layer's slice list its nodes in the same order.
  const kept = g.nodes.filter((n) => keep.has(n));
  const fromCuts = new Set(cutNames);
  const dependent = new Set<Node>();
  for (const n of kept) {
    if (n.inputs.some((i) => fromCuts.has(i))) {
      dependent.add(n);
      for (const o of n.outputs) fromCuts.add(o);
    }
  }
  // A node kept for one output may also produce a cut (SkipSimplifiedLayerNormalization: the normalized value, cut,
  // and the residual sum, needed): its copy of the cut gets a name of its own, so the cut stays the only definition.
  const renamed = (n: Node): Node =>
    n.outputs.some((o) => cutNames.has(o)) ? { ...n, outputs: n.outputs.map((o) => (cutNames.has(o) ? `${o}/alki_recomputed` : o)) } : n;
  return {
    name: `${g.name}_slice`,
    nodes: [...kept.filter((n) => !dependent.has(n)), ...kept.filter((n) => dependent.has(n))].map(renamed),
    initializers: g.initializers.filter((t) => usedInits.has(t.name)),
    inputs: [...cuts.filter((c) => reachedCuts.has(c.name)), ...usedInputs.values()],
    outputs: outputs.map((name) => ({ name, elemType: 1 })),
  };
}
