import { AlkiError } from '@alki/core';
import { DataType, transpose, type Model, type Node, type Tensor } from '@alki/onnx';

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

/**
 * The output projection ("lm_head"): the constant-weight MatMul whose result
 * is the graph's `logits` output (the name transformers.js and Optimum use),
 * directly or through one bias Add. Returns its weight's name, or undefined
 * for graphs without one.
 */
export function findHead(model: Model): string | undefined {
  const out = model.graph.outputs.find((o) => o.name === 'logits')?.name;
  const producer = new Map<string, Node>();
  for (const n of model.graph.nodes) for (const o of n.outputs) producer.set(o, n);
  let p = producer.get(out ?? '');
  if (p?.opType === 'Add') p = p.inputs.map((i) => producer.get(i)).find((n) => n?.opType === 'MatMul');
  const site = p ? findLinears(model).find((s) => s.node === p) : undefined;
  return site?.weight.name;
}

/** Checks a weight for NaN/Inf so a broken checkpoint never becomes a silently broken bundle. */
export function assertFinite(name: string, data: Float32Array): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      throw new AlkiError(
        'NUMERIC',
        `weight "${name}" contains ${Number.isNaN(data[i]) ? 'NaN' : 'Inf'} (element ${i})`,
        'the checkpoint is damaged or was saved after a diverged training step; download it again',
      );
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

/**
 * Rewrites Gemm nodes with a constant B (and transA = 0) as MatMul (+ Add of
 * the constant bias), so that one code path quantizes both: W = α·op(B),
 * bias = β·C. Other Gemms are left as they are.
 */
export function gemmToMatMul(model: Model): number {
  const inits = new Map(model.graph.initializers.map((t) => [t.name, t]));
  let converted = 0;
  model.graph.nodes = model.graph.nodes.flatMap((n) => {
    if (n.opType !== 'Gemm' || (n.domain ?? '') !== '') return [n];
    const attr = (k: string, d: number) => (n.attributes[k]?.value as number | undefined) ?? d;
    const B = inits.get(n.inputs[1]);
    const C = n.inputs[2] ? inits.get(n.inputs[2]) : undefined;
    if (!B || B.dataType !== DataType.FLOAT || B.dims.length !== 2 || attr('transA', 0) !== 0 || (n.inputs[2] && !C)) return [n];
    const alpha = attr('alpha', 1);
    const beta = attr('beta', 1);
    const [r, c] = B.dims;
    const src = B.data as Float32Array;
    const w = attr('transB', 0) ? transpose(src, r, c) : Float32Array.from(src);
    if (alpha !== 1) for (let i = 0; i < w.length; i++) w[i] *= alpha;
    const [K, N] = attr('transB', 0) ? [c, r] : [r, c];
    const wName = `${B.name}.gemm_weight`;
    model.graph.initializers.push({ name: wName, dataType: DataType.FLOAT, dims: [K, N], data: w });
    converted++;
    if (!C) return [{ opType: 'MatMul', name: n.name, inputs: [n.inputs[0], wName], outputs: n.outputs, attributes: {} }];
    const bias = Float32Array.from(C.data as Float32Array, (v) => v * beta);
    const bName = `${C.name}.gemm_bias`;
    model.graph.initializers.push({ name: bName, dataType: DataType.FLOAT, dims: C.dims, data: bias });
    const mm = `${n.outputs[0]}_matmul`;
    return [
      { opType: 'MatMul', name: `${n.name ?? wName}_MatMul`, inputs: [n.inputs[0], wName], outputs: [mm], attributes: {} },
      { opType: 'Add', name: `${n.name ?? wName}_Add`, inputs: [mm, bName], outputs: n.outputs, attributes: {} },
    ];
  });
  if (converted) pruneInitializers(model);
  return converted;
}
