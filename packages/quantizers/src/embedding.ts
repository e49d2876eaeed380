import {
  DataType,
  GraphBuilder,
  floatTensor,
  int64Tensor,
  readTiedEmbedding,
  tensorByteLength,
  uint8Tensor,
  unpackBits,
  type Model,
  type Node,
  type Tensor,
  type TensorSpill,
} from '@alki/onnx';
import { rtnPacked } from './rtn-packed.js';
import { halfScales } from './graph/half-scales.js';
import type { QuantizeReport } from './quantize.js';

/** A Gather (axis 0) from a constant float table [V, H]: a token embedding. */
export interface EmbeddingSite {
  node: Node;
  table: Tensor;
  V: number;
  H: number;
}

/** Gather nodes that look rows up in a constant rank-2 float32 table. */
export function findEmbeddings(model: Model): EmbeddingSite[] {
  const inits = new Map(model.graph.initializers.map((t) => [t.name, t]));
  const sites: EmbeddingSite[] = [];
  for (const node of model.graph.nodes) {
    if (node.opType !== 'Gather' || (node.domain ?? '') !== '') continue;
    const axis = node.attributes.axis?.value ?? 0;
    const t = inits.get(node.inputs[0]);
    if (axis !== 0 || !t || t.dataType !== DataType.FLOAT || t.dims.length !== 2 || inits.has(node.inputs[1])) continue;
    sites.push({ node, table: t, V: t.dims[0], H: t.dims[1] });
  }
  return sites;
}

/** The tensors of a quantized table [V, H]: codes [V, nBlocks, blockSize·bits/8] packed as MatMulNBits packs B. */
interface QuantizedTable {
  codes: string;
  /** A float32 value: a float16 table's Cast (see halfScales), which onnxruntime folds at load. */
  scales: string;
  /** [V, nBlocks] uint8, one zero point per byte; none for symmetric (2^(bits−1)). */
  zeroPoints?: string;
  bits: 4 | 8;
  blockSize: number;
  nBlocks: number;
  H: number;
  /** [H] floats each looked-up row is multiplied by (1/s where the codes hold the head's AWQ-scaled weights). */
  columnScale?: string;
}

/**
 * Replaces `site`'s Gather by a lookup in a quantized table, dequantizing only the rows looked up, in standard
 * ONNX ops (Gather, Cast, Floor, Concat, Reshape, Sub, Mul): every runtime runs it, onnxruntime-web's WASM
 * backend included, which has no com.microsoft GatherBlockQuantized; a lookup is a few thousand values per token,
 * so a fused kernel would buy nothing measurable.
 */
function dequantizingGather(model: Model, site: EmbeddingSite, q: QuantizedTable, extra: Tensor[], prelude: Node[] = []): void {
  const b = new GraphBuilder();
  b.scope = `/${site.table.name}/dequantize`;
  const ids = site.node.inputs[1];
  const c = (name: string, values: number[]) => b.initializer(floatTensor(b.fresh(name), [], values));
  const shape = (name: string, values: number[]) => b.initializer(int64Tensor(b.fresh(name), [values.length], values));
  const n = (op: string, inputs: string[], attrs: Record<string, number> = {}, out?: string) => b.node(op, inputs, attrs, out ? { outputs: [out] } : {});
  // [batch, seq, nBlocks, blob] bytes → [batch, seq, nBlocks, blockSize] codes as floats.
  const bytes = n('Cast', [n('Gather', [q.codes, ids], { axis: 0 })], { to: DataType.FLOAT });
  let codes = bytes;
  if (q.bits === 4) {
    // Low nibble first: byte = lo + 16·hi.
    const hi = n('Floor', [n('Mul', [bytes, c('inv16', [1 / 16])])]);
    const lo = n('Sub', [bytes, n('Mul', [hi, c('sixteen', [16])])]);
    const pairs = n('Concat', [n('Unsqueeze', [lo, shape('last', [-1])]), n('Unsqueeze', [hi, shape('last', [-1])])], { axis: -1 });
    codes = n('Reshape', [pairs, shape('blocks', [0, 0, q.nBlocks, q.blockSize])]);
  }
  const perBlock = (table: string) => n('Unsqueeze', [n('Gather', [table, ids], { axis: 0 }), shape('last', [-1])]);
  const zero = q.zeroPoints ? n('Cast', [perBlock(q.zeroPoints)], { to: DataType.FLOAT }) : c('zero', [1 << (q.bits - 1)]);
  const values = n('Mul', [n('Sub', [codes, zero]), perBlock(q.scales)]);
  const rows = n('Reshape', [values, shape('hidden', [0, 0, q.H])], {}, q.columnScale ? undefined : site.node.outputs[0]);
  if (q.columnScale) n('Mul', [rows, q.columnScale], {}, site.node.outputs[0]);
  const g = b.build();
  model.graph.initializers.push(...extra, ...g.initializers);
  model.graph.nodes.splice(model.graph.nodes.indexOf(site.node), 1, ...prelude, ...g.nodes);
}

/**
 * Rounds an embedding table to `bits` per value in blocks along the hidden axis (RTN) and looks rows up in it
 * with {@link dequantizingGather}: the table is a large share of a small model (262 MB of a 1.1B model's 926 MB
 * int4 bundle in float32). `blockSize` must divide H. Returns the relative error ‖E − Ê‖ / ‖E‖.
 */
export function quantizeEmbedding(
  model: Model,
  site: EmbeddingSite,
  o: { bits: 4 | 8; blockSize: number; symmetric: boolean },
  report: QuantizeReport,
  spillFile?: TensorSpill,
): number {
  const name = site.table.name;
  const spill = (t: Tensor) => spillFile?.spill(t) ?? t;
  const p = rtnPacked(site.table.data as Float32Array, site.V, site.H, o);
  const blob = (p.blockSize * p.bits) / 8;
  const codes = spill(uint8Tensor(`${name}.qweight`, [site.V, p.nBlocks, blob], p.B));
  const half = halfScales(floatTensor(`${name}.scales`, [site.V, p.nBlocks], p.scales));
  const scales = spill(half.tensor);
  const zeroPoints = p.zeroPoints && spill(uint8Tensor(`${name}.zero_points`, [site.V, p.nBlocks], unpackRows(p.zeroPoints, o.bits, site.V, p.nBlocks)));
  const tensors = [codes, scales, ...(zeroPoints ? [zeroPoints] : [])];
  dequantizingGather(
    model,
    site,
    { codes: codes.name, scales: half.value, zeroPoints: zeroPoints?.name, bits: o.bits, blockSize: o.blockSize, nBlocks: p.nBlocks, H: site.H },
    tensors,
    // float16 scales: cast as a whole table, not per gathered row — onnxruntime folds the Cast of a constant at load,
    // and a float16 Gather needs shader-f16 on WebGPU, which many adapters lack.
    half.cast ? [half.cast] : [],
  );
  report.embedding = { name, bits: o.bits, relativeError: p.relativeError };
  report.floatBytes += tensorByteLength(site.table);
  report.quantizedBytes += tensors.reduce((sum, t) => sum + tensorByteLength(t), 0);
  return p.relativeError;
}

/** Zero points packed per row (MatMulNBits' layout, rows padded to a byte) → one per byte, [V, nBlocks]. */
function unpackRows(packed: Uint8Array, bits: 4 | 8, V: number, nBlocks: number): Uint8Array {
  if (bits === 8) return packed;
  const rowBytes = Math.ceil((nBlocks * bits) / 8);
  const out = new Uint8Array(V * nBlocks);
  for (let v = 0; v < V; v++) out.set(unpackBits(packed, bits, nBlocks, v * rowBytes), v * nBlocks);
  return out;
}

/**
 * For a model whose head is its embedding table transposed (tie_word_embeddings), looks embedding rows up in the
 * head's MatMulNBits weight instead of storing a second table: the head's B [V, nBlocks, blob] holds the table's
 * rows in blocks along H, and its scales are [V, nBlocks]; only the zero points are stored again, one per byte.
 * Where AWQ folded a scale s into the head's inputs (its codes hold W·diag(s)), each looked-up row is divided by s
 * (one Mul by 1/s, H floats), so the table is shared after AWQ too; `appliedScales` says which scales were folded
 * (by weight name), and without it an AWQ build's table is not shared. Returns false when the model is not tied
 * that way.
 */
export function shareTiedEmbedding(model: Model, site: EmbeddingSite, report: QuantizeReport, appliedScales?: ReadonlyMap<string, Float32Array>): boolean {
  const tied = readTiedEmbedding(model);
  if (!tied || tied.embedding !== site.table.name || report.head?.name !== tied.head) return false;
  // AWQ may have scaled the head's inputs: only the caller's record of its scales says by how much.
  if ((report.method === 'awq' || report.awqScales) && !appliedScales) return false;
  const scale = appliedScales?.get(tied.head);
  const head = tied.head;
  const node = model.graph.nodes.find((n) => n.opType === 'MatMulNBits' && n.inputs[1] === `${head}.qweight`);
  if (!node) return false;
  const attr = (k: string) => node.attributes[k]?.value as number;
  const [K, N, bits, bs] = [attr('K'), attr('N'), attr('bits'), attr('block_size')];
  if (N !== site.V || K !== site.H || K % bs !== 0 || (bits !== 4 && bits !== 8)) return false;
  const inits = new Map(model.graph.initializers.map((t) => [t.name, t]));
  const nBlocks = K / bs;
  const extra: Tensor[] = [];
  let zeroPoints: string | undefined;
  if (node.inputs[3]) {
    const zp = uint8Tensor(
      `${site.table.name}.zero_points`,
      [site.V, nBlocks],
      unpackRows(inits.get(node.inputs[3])!.data as Uint8Array, bits, site.V, nBlocks),
    );
    extra.push(zp);
    zeroPoints = zp.name;
  }
  // float16 scales reach the head through a Cast written just before it, late in the graph: moved to the front, so
  // that the lookup, early in the graph, reads its float32 output too (nodes stay in topological order; a float16
  // Gather would need shader-f16 on WebGPU). Nothing runs the graph by spans after this point.
  const cast = model.graph.nodes.find((n) => n.opType === 'Cast' && n.outputs[0] === node.inputs[2]);
  if (cast) model.graph.nodes.unshift(...model.graph.nodes.splice(model.graph.nodes.indexOf(cast), 1));
  let columnScale: string | undefined;
  if (scale) {
    const inverse = floatTensor(
      `${site.table.name}.inverse_awq_scale`,
      [K],
      Array.from(scale, (v) => 1 / v),
    );
    extra.push(inverse);
    columnScale = inverse.name;
  }
  dequantizingGather(model, site, { codes: node.inputs[1], scales: node.inputs[2], zeroPoints, bits, blockSize: bs, nBlocks, H: K, columnScale }, extra);
  report.embedding = { name: site.table.name, bits, relativeError: report.layers.find((l) => l.name === head)?.relativeError ?? NaN, sharedWith: head };
  report.floatBytes += tensorByteLength(site.table);
  report.quantizedBytes += extra.reduce((sum, t) => sum + tensorByteLength(t), 0);
  return true;
}
