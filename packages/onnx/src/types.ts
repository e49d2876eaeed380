/** ONNX TensorProto.DataType values used by Alki. */
export enum DataType {
  FLOAT = 1,
  UINT8 = 2,
  INT8 = 3,
  UINT16 = 4,
  INT16 = 5,
  INT32 = 6,
  INT64 = 7,
  STRING = 8,
  BOOL = 9,
  FLOAT16 = 10,
  DOUBLE = 11,
  UINT32 = 12,
  UINT64 = 13,
  BFLOAT16 = 16,
}

/** Typed arrays a tensor's data may live in. FLOAT16/BFLOAT16 use Uint16Array bit patterns. */
export type TensorData =
  Float32Array | Float64Array | Uint8Array | Int8Array | Uint16Array | Int16Array | Int32Array | Uint32Array | BigInt64Array | BigUint64Array;

/** A named, typed, dense tensor held in memory. */
export interface Tensor {
  name: string;
  dataType: DataType;
  dims: number[];
  data: TensorData;
}

/** A dimension is a fixed size or a symbolic name such as "batch_size". */
export type Dim = number | string;

/** Name, element type and shape of a graph input or output. */
export interface ValueInfo {
  name: string;
  elemType: DataType;
  shape?: Dim[];
}

/** A node attribute: tagged so that 1 (int) and 1.0 (float) stay distinct. */
export type Attribute =
  | { type: 'float'; value: number }
  | { type: 'int'; value: number }
  | { type: 'string'; value: string }
  | { type: 'floats'; value: number[] }
  | { type: 'ints'; value: number[] }
  | { type: 'strings'; value: string[] }
  | { type: 'tensor'; value: Tensor }
  | { type: 'graph'; value: Graph };

export interface Node {
  opType: string;
  /** '' (or undefined) for the default ONNX domain, e.g. 'com.microsoft'. */
  domain?: string;
  name?: string;
  inputs: string[];
  outputs: string[];
  attributes: Record<string, Attribute>;
}

export interface Graph {
  name: string;
  nodes: Node[];
  initializers: Tensor[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  valueInfo?: ValueInfo[];
}

export interface OpsetImport {
  domain: string;
  version: number;
}

/** An ONNX model in memory, with plain typed arrays for its weights. */
export interface Model {
  irVersion: number;
  opsetImports: OpsetImport[];
  producerName?: string;
  producerVersion?: string;
  docString?: string;
  graph: Graph;
  /** ModelProto.metadata_props as a plain map. */
  metadata: Record<string, string>;
}
