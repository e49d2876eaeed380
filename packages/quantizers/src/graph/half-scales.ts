import { DataType, float32ToFloat16, type Node, type Tensor } from '@alki/onnx';

/** float16's smallest normal and largest finite magnitudes: outside them a scale would lose bits or overflow. */
const HALF_MIN_NORMAL = 2 ** -14;
const HALF_MAX = 65504;

/** What {@link halfScales} makes of a float32 scales tensor. */
export interface StoredScales {
  /** The initializer to write: float16 when every scale fits, else the float32 tensor as given. */
  tensor: Tensor;
  /** The Cast back to float32 to insert before the first reader, when `tensor` is float16. */
  cast?: Node;
  /** The float32 value the readers take: the Cast's output, or the tensor's own name. */
  value: string;
}

/**
 * Block scales stored as float16 on disk and cast back to float32 in the graph. MatMulNBits takes its scales in its
 * activations' type (float32 here), but onnxruntime folds a Cast of a constant into a float32 initializer when the
 * session loads, before the kernel packs its weights: the same kernel, the same speed and memory at run time, and
 * 2 bytes per block on disk instead of 4 — 60 MB of a 1.1B model's block-32 int4 bundle, the gap to llama.cpp's
 * Q4_0 (whose blocks also carry a float16 scale). A scale rounded to float16 moves its block by at most 2⁻¹¹ of its
 * values: far below int4 or int8 rounding. Tensors with a scale outside float16's normal range (≠ 0) stay float32.
 */
export function halfScales(t: Tensor): StoredScales {
  const s = t.data as Float32Array;
  if (t.dataType !== DataType.FLOAT || !(s instanceof Float32Array)) return { tensor: t, value: t.name };
  for (let i = 0; i < s.length; i++) {
    const a = Math.abs(s[i]);
    if (a !== 0 && !(a >= HALF_MIN_NORMAL && a <= HALF_MAX)) return { tensor: t, value: t.name };
  }
  const tensor: Tensor = { name: t.name, dataType: DataType.FLOAT16, dims: t.dims, data: float32ToFloat16(s) };
  const value = `${t.name}/float`;
  const cast: Node = { opType: 'Cast', name: `${t.name}/Cast`, inputs: [t.name], outputs: [value], attributes: { to: { type: 'int', value: DataType.FLOAT } } };
  return { tensor, cast, value };
}
