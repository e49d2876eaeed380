import { ort } from '@alki/runtime';
import { DataType, createModel, encodeModel, type Graph, type Model, type Tensor, type ValueInfo } from '@alki/onnx';
import { CALIBRATION_SESSION_OPTIONS } from '../ort/no-spin.js';

/** Float initializers larger than this are fed as session inputs (weights, norms, biases); smaller ones stay constants. */
const FED_MIN = 16;

/** A graph slice ready to run: its (possibly shared) session and how its values are named there. */
export interface PreparedSlice {
  session: ort.InferenceSession;
  /** The session's name for a value of the original slice. */
  name(original: string): string;
  /** The slice's float weights as session feeds, from the model's current data (no copies). */
  weightFeeds(): Record<string, ort.Tensor>;
}

/**
 * onnxruntime sessions for graph slices, shared between slices of the same
 * structure. The decoder layers of a model differ only in names and weights:
 * with weights fed as inputs and values renamed by position, every layer maps
 * to one session, so a whole calibration pass creates a handful of sessions
 * instead of two per layer, and their memory arenas stay warm (fresh memory is
 * expensive: first-touch page faults cost ~4.6 ms per MB on the 2-core VM).
 * Feeding weights also skips encoding hundreds of MB into protobuf per layer.
 */
export class SliceSessions {
  private readonly sessions = new Map<string, Promise<ort.InferenceSession>>();

  constructor(private readonly model: Model) {}

  async prepare(graph: Graph): Promise<PreparedSlice> {
    const { canonical, key, names, fed } = canonicalize(graph);
    let s = this.sessions.get(key);
    if (!s) {
      const opsets = Object.fromEntries(this.model.opsetImports.map((o) => [o.domain, o.version]));
      s = ort.InferenceSession.create(encodeModel(createModel(canonical, { opsets })), {
        ...CALIBRATION_SESSION_OPTIONS,
        graphOptimizationLevel: 'all',
        interOpNumThreads: 1,
      });
      this.sessions.set(key, s);
    }
    const session = await s;
    return {
      session,
      name: (original) => names.get(original) ?? original,
      weightFeeds: () => Object.fromEntries(fed.map((t) => [names.get(t.name)!, new ort.Tensor('float32', t.data as Float32Array, t.dims)])),
    };
  }

  /** Sessions created so far (layers of one structure share one). */
  get size(): number {
    return this.sessions.size;
  }

  async release(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of all) await (await s).release();
  }
}

/**
 * The slice with every value renamed `v0, v1, …` in order of use by its nodes and
 * its float weights turned into inputs; `key` identifies the structure
 * (ops, attributes, wiring, shapes, constants), so equal keys can share a
 * session. Graphs with subgraph attributes keep their names (outer-scope
 * references) and get a key of their own.
 */
function canonicalize(graph: Graph): { canonical: Graph; key: string; names: Map<string, string>; fed: Tensor[] } {
  const fed = graph.initializers.filter((t) => t.dataType === DataType.FLOAT && t.data instanceof Float32Array && t.data.length > FED_MIN);
  const fedNames = new Set(fed.map((t) => t.name));
  const baked = graph.initializers.filter((t) => !fedNames.has(t.name));
  const inputs: ValueInfo[] = [...graph.inputs, ...fed.map((t) => ({ name: t.name, elemType: DataType.FLOAT, shape: t.dims }))];
  const hasSubgraphs = graph.nodes.some((n) => Object.values(n.attributes).some((a) => a.type === 'graph'));
  const names = new Map<string, string>();
  const rename = (name: string): string => {
    if (name === '' || hasSubgraphs) return name;
    let c = names.get(name);
    if (c === undefined) names.set(name, (c = `v${names.size}`));
    return c;
  };
  // Names follow the nodes (the export may list a shared initializer before or after a layer's own ones).
  const nodes = graph.nodes.map((n) => ({ ...n, name: undefined, inputs: n.inputs.map(rename), outputs: n.outputs.map(rename) }));
  const byName = <T extends { name: string }>(list: T[]) => list.map((v) => ({ ...v, name: rename(v.name) })).sort((a, b) => order(a.name) - order(b.name));
  const order = (name: string) => (hasSubgraphs ? 0 : Number(name.slice(1)));
  const canonical: Graph = {
    name: 'slice',
    inputs: byName(inputs),
    initializers: byName(baked),
    nodes,
    outputs: graph.outputs.map((v) => ({ ...v, name: rename(v.name) })),
  };
  const key = hasSubgraphs
    ? `unshared:${Math.random()}`
    : JSON.stringify(
        {
          inputs: canonical.inputs,
          nodes: canonical.nodes.map((n) => [n.opType, n.domain ?? '', n.inputs, n.outputs, n.attributes]),
          baked: canonical.initializers.map((t) => [t.name, t.dataType, t.dims, Array.from(t.data as ArrayLike<number | bigint>, String)]),
          outputs: canonical.outputs.map((v) => v.name),
        },
        (_, v) => (typeof v === 'bigint' ? String(v) : v),
      );
  return { canonical, key, names, fed };
}
