import protobuf from 'protobufjs';
import { AlkiError } from '@alki/core';
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

/** Parses ONNX protobuf bytes. */
export function decodeModel(bytes: Uint8Array): DecodedModel {
  let msg: Msg;
  try {
    msg = ModelProto.decode(bytes);
  } catch (e) {
    throw new AlkiError('CORRUPT_ONNX', `the file is not a valid ONNX model (${(e as Error).message})`, 'export the model again; the file may be truncated or not an ONNX file', { cause: e });
  }
  if (!msg.graph) throw new AlkiError('CORRUPT_ONNX', 'the ONNX model has no graph', 'export the model again; the file may be truncated or not an ONNX file');
  const external = new Map<Tensor, ExternalRef>();
  const model: Model = {
    irVersion: num(msg.irVersion),
    opsetImports: (msg.opsetImport ?? []).map((o: Msg) => ({ domain: o.domain ?? '', version: num(o.version) })),
    producerName: msg.producerName || undefined,
    producerVersion: msg.producerVersion || undefined,
    docString: msg.docString || undefined,
    metadata: Object.fromEntries((msg.metadataProps ?? []).map((p: Msg) => [p.key, p.value])),
    graph: graphFromMsg(msg.graph, external),
  };
  return { model, external };
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

function graphFromMsg(m: Msg, external: Map<Tensor, ExternalRef>): Graph {
  return {
    name: m.name ?? '',
    nodes: (m.node ?? []).map((n: Msg) => nodeFromMsg(n, external)),
    initializers: (m.initializer ?? []).map((t: Msg) => tensorFromMsg(t, external)),
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

function nodeFromMsg(m: Msg, external: Map<Tensor, ExternalRef>): Node {
  const attributes: Record<string, Attribute> = {};
  for (const a of m.attribute ?? []) attributes[a.name] = attributeFromMsg(a, external);
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

function attributeFromMsg(m: Msg, external: Map<Tensor, ExternalRef>): Attribute {
  const dec = new TextDecoder();
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
      return { type: 'tensor', value: tensorFromMsg(m.t, external) };
    case ATTR.graph:
      return { type: 'graph', value: graphFromMsg(m.g, external) };
    default:
      throw new AlkiError('CORRUPT_ONNX', `attribute "${m.name}" has unsupported type ${m.type}`, 'Alki reads float, int, string, tensor and graph attributes');
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

function tensorFromMsg(m: Msg, external: Map<Tensor, ExternalRef>): Tensor {
  const dataType = m.dataType as DataType;
  const dims: number[] = (m.dims ?? []).map(num);
  const name: string = m.name ?? '';
  if (m.dataLocation === 1) {
    const kv = Object.fromEntries((m.externalData ?? []).map((e: Msg) => [e.key, e.value]));
    if (!kv.location) throw new AlkiError('CORRUPT_ONNX', `tensor "${name}" is external but names no location`);
    const count = dims.reduce((a, b) => a * b, 1);
    const t: Tensor = { name, dataType, dims, data: typedArrayFromBytes(dataType, new Uint8Array(0)) };
    external.set(t, { location: kv.location, offset: Number(kv.offset ?? 0), length: Number(kv.length ?? count * elementSize(dataType)) });
    return t;
  }
  if (m.rawData && m.rawData.length > 0) return { name, dataType, dims, data: typedArrayFromBytes(dataType, m.rawData) };
  return { name, dataType, dims, data: typedFieldData(dataType, m) };
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
      return dataType === DataType.UINT32 ? Uint32Array.from((m.uint64Data ?? []).map(num)) : BigUint64Array.from((m.uint64Data ?? []).map((v: unknown) => BigInt(num(v))));
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
      throw new AlkiError('CORRUPT_ONNX', `tensor data type ${dataType} is not supported`);
  }
}
