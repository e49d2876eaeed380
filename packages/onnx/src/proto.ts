import protobuf from 'protobufjs';
import { AlkiError, showValue } from '@alki/core';
import { onnxSchema } from './schema.js';
import { elementSize, tensorBytes, typedArrayFromBytes } from './tensor.js';
import { DataType, type Attribute, type Graph, type Model, type Node, type Tensor, type ValueInfo } from './types.js';

const root = protobuf.Root.fromJSON(onnxSchema as unknown as protobuf.INamespace);
const ModelProto = root.lookupType('onnx.ModelProto');

/* eslint-disable @typescript-eslint/no-explicit-any */
type Msg = any;

/**
 * Where a tensor's bytes live when they are stored outside the protobuf
 * (ONNX external data). `offset`/`length` are in bytes inside `location`.
 */
export interface ExternalRef {
  location: string;
  offset: number;
  length: number;
}

/**
 * Options of {@link encodeModel}: tensors listed in `external` are written as
 * references instead of inline bytes.
 */
export interface EncodeOptions {
  external?: Map<Tensor, ExternalRef>;
}

/** Serializes a model to ONNX protobuf bytes. */
export function encodeModel(model: Model, options: EncodeOptions = {}): Uint8Array {
  const msg = {
    irVersion: model.irVersion,
    producerName: model.producerName ?? '',
    producerVersion: model.producerVersion ?? '',
    docString: model.docString ?? '',
    opsetImport: model.opsetImports.map((o) => ({ domain: o.domain, version: o.version })),
    metadataProps: Object.entries(model.metadata).map(([key, value]) => ({ key, value })),
    graph: graphToMsg(model.graph, options.external),
  };
  return ModelProto.encode(ModelProto.fromObject(msg)).finish();
}

/**
 * Decoded model plus the external-data references of tensors whose bytes were
 * not inline (their `data` is empty until {@link resolveExternalData} fills it).
 */
export interface DecodedModel {
  model: Model;
  external: Map<Tensor, ExternalRef>;
}

const HINT_EXPORT = 'export the model again; the file may be truncated or not an ONNX file';

/**
 * Parses ONNX protobuf bytes. `source` (the file, when there is one) names the
 * bytes in error messages.
 */
export function decodeModel(bytes: Uint8Array, source = 'the ONNX data'): DecodedModel {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength === 0) {
    throw new AlkiError('CORRUPT_ONNX', `${source} is empty (0 bytes), not an ONNX model`, HINT_EXPORT);
  }
  let msg: Msg;
  try {
    // A plain Uint8Array view: protobufjs reads a Node Buffer with a reader that silently clips
    // strings and bytes running past the end, so a truncated file would decode without an error.
    msg = ModelProto.decode(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (e) {
    throw new AlkiError('CORRUPT_ONNX', `${source} is not a valid ONNX model (${String((e as Error)?.message ?? e).slice(0, 200)})`, HINT_EXPORT, { cause: e });
  }
  if (!msg.graph) throw new AlkiError('CORRUPT_ONNX', `${source} is not a valid ONNX model: it has no graph`, HINT_EXPORT);
  const external = new Map<Tensor, ExternalRef>();
  try {
    const model: Model = {
      irVersion: num(msg.irVersion),
      opsetImports: (msg.opsetImport ?? []).map((o: Msg) => ({ domain: o.domain ?? '', version: num(o.version) })),
      producerName: msg.producerName || undefined,
      producerVersion: msg.producerVersion || undefined,
      docString: msg.docString || undefined,
      metadata: Object.fromEntries((msg.metadataProps ?? []).map((p: Msg) => [p.key, p.value])),
      graph: graphFromMsg(msg.graph, external, source),
    };
    return { model, external };
  } catch (e) {
    if (e instanceof AlkiError) throw e;
    // A graph nested deeper than the stack holds (graph attributes inside graph attributes ...).
    throw new AlkiError('CORRUPT_ONNX', `${source} is not a valid ONNX model (${String((e as Error)?.message ?? e).slice(0, 200)})`, HINT_EXPORT, { cause: e });
  }
}

function num(v: unknown): number {
  if (v == null) return 0;
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  return (v as { toNumber(): number }).toNumber();
}

function graphToMsg(g: Graph, external?: Map<Tensor, ExternalRef>): Msg {
  return {
    name: g.name,
    node: g.nodes.map((n) => nodeToMsg(n, external)),
    initializer: g.initializers.map((t) => tensorToMsg(t, external)),
    input: g.inputs.map(valueInfoToMsg),
    output: g.outputs.map(valueInfoToMsg),
    valueInfo: (g.valueInfo ?? []).map(valueInfoToMsg),
  };
}

function graphFromMsg(m: Msg, external: Map<Tensor, ExternalRef>, src: string): Graph {
  return {
    name: m.name ?? '',
    nodes: (m.node ?? []).map((n: Msg) => nodeFromMsg(n, external, src)),
    initializers: (m.initializer ?? []).map((t: Msg) => tensorFromMsg(t, external, src)),
    inputs: (m.input ?? []).map(valueInfoFromMsg),
    outputs: (m.output ?? []).map(valueInfoFromMsg),
    valueInfo: (m.valueInfo ?? []).map(valueInfoFromMsg),
  };
}

function valueInfoToMsg(v: ValueInfo): Msg {
  const shape = v.shape ? { dim: v.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } : undefined;
  return { name: v.name, type: { tensorType: { elemType: v.elemType, shape } } };
}

function valueInfoFromMsg(m: Msg): ValueInfo {
  const tt = m.type?.tensorType;
  const shape = tt?.shape ? (tt.shape.dim ?? []).map((d: Msg) => (d.dimParam ? d.dimParam : d.dimValue != null ? num(d.dimValue) : '?')) : undefined;
  return { name: m.name, elemType: tt?.elemType ?? 0, shape };
}

function nodeToMsg(n: Node, external?: Map<Tensor, ExternalRef>): Msg {
  return {
    name: n.name ?? '',
    opType: n.opType,
    domain: n.domain ?? '',
    input: n.inputs,
    output: n.outputs,
    attribute: Object.entries(n.attributes).map(([name, a]) => attributeToMsg(name, a, external)),
  };
}

function nodeFromMsg(m: Msg, external: Map<Tensor, ExternalRef>, src: string): Node {
  const attributes: Record<string, Attribute> = {};
  for (const a of m.attribute ?? []) {
    // An own property also for a name such as "__proto__", which assignment would turn into a prototype.
    Object.defineProperty(attributes, a.name, { value: attributeFromMsg(a, external, src), enumerable: true, writable: true, configurable: true });
  }
  return {
    opType: m.opType,
    domain: m.domain || undefined,
    name: m.name || undefined,
    inputs: m.input ?? [],
    outputs: m.output ?? [],
    attributes,
  };
}

// AttributeProto.AttributeType values.
const ATTR = { float: 1, int: 2, string: 3, tensor: 4, graph: 5, floats: 6, ints: 7, strings: 8 } as const;

function attributeToMsg(name: string, a: Attribute, external?: Map<Tensor, ExternalRef>): Msg {
  const enc = new TextEncoder();
  const base = { name, type: ATTR[a.type] };
  switch (a.type) {
    case 'float':
      return { ...base, f: a.value };
    case 'int':
      return { ...base, i: a.value };
    case 'string':
      return { ...base, s: enc.encode(a.value) };
    case 'floats':
      return { ...base, floats: a.value };
    case 'ints':
      return { ...base, ints: a.value };
    case 'strings':
      return { ...base, strings: a.value.map((s) => enc.encode(s)) };
    case 'tensor':
      return { ...base, t: tensorToMsg(a.value, external) };
    case 'graph':
      return { ...base, g: graphToMsg(a.value, external) };
  }
}

function attributeFromMsg(m: Msg, external: Map<Tensor, ExternalRef>, src: string): Attribute {
  const dec = new TextDecoder();
  const missing = (field: string) =>
    new AlkiError(
      'CORRUPT_ONNX',
      `${src} is not a valid ONNX model: attribute ${showValue(m.name)} of type ${m.type} has no ${field}`,
      'export the model again; the file is damaged',
    );
  switch (m.type) {
    case ATTR.float:
      return { type: 'float', value: m.f ?? 0 };
    case ATTR.int:
      return { type: 'int', value: num(m.i) };
    case ATTR.string:
      return { type: 'string', value: dec.decode(m.s ?? new Uint8Array()) };
    case ATTR.floats:
      return { type: 'floats', value: [...(m.floats ?? [])] };
    case ATTR.ints:
      return { type: 'ints', value: (m.ints ?? []).map(num) };
    case ATTR.strings:
      return { type: 'strings', value: (m.strings ?? []).map((s: Uint8Array) => dec.decode(s)) };
    case ATTR.tensor:
      if (!m.t) throw missing('tensor');
      return { type: 'tensor', value: tensorFromMsg(m.t, external, src) };
    case ATTR.graph:
      if (!m.g) throw missing('graph');
      return { type: 'graph', value: graphFromMsg(m.g, external, src) };
    default:
      throw new AlkiError(
        'CORRUPT_ONNX',
        `${src}: attribute ${showValue(m.name)} has unsupported type ${showValue(m.type)}`,
        'Alki reads float, int, string, tensor and graph attributes',
      );
  }
}

function tensorToMsg(t: Tensor, external?: Map<Tensor, ExternalRef>): Msg {
  const ref = external?.get(t);
  const base = { name: t.name, dims: t.dims, dataType: t.dataType };
  if (ref) {
    return {
      ...base,
      dataLocation: 1,
      externalData: [
        { key: 'location', value: ref.location },
        { key: 'offset', value: String(ref.offset) },
        { key: 'length', value: String(ref.length) },
      ],
    };
  }
  return { ...base, rawData: tensorBytes(t) };
}

/** Elements of a shape, or Infinity once the product leaves the safe integers. */
function safeNumel(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) {
    n *= d;
    if (n > Number.MAX_SAFE_INTEGER) return Infinity;
  }
  return n;
}

/** A decimal byte count or offset of external data: digits only, a safe integer. */
function parseByteCount(v: unknown): number {
  return typeof v === 'string' && /^[0-9]{1,16}$/.test(v) && Number.isSafeInteger(Number(v)) ? Number(v) : NaN;
}

function tensorFromMsg(m: Msg, external: Map<Tensor, ExternalRef>, src: string): Tensor {
  const dataType = m.dataType as DataType;
  const dims: number[] = (m.dims ?? []).map(num);
  const name: string = m.name ?? '';
  const bad = (what: string, hint = 'export the model again; the file is damaged') =>
    new AlkiError('CORRUPT_ONNX', `${src} is not a valid ONNX model: tensor ${showValue(name)} ${what}`, hint);
  if (!dims.every((d) => Number.isSafeInteger(d) && d >= 0)) throw bad(`has invalid dims [${dims.slice(0, 8).join(', ')}]`);
  const count = safeNumel(dims);
  if (m.dataLocation === 1) {
    const kv: Record<string, unknown> = {};
    for (const e of m.externalData ?? []) if (typeof e?.key === 'string') kv[e.key] = e.value;
    if (typeof kv.location !== 'string' || !kv.location) throw bad('is external but names no location');
    const size = elementSize(dataType);
    if (size === 0) throw bad(`has data type ${showValue(dataType)}, which Alki cannot read`, 'Alki reads numeric tensors only');
    const offset = kv.offset == null ? 0 : parseByteCount(kv.offset);
    const length = kv.length == null ? count * size : parseByteCount(kv.length);
    if (!Number.isSafeInteger(offset)) throw bad(`has an invalid external data offset ${showValue(kv.offset)}`);
    if (!Number.isSafeInteger(length))
      throw bad(`has an invalid external data length ${kv.length == null ? `(dims [${dims.slice(0, 8).join(', ')}] are too large)` : showValue(kv.length)}`);
    if (length !== count * size) throw bad(`declares ${length} bytes of external data but its dims [${dims.slice(0, 8).join(', ')}] need ${count * size}`);
    const t: Tensor = { name, dataType, dims, data: typedArrayFromBytes(dataType, new Uint8Array(0)) };
    external.set(t, { location: kv.location, offset, length });
    return t;
  }
  let data: Tensor['data'];
  try {
    data = m.rawData && m.rawData.length > 0 ? typedArrayFromBytes(dataType, m.rawData) : typedFieldData(dataType, m);
  } catch (e) {
    if (e instanceof AlkiError) throw bad(`cannot be read: ${e.message}`, e.hint);
    throw e;
  }
  if (data.length !== count) throw bad(`holds ${data.length} values but its dims [${dims.slice(0, 8).join(', ')}] need ${count}`);
  return { name, dataType, dims, data };
}

// Tensors written without raw_data keep their values in the typed repeated fields.
function typedFieldData(dataType: DataType, m: Msg): Tensor['data'] {
  switch (dataType) {
    case DataType.FLOAT:
      return Float32Array.from(m.floatData ?? []);
    case DataType.DOUBLE:
      return Float64Array.from(m.doubleData ?? []);
    case DataType.INT64:
      return BigInt64Array.from((m.int64Data ?? []).map((v: unknown) => BigInt(num(v))));
    case DataType.UINT64:
    case DataType.UINT32:
      return dataType === DataType.UINT32
        ? Uint32Array.from((m.uint64Data ?? []).map(num))
        : BigUint64Array.from((m.uint64Data ?? []).map((v: unknown) => BigInt(num(v))));
    case DataType.INT32:
      return Int32Array.from(m.int32Data ?? []);
    case DataType.INT16:
      return Int16Array.from(m.int32Data ?? []);
    case DataType.INT8:
      return Int8Array.from(m.int32Data ?? []);
    case DataType.UINT8:
    case DataType.BOOL:
      return Uint8Array.from(m.int32Data ?? []);
    case DataType.UINT16:
    case DataType.FLOAT16:
    case DataType.BFLOAT16:
      return Uint16Array.from(m.int32Data ?? []);
    default:
      throw new AlkiError('CORRUPT_ONNX', `tensor data type ${dataType} is not supported`, 'Alki reads numeric tensors only');
  }
}
