import { AlkiError } from '@alki/core';
import { floatTensor, materialize, type Model, type Node, type ScaleGroup, type Tensor } from '@alki/onnx';

/**
 * Per-input-channel scales (AWQ, SmoothQuant) folded into a graph: x·W = (x/s)·(s·W), with x/s absorbed by the
 * producer of x (a norm's weight, or the preceding linear's output columns) at no runtime cost.
 */

/** Whether a per-channel input scale of `g` can be applied: folded at zero cost, or (foreign graphs) by an inserted Mul. */
export function canFoldScale(model: Model, g: ScaleGroup): boolean {
  return foldFor(model, g) !== undefined || !!g.insertMul;
}

/** Where no producer can absorb the scale: x → Mul(x, 1/s) → the group's MatMuls (one Mul at run time). */
function insertMul(model: Model, g: ScaleGroup): (s: Float32Array) => void {
  return (s) => {
    const targets = model.graph.nodes.filter((n) => n.opType === 'MatMul' && g.linears.includes(n.inputs[1]));
    const x = targets[0].inputs[0];
    const inv = floatTensor(
      `${g.linears[0]}.input_scale`,
      [s.length],
      s.map((v) => 1 / v),
    );
    const out = `${x}_scaled_${model.graph.initializers.length}`;
    model.graph.initializers.push(inv);
    const at = Math.min(...targets.map((n) => model.graph.nodes.indexOf(n)));
    model.graph.nodes.splice(at, 0, { opType: 'Mul', name: `${inv.name}_Mul`, inputs: [x, inv.name], outputs: [out], attributes: {} });
    for (const n of targets) n.inputs[0] = out;
  };
}

/**
 * Applies a per-input-channel scale s to a group without changing what the
 * float model computes: the linears' input rows are multiplied by s and the
 * producer of their input (norm weight, or preceding linear's output columns
 * and bias) divided by s. Throws when the group has no foldable producer.
 */
export function applyScale(model: Model, g: ScaleGroup, s: Float32Array): void {
  const fold = foldFor(model, g) ?? (g.insertMul ? insertMul(model, g) : undefined);
  if (!fold) throw new AlkiError('BAD_INPUT', `the input of ${g.linears.join(', ')} has no producer that can absorb a scale`);
  fold(s);
  const inits = new Map(model.graph.initializers.map((t) => [t.name, t]));
  for (const name of g.linears) {
    const t = materialize(inits.get(name)!);
    const d = t.data as Float32Array;
    const [K, N] = t.dims;
    for (let k = 0; k < K; k++) for (let c = 0; c < N; c++) d[k * N + c] *= s[k];
  }
}

/** Initializers by name, the MatMul reading each constant weight, and the readers of each value. */
export function graphIndex(model: Model): { inits: Map<string, Tensor>; matmulOf: Map<string, Node>; consumers: Map<string, Node[]> } {
  const inits = new Map(model.graph.initializers.map((t) => [t.name, t]));
  const matmulOf = new Map<string, Node>();
  const consumers = new Map<string, Node[]>();
  for (const n of model.graph.nodes) {
    if (n.opType === 'MatMul' && inits.has(n.inputs[1])) matmulOf.set(n.inputs[1], n);
    for (const i of n.inputs) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  }
  return { inits, matmulOf, consumers };
}

function foldFor(model: Model, g: ScaleGroup): ((s: Float32Array) => void) | undefined {
  const { inits, matmulOf, consumers } = graphIndex(model);
  const first = inits.get(g.linears[0]);
  if (!first) return undefined;
  // Folding rewrites values in place: lazy tensors (a streamed export) are loaded and kept first.
  return foldTarget(
    g,
    (name) => {
      const t = inits.get(name);
      return t && materialize(t);
    },
    consumers,
    matmulOf,
    first.dims[0],
  );
}

/**
 * Where a group's input scale can be folded at zero runtime cost: the norm
 * weight (divided by s) when only that norm's Mul reads it, or the output
 * columns (and bias) of the preceding linear when its width matches.
 */
function foldTarget(
  g: ScaleGroup,
  weight: (n: string) => Tensor | undefined,
  consumers: Map<string, Node[]>,
  matmulOf: Map<string, Node>,
  K: number,
): ((s: Float32Array) => void) | undefined {
  if (g.norm) {
    const t = weight(g.norm)!;
    if ((consumers.get(g.norm) ?? []).length !== 1 || t.dims.length !== 1 || t.dims[0] !== K) return undefined;
    const bias = g.normBias ? weight(g.normBias) : undefined;
    return (s) => {
      const d = t.data as Float32Array;
      for (let k = 0; k < K; k++) d[k] /= s[k];
      // LayerNorm: y = x̂·γ + β, so β is divided too.
      if (bias) for (let k = 0; k < K; k++) (bias.data as Float32Array)[k] /= s[k];
    };
  }
  if (g.prev) {
    const t = weight(g.prev)!;
    if (t.dims[1] !== K) return undefined; // e.g. v_proj → o_proj under grouped-query attention
    const mm = matmulOf.get(g.prev)!;
    const adds = (consumers.get(mm.outputs[0]) ?? []).filter((n) => n.opType === 'Add');
    const biasName = adds.length === 1 ? adds[0].inputs.find((x) => x !== mm.outputs[0]) : undefined;
    return (s) => {
      const d = t.data as Float32Array;
      const Kp = t.dims[0];
      for (let r = 0; r < Kp; r++) for (let c = 0; c < K; c++) d[r * K + c] /= s[c];
      const bias = biasName ? weight(biasName) : undefined;
      if (bias) {
        const b = bias.data as Float32Array;
        for (let c = 0; c < K; c++) b[c] /= s[c];
      }
    };
  }
  return undefined;
}
