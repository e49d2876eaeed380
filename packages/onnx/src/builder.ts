import type { Attribute, DataType, Dim, Graph, Model, Node, OpsetImport, Tensor, ValueInfo } from './types.js';

/** Attribute values accepted by {@link GraphBuilder.node}; integers become ints unless wrapped with {@link float}. */
export type AttributeInput = Attribute | number | string | number[] | string[];

/** Marks a number as a float attribute even when it is integral (e.g. alpha 1.0). */
export function float(value: number): Attribute {
  return { type: 'float', value };
}

function toAttribute(v: AttributeInput): Attribute {
  if (typeof v === 'number') return Number.isInteger(v) ? { type: 'int', value: v } : { type: 'float', value: v };
  if (typeof v === 'string') return { type: 'string', value: v };
  if (Array.isArray(v)) {
    if (v.every((x) => typeof x === 'string')) return { type: 'strings', value: v as string[] };
    const nums = v as number[];
    return nums.every(Number.isInteger) ? { type: 'ints', value: nums } : { type: 'floats', value: nums };
  }
  return v;
}

export interface NodeOptions {
  domain?: string;
  /** Output names, or a count of outputs to name automatically (default 1). */
  outputs?: string[] | number;
  name?: string;
}

/**
 * A small builder of ONNX graphs: nodes get unique names and outputs, so a
 * decoder can be written as a sequence of calls that read like its equations.
 */
export class GraphBuilder {
  private readonly nodes: Node[] = [];
  private readonly initializers: Tensor[] = [];
  private readonly inputs: ValueInfo[] = [];
  private readonly outputs: ValueInfo[] = [];
  private readonly used = new Set<string>();
  private readonly counters = new Map<string, number>();
  /** Name prefix for nodes and values created next, e.g. "/model/layers.0/attn". */
  scope = '';

  constructor(readonly name = 'main') {}

  /** A fresh value name under the current scope. */
  fresh(base: string): string {
    const stem = this.scope ? `${this.scope}/${base}` : base;
    const n = this.counters.get(stem) ?? 0;
    this.counters.set(stem, n + 1);
    const name = n === 0 ? stem : `${stem}_${n}`;
    if (this.used.has(name)) return this.fresh(base);
    this.used.add(name);
    return name;
  }

  input(name: string, elemType: DataType, shape: Dim[]): string {
    this.used.add(name);
    this.inputs.push({ name, elemType, shape });
    return name;
  }

  output(name: string, elemType: DataType, shape?: Dim[]): void {
    this.outputs.push({ name, elemType, shape });
  }

  /** Adds a constant tensor; returns its name. */
  initializer(t: Tensor): string {
    this.used.add(t.name);
    this.initializers.push(t);
    return t.name;
  }

  /** Adds a node and returns its output names. */
  nodeN(opType: string, inputs: string[], attrs: Record<string, AttributeInput> = {}, opts: NodeOptions = {}): string[] {
    const outs = Array.isArray(opts.outputs)
      ? opts.outputs
      : Array.from({ length: opts.outputs ?? 1 }, (_, i) => this.fresh(i === 0 ? `${opType}_output` : `${opType}_output${i}`));
    for (const o of outs) this.used.add(o);
    const attributes: Record<string, Attribute> = {};
    for (const [k, v] of Object.entries(attrs)) attributes[k] = toAttribute(v);
    this.nodes.push({
      opType,
      domain: opts.domain,
      name: opts.name ?? this.fresh(opType),
      inputs,
      outputs: outs,
      attributes,
    });
    return outs;
  }

  /** Adds a single-output node and returns its output name. */
  node(opType: string, inputs: string[], attrs: Record<string, AttributeInput> = {}, opts: NodeOptions = {}): string {
    return this.nodeN(opType, inputs, attrs, opts)[0];
  }

  build(): Graph {
    return {
      name: this.name,
      nodes: [...this.nodes],
      initializers: [...this.initializers],
      inputs: [...this.inputs],
      outputs: [...this.outputs],
    };
  }
}

/** Wraps a graph into a model (IR 10 by default: ONNX Runtime 1.16+ reads it). */
export function createModel(
  graph: Graph,
  opts: { opsets: Record<string, number>; producerName?: string; producerVersion?: string; metadata?: Record<string, string>; irVersion?: number },
): Model {
  const opsetImports: OpsetImport[] = Object.entries(opts.opsets).map(([domain, version]) => ({ domain, version }));
  return {
    irVersion: opts.irVersion ?? 10,
    opsetImports,
    producerName: opts.producerName ?? 'alki',
    producerVersion: opts.producerVersion,
    graph,
    metadata: opts.metadata ?? {},
  };
}
