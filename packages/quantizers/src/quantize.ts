import { AlkiError, throwIfAborted, type ProgressCallback } from '@alki/core';
import { transpose, type Model } from '@alki/onnx';
import { dequantizeBlockwise, type BlockwiseOptions } from './blockwise.js';
import { matMulNBitsNode, matMulNBitsTensors } from './matmul-nbits.js';
import { assertFinite, findLinears, pruneInitializers } from './rewrite.js';
import { rtn } from './rtn.js';

/** Quantization methods available today. */
export const QUANTIZE_METHODS = ['none', 'rtn'] as const;
export type QuantizeMethod = (typeof QUANTIZE_METHODS)[number];

/** Options of {@link quantize}. */
export interface QuantizeOptions {
  method: QuantizeMethod;
  /** Weight bits: 4 (default) or 8. 2 is accepted for experiments. */
  bits?: 2 | 4 | 8;
  /** Inputs per scale along K: 16, 32 (default), 64, 128 or 256. */
  blockSize?: number;
  /** Default false: per-block zero points (better for skewed blocks). */
  symmetric?: boolean;
  /**
   * MatMulNBits accuracy_level: 0 (default) keeps float activations; 4 lets
   * onnxruntime quantize activations to int8 inside the kernel (faster on
   * CPU, ~1e-2 relative error).
   */
  accuracyLevel?: 0 | 1 | 2 | 3 | 4;
  /** Weight initializer names (exact or RegExp) to leave in float. */
  exclude?: (string | RegExp)[];
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

/** Per-layer outcome: relative Frobenius error ‖W − Ŵ‖ / ‖W‖. */
export interface LayerReport {
  name: string;
  K: number;
  N: number;
  relativeError: number;
}

export interface QuantizeReport {
  method: QuantizeMethod;
  bits: number;
  blockSize: number;
  symmetric: boolean;
  accuracyLevel: number;
  layers: LayerReport[];
  excluded: string[];
  /** Bytes of the quantized layers' weights before and after. */
  floatBytes: number;
  quantizedBytes: number;
}

const BLOCK_SIZES = [16, 32, 64, 128, 256];

/** Validates options and fills defaults; throws BAD_OPTION with a hint. */
export function resolveQuantizeOptions(o: QuantizeOptions): Required<Omit<QuantizeOptions, 'onProgress' | 'signal' | 'exclude'>> & Pick<QuantizeOptions, 'onProgress' | 'signal' | 'exclude'> {
  if (!(QUANTIZE_METHODS as readonly string[]).includes(o.method)) {
    throw new AlkiError('BAD_OPTION', `unknown quantization method "${o.method}"`, `choose one of: ${QUANTIZE_METHODS.join(', ')}`);
  }
  const bits = o.bits ?? 4;
  if (![2, 4, 8].includes(bits)) throw new AlkiError('BAD_OPTION', `--bits ${bits} is not supported`, 'use 4 or 8 (2 for experiments)');
  const blockSize = o.blockSize ?? 32;
  if (!BLOCK_SIZES.includes(blockSize)) throw new AlkiError('BAD_OPTION', `--block-size ${blockSize} is not supported`, `use one of ${BLOCK_SIZES.join(', ')}`);
  const accuracyLevel = o.accuracyLevel ?? 0;
  if (![0, 1, 2, 3, 4].includes(accuracyLevel)) throw new AlkiError('BAD_OPTION', `accuracy level ${accuracyLevel} is not supported`, 'use 0 (exact float activations) or 4 (int8 activations)');
  return { ...o, bits: bits as 2 | 4 | 8, blockSize, symmetric: o.symmetric ?? false, accuracyLevel };
}

/**
 * Quantizes the constant-weight MatMul layers of an ONNX model in place and
 * returns it with a report. `none` returns the model unchanged. RTN writes
 * each layer as a com.microsoft MatMulNBits node.
 *
 * @example
 * const { model, report } = quantize(onnxModel, { method: 'rtn', bits: 4, blockSize: 32, symmetric: false });
 */
export function quantize(model: Model, options: QuantizeOptions): { model: Model; report: QuantizeReport } {
  const o = resolveQuantizeOptions(options);
  const report: QuantizeReport = { method: o.method, bits: o.method === 'none' ? 32 : o.bits, blockSize: o.blockSize, symmetric: o.symmetric, accuracyLevel: o.accuracyLevel, layers: [], excluded: [], floatBytes: 0, quantizedBytes: 0 };
  if (o.method === 'none') return { model, report };
  const isExcluded = (name: string) => (o.exclude ?? []).some((p) => (typeof p === 'string' ? p === name : p.test(name)));
  const sites = findLinears(model);
  const bo: BlockwiseOptions = { bits: o.bits, blockSize: o.blockSize, symmetric: o.symmetric };
  sites.forEach((site, i) => {
    throwIfAborted(o.signal);
    const name = site.weight.name;
    o.onProgress?.({ step: 'quantize', done: i, total: sites.length, detail: name });
    if (isExcluded(name)) {
      report.excluded.push(name);
      return;
    }
    const wf = site.weight.data as Float32Array;
    assertFinite(name, wf);
    const rows = transpose(wf, site.K, site.N); // [N, K]
    const qw = rtn(rows, site.N, site.K, bo);
    const t = matMulNBitsTensors(qw, name);
    const back = dequantizeBlockwise(qw);
    let num = 0;
    let den = 0;
    for (let j = 0; j < rows.length; j++) {
      const d = rows[j] - back[j];
      num += d * d;
      den += rows[j] * rows[j];
    }
    report.layers.push({ name, K: site.K, N: site.N, relativeError: Math.sqrt(num / (den || 1)) });
    report.floatBytes += wf.byteLength;
    report.quantizedBytes += t.B.data.byteLength + t.scales.data.byteLength + (t.zeroPoints?.data.byteLength ?? 0);
    model.graph.initializers.push(t.B, t.scales, ...(t.zeroPoints ? [t.zeroPoints] : []));
    const idx = model.graph.nodes.indexOf(site.node);
    model.graph.nodes[idx] = matMulNBitsNode(site.node.inputs[0], site.node.outputs[0], qw, { B: t.B.name, scales: t.scales.name, zeroPoints: t.zeroPoints?.name }, o.accuracyLevel, `${site.node.name ?? name}_Q${o.bits}`);
  });
  o.onProgress?.({ step: 'quantize', done: sites.length, total: sites.length });
  pruneInitializers(model);
  if (!model.opsetImports.some((x) => x.domain === 'com.microsoft')) model.opsetImports.push({ domain: 'com.microsoft', version: 1 });
  model.metadata['alki.quantization'] = JSON.stringify({ method: o.method, bits: o.bits, blockSize: o.blockSize, symmetric: o.symmetric });
  return { model, report };
}
