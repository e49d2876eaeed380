import { AlkiError } from '@alki/core';
import { DataType, type Model, type Node, type Tensor } from '@alki/onnx';

/** A MatMul whose second input is a constant float weight [K, N]. */
export interface LinearSite {
  node: Node;
  weight: Tensor;
  K: number;
  N: number;
}

/** Finds MatMul nodes with a constant rank-2 float32 weight (the layers a weight quantizer can rewrite). */
export function findLinears(model: Model): LinearSite[] {
  const inits = new Map(model.graph.initializers.map((t) => [t.name, t]));
  const sites: LinearSite[] = [];
  for (const node of model.graph.nodes) {
    if (node.opType !== 'MatMul' || (node.domain ?? '') !== '') continue;
    const w = inits.get(node.inputs[1]);
    if (!w || w.dataType !== DataType.FLOAT || w.dims.length !== 2 || inits.has(node.inputs[0])) continue;
    sites.push({ node, weight: w, K: w.dims[0], N: w.dims[1] });
  }
  return sites;
}

/** Checks a weight for NaN/Inf so a broken checkpoint never becomes a silently broken bundle. */
export function assertFinite(name: string, data: Float32Array): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      throw new AlkiError('NUMERIC', `weight "${name}" contains ${Number.isNaN(data[i]) ? 'NaN' : 'Inf'} (element ${i})`, 'the checkpoint is damaged or was saved after a diverged training step; download it again');
    }
  }
}

/** Drops initializers that no node (or subgraph) reads any more. */
export function pruneInitializers(model: Model): void {
  const used = new Set<string>();
  for (const n of model.graph.nodes) for (const i of n.inputs) used.add(i);
  for (const o of model.graph.outputs) used.add(o.name);
  model.graph.initializers = model.graph.initializers.filter((t) => used.has(t.name));
}
