import { AlkiError } from '@alki/core';
import { bfloat16ToFloat32, float16ToFloat32 } from './float16.js';
import { DataType, type Tensor, type TensorData } from './types.js';

/** Bytes per element of a data type (0 for STRING). */
export function elementSize(t: DataType): number {
  switch (t) {
    case DataType.UINT8:
    case DataType.INT8:
    case DataType.BOOL:
      return 1;
    case DataType.UINT16:
    case DataType.INT16:
    case DataType.FLOAT16:
    case DataType.BFLOAT16:
      return 2;
    case DataType.FLOAT:
    case DataType.INT32:
    case DataType.UINT32:
      return 4;
    case DataType.DOUBLE:
    case DataType.INT64:
    case DataType.UINT64:
      return 8;
    default:
      return 0;
  }
}

/** Number of elements of a shape. */
export function numel(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** A little-endian byte view of a tensor's data (no copy). */
export function tensorBytes(t: Tensor): Uint8Array {
  const d = t.data; // once: a lazy tensor loads on every read
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/** Wraps little-endian bytes as the typed array of `dataType` (copies when unaligned). */
export function typedArrayFromBytes(dataType: DataType, bytes: Uint8Array): TensorData {
  const size = elementSize(dataType);
  if (size === 0) throw new AlkiError('CORRUPT_ONNX', `tensor data type ${dataType} is not supported`, 'Alki reads numeric tensors only');
  if (bytes.byteLength % size !== 0) {
    throw new AlkiError('CORRUPT_ONNX', `tensor byte length ${bytes.byteLength} is not a multiple of ${size}`, 'the ONNX file is damaged; export it again');
  }
  // Node Buffers are views into a shared pool: copy (not Buffer.slice, which does not) when unaligned.
  const aligned = bytes.byteOffset % size === 0 ? bytes : new Uint8Array(bytes);
  const { buffer, byteOffset } = aligned;
  const n = bytes.byteLength / size;
  switch (dataType) {
    case DataType.FLOAT:
      return new Float32Array(buffer, byteOffset, n);
    case DataType.DOUBLE:
      return new Float64Array(buffer, byteOffset, n);
    case DataType.UINT8:
    case DataType.BOOL:
      return new Uint8Array(buffer, byteOffset, n);
    case DataType.INT8:
      return new Int8Array(buffer, byteOffset, n);
    case DataType.UINT16:
    case DataType.FLOAT16:
    case DataType.BFLOAT16:
      return new Uint16Array(buffer, byteOffset, n);
    case DataType.INT16:
      return new Int16Array(buffer, byteOffset, n);
    case DataType.INT32:
      return new Int32Array(buffer, byteOffset, n);
    case DataType.UINT32:
      return new Uint32Array(buffer, byteOffset, n);
    case DataType.INT64:
      return new BigInt64Array(buffer, byteOffset, n);
    case DataType.UINT64:
      return new BigUint64Array(buffer, byteOffset, n);
    default:
      throw new AlkiError('CORRUPT_ONNX', `tensor data type ${dataType} is not supported`);
  }
}

/** A float32 tensor. */
export function floatTensor(name: string, dims: number[], data: Float32Array | number[]): Tensor {
  const arr = data instanceof Float32Array ? data : Float32Array.from(data);
  checkLength(name, dims, arr.length);
  return { name, dataType: DataType.FLOAT, dims, data: arr };
}

/** An int64 tensor from numbers. */
export function int64Tensor(name: string, dims: number[], data: number[] | BigInt64Array): Tensor {
  const arr = data instanceof BigInt64Array ? data : BigInt64Array.from(data.map((x) => BigInt(x)));
  checkLength(name, dims, arr.length);
  return { name, dataType: DataType.INT64, dims, data: arr };
}

/** A uint8 tensor (e.g. packed MatMulNBits weights). */
export function uint8Tensor(name: string, dims: number[], data: Uint8Array): Tensor {
  checkLength(name, dims, data.length);
  return { name, dataType: DataType.UINT8, dims, data };
}

/** An int8 tensor. */
export function int8Tensor(name: string, dims: number[], data: Int8Array): Tensor {
  checkLength(name, dims, data.length);
  return { name, dataType: DataType.INT8, dims, data };
}

/** Reads any float tensor (FLOAT, FLOAT16, BFLOAT16, DOUBLE) as float32 values. */
export function toFloat32(t: Tensor): Float32Array {
  switch (t.dataType) {
    case DataType.FLOAT:
      return t.data as Float32Array;
    case DataType.FLOAT16:
      return float16ToFloat32(t.data as Uint16Array);
    case DataType.BFLOAT16:
      return bfloat16ToFloat32(t.data as Uint16Array);
    case DataType.DOUBLE:
      return Float32Array.from(t.data as Float64Array);
    default:
      throw new AlkiError('BAD_INPUT', `tensor "${t.name}" has data type ${DataType[t.dataType] ?? t.dataType}, not a float type`);
  }
}

function checkLength(name: string, dims: number[], length: number): void {
  if (numel(dims) !== length) {
    throw new AlkiError('BAD_INPUT', `tensor "${name}": shape [${dims.join(', ')}] needs ${numel(dims)} values, got ${length}`);
  }
}
