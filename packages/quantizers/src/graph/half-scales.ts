import { DataType, float16ToFloat32, float32ToFloat16, type Node, type Tensor } from '@alki/onnx';

/** What {@link halfScales} makes of a float32 scales tensor. */
export interface StoredScales {
  /** The initializer to write: float16 when every scale fits, else the float32 tensor as given. */
  tensor: Tensor;
  /** The Cast back to float32, to insert before the reader, when `tensor` is float16. */
  cast?: Node;
  /** The float32 value the readers take: the Cast's output, or the tensor's own name. */
  value: string;
}

/**
 * Block scales stored as float16 on disk and cast back to float32 in the graph. MatMulNBits takes its scales in its
 * activations' type (float32 here), but onnxruntime folds a Cast of a constant into a float32 initializer when the
 * session loads, before the kernel packs its weights: the same kernel, the same speed and memory at run time, and
 * 2 bytes per block on disk instead of 4 — 68 MB of a 1.1B model's block-32 int4 bundle (773 → 705 MB). The
 * quantizers choose every scale as a float16 value (halfPrecision), so the conversion is exact; a tensor holding a
 * scale float16 cannot represent (above 65504, or not rounded by blockParams) keeps float32, unchanged.
 */
export function halfScales(t: Tensor): StoredScales {
  const s = t.data as Float32Array;
  if (t.dataType !== DataType.FLOAT || !(s instanceof Float32Array)) return { tensor: t, value: t.name };
  const half = float32ToFloat16(s);
  const back = float16ToFloat32(half);
  for (let i = 0; i < s.length; i++) if (back[i] !== s[i]) return { tensor: t, value: t.name };
  const tensor: Tensor = { name: t.name, dataType: DataType.FLOAT16, dims: t.dims, data: half };
  const value = `${t.name}/float`;
  const cast: Node = { opType: 'Cast', name: `${t.name}/Cast`, inputs: [t.name], outputs: [value], attributes: { to: { type: 'int', value: DataType.FLOAT } } };
  return { tensor, cast, value };
}
