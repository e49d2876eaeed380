/**
 * The names transformers.js (@huggingface/transformers 3 and 4) looks for, so
 * that a bundle opens in it unchanged in Node and in the browser. It loads
 * `onnx/model<suffix>.onnx`, where the suffix comes from a dtype (fp32 '', q8
 * '_quantized', q4 '_q4', q2 '_q2'); the dtype defaults to q8 on WASM and fp32
 * elsewhere unless config.json's `transformers.js_config.dtype` names one. In
 * the browser it fetches external data only when `use_external_data_format`
 * says so, from `<graph>_data` — the name the graph itself must then carry.
 * alki.json stays the source of truth (`model.path`); these are derived.
 */

/** transformers.js dtypes an Alki bundle can be. */
export type TransformersJsDtype = 'fp32' | 'q8' | 'q4' | 'q2';

const SUFFIX: Record<TransformersJsDtype, string> = { fp32: '', q8: '_quantized', q4: '_q4', q2: '_q2' };

/**
 * The dtype of a bundle: the bit width of its quantized layers (an 8-bit
 * head under 4-bit layers is still q4). W8A8 is q8, as transformers.js's own
 * dynamically quantized files are.
 */
export function transformersJsDtype(q: { method: string; bits: number }): TransformersJsDtype {
  if (q.method === 'none' || q.bits >= 16) return 'fp32';
  if (q.bits === 8) return 'q8';
  if (q.bits === 4) return 'q4';
  if (q.bits === 2) return 'q2';
  throw new RangeError(`no transformers.js dtype for ${q.bits}-bit weights`);
}

/** `model.onnx`, `model_q4.onnx`, …: the graph's file name inside `onnx/`. */
export function graphFileName(dtype: TransformersJsDtype): string {
  return `model${SUFFIX[dtype]}.onnx`;
}

/**
 * config.json with `transformers.js_config` set for the bundle's graph: its
 * dtype, and `use_external_data_format` for it when its weights are external
 * (one chunk). Other keys of an existing transformers.js_config are kept.
 */
export function withTransformersJsConfig(
  config: Record<string, unknown>,
  dtype: TransformersJsDtype,
  graphFile: string,
  externalData: boolean,
): Record<string, unknown> {
  const old = config['transformers.js_config'];
  const tjs: Record<string, unknown> = old && typeof old === 'object' && !Array.isArray(old) ? { ...(old as Record<string, unknown>) } : {};
  tjs.dtype = dtype;
  const ext = tjs.use_external_data_format;
  const perFile: Record<string, unknown> = ext && typeof ext === 'object' && !Array.isArray(ext) ? { ...(ext as Record<string, unknown>) } : {};
  if (externalData) perFile[graphFile] = 1;
  else delete perFile[graphFile];
  if (Object.keys(perFile).length) tjs.use_external_data_format = perFile;
  else delete tjs.use_external_data_format;
  return { ...config, 'transformers.js_config': tjs };
}
