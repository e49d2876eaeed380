import { AlkiError } from '@alki/core';
import { transpose, type Model } from '@alki/onnx';
import { type BlockwiseQuantized } from './blockwise.js';
import { calibratedQuantize, type CalibrationData } from './calibrated.js';
import { emptyReport, finishQuantizedModel, quantize, resolveQuantizeOptions, selectLinears, writeMatMulNBits, type QuantizeMethod, type QuantizeOptions, type QuantizeReport } from './quantize.js';
import { rtn } from './rtn.js';

/** What a quantizer may need besides the model. */
export interface QuantizeContext {
  /** Required by methods whose {@link Quantizer.needsCalibration} is true. */
  calibration?: CalibrationData;
}

/** A configured quantization method. */
export interface Quantizer {
  readonly method: QuantizeMethod;
  readonly options: QuantizeOptions;
  readonly needsCalibration: boolean;
  quantize(model: Model, context?: QuantizeContext): Promise<{ model: Model; report: QuantizeReport }>;
}

/**
 * The one entry point for every method: validates the options up front (bad
 * flags fail before any work) and returns a quantizer.
 *
 * @example
 * const q = createQuantizer('gptq', { bits: 4, blockSize: 32 });
 * const { model, report } = await q.quantize(onnxModel, { calibration });
 */
export function createQuantizer(method: QuantizeMethod, options: Omit<QuantizeOptions, 'method'> = {}): Quantizer {
  const o = resolveQuantizeOptions({ ...options, method });
  const needsCalibration = method === 'awq' || method === 'gptq';
  return {
    method,
    options: o,
    needsCalibration,
    async quantize(model, context = {}) {
      if (!needsCalibration) return quantize(model, o);
      if (!context.calibration) throw new AlkiError('BAD_INPUT', `${method} needs calibration data`, 'pass { calibration } (see calibrationFromText / calibrationFromModel)');
      const t0 = performance.now();
      const report = emptyReport(o);
      const cal = context.calibration;
      report.calibration = { source: cal.source, samples: cal.samples.length, sequenceLength: cal.samples[0]?.length ?? 0, sha256: cal.sha256 };
      const sites = selectLinears(model, o, report);
      // The reference for the error report is the weight as the checkpoint had it.
      const original = new Map(sites.map((s) => [s.weight.name, transpose(s.weight.data as Float32Array, s.K, s.N)]));
      const codes = await calibratedQuantize(model, cal, { method: method as 'awq' | 'gptq', bits: o.bits, blockSize: o.blockSize, symmetric: o.symmetric, actOrder: o.actOrder, percDamp: o.percDamp, onProgress: o.onProgress, signal: o.signal });
      for (const site of sites) {
        let qw: BlockwiseQuantized | undefined = codes.get(site.weight.name);
        // AWQ leaves scaled, clipped float weights: the final rounding is plain RTN.
        if (!qw) qw = rtn(transpose(site.weight.data as Float32Array, site.K, site.N), site.N, site.K, o);
        writeMatMulNBits(model, site, qw, original.get(site.weight.name)!, o.accuracyLevel, report);
      }
      finishQuantizedModel(model, report);
      report.seconds = (performance.now() - t0) / 1000;
      return { model, report };
    },
  };
}
