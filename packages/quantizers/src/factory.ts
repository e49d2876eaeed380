import { AlkiError } from '@alki/core';
import { readDecoderLayout, tensorByteLength, type Model } from '@alki/onnx';
import { relativeErrorOf } from './blockwise.js';
import { calibratedQuantize } from './calibrated.js';
import type { CalibrationData } from './calibration/types.js';
import {
  bitsOf,
  emptyReport,
  finishQuantizedModel,
  quantizeEmbeddings,
  quantizeParallel,
  resolveQuantizeOptions,
  selectLinears,
  writeMatMulNBits,
  writtenBlockSize,
  type QuantizeMethod,
  type QuantizeOptions,
  type QuantizeReport,
} from './quantize.js';
import { rtn } from './rtn.js';
import { findLinears, gemmToMatMul } from './graph/rewrite.js';
import { DEFAULT_W8A8_FORMAT, writeDynamicQuantizeMatMul } from './smoothquant.js';
import type { BlockwiseQuantized } from './blockwise.js';

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
 * The entry point for every method: validates the options up front (bad
 * flags fail before any work) and returns a quantizer. For methods without calibration (RTN, naive W8A8) its
 * `quantize()` is {@link quantizeParallel}: {@link quantize}'s result, rounded on all cores.
 *
 * @example
 * const q = createQuantizer('gptq', { bits: 4, blockSize: 32 });
 * const { model, report } = await q.quantize(onnxModel, { calibration });
 */
export function createQuantizer(method: QuantizeMethod, options: Omit<QuantizeOptions, 'method'> = {}): Quantizer {
  const o = resolveQuantizeOptions({ ...options, method });
  const needsCalibration = method === 'awq' || method === 'gptq' || (method === 'smoothquant' && o.smooth !== false);
  return {
    method,
    options: o,
    needsCalibration,
    async quantize(model, context = {}) {
      if (method !== 'smoothquant' && !needsCalibration) return quantizeParallel(model, o);
      if (needsCalibration && !context.calibration)
        throw new AlkiError('BAD_INPUT', `${method} needs calibration data`, 'pass { calibration } (see calibrationFromText / calibrationFromModel)');
      const t0 = performance.now();
      const report = emptyReport(o);
      gemmToMatMul(model);
      const sites = selectLinears(model, o, report);
      // GPTQ's error is reported against the weight as the checkpoint had it (measured before it is replaced).
      const errors = new Map<string, number>();
      const written = new Set<string>();
      // The scales AWQ folded into each linear: a tied table reads the head's codes through them.
      const appliedScales = new Map<string, Float32Array>();
      const cal = context.calibration;
      if (needsCalibration && cal) {
        // A graph without Alki's layer metadata is calibrated as one span: no float stream to fit. The report says
        // what runs, and the calibration reads it from there.
        if (report.floatTargets && !readDecoderLayout(model)) report.floatTargets = false;
        report.calibration = { source: cal.source, samples: cal.samples.length, sequenceLength: cal.samples[0]?.length ?? 0, sha256: cal.sha256 };
        const excluded = new Set(report.excluded);
        // AWQ's and GPTQ's codes become MatMulNBits as each layer finishes (onCodes), so they never all sit in memory.
        const siteOf = new Map(sites.map((s) => [s.weight.name, s]));
        const onCodes = (name: string, qw: BlockwiseQuantized) => {
          writeMatMulNBits(model, siteOf.get(name)!, qw, errors.get(name)!, o.accuracyLevel, report, o.spill);
          written.add(name);
        };
        await calibratedQuantize(model, cal, {
          method: method as 'awq' | 'gptq' | 'smoothquant',
          bits: o.bits,
          bitsOf: bitsOf(o, report),
          blockSize: o.blockSize,
          symmetric: o.symmetric,
          actOrder: o.actOrder,
          percDamp: o.percDamp,
          mseClip: o.mseClip,
          awqScales: o.awqScales,
          trueSequential: o.trueSequential,
          floatTargets: report.floatTargets,
          alpha: o.alpha,
          excluded,
          onProgress: o.onProgress,
          signal: o.signal,
          errors,
          onCodes,
          spill: o.spill,
          checkpoint: o.checkpoint,
          appliedScales,
        });
      }
      if (method === 'smoothquant') {
        // W8A8: int8 weights per output channel, activations quantized per tensor at run time.
        const selected = new Set(sites.map((s) => s.weight.name));
        for (const site of findLinears(model).filter((s) => selected.has(s.weight.name))) {
          const { bytes, q, scales } = writeDynamicQuantizeMatMul(model, site, o.w8a8Format ?? DEFAULT_W8A8_FORMAT);
          // Error against the smoothed weight, both in the MatMul layout [K, N].
          const w = site.weight.data as Float32Array;
          let num = 0;
          let den = 0;
          for (let i = 0; i < w.length; i++) {
            num += (w[i] - q[i] * scales[i % site.N]) ** 2;
            den += w[i] ** 2;
          }
          report.layers.push({ name: site.weight.name, K: site.K, N: site.N, relativeError: Math.sqrt(num / (den || 1)) });
          report.floatBytes += tensorByteLength(site.weight);
          report.quantizedBytes += bytes;
        }
        finishQuantizedModel(model, report);
        report.seconds = (performance.now() - t0) / 1000;
        return { model, report };
      }
      for (const site of sites) {
        if (written.has(site.weight.name)) continue;
        // A linear in no scale group (a foreign graph's odd one out) was not calibrated: plain RTN.
        const w = site.weight.data as Float32Array;
        const bits = bitsOf(o, report)(site.weight.name);
        const rounded = rtn(w, site.N, site.K, { ...o, bits, blockSize: writtenBlockSize(site.K, o.blockSize, bits, o.symmetric) }, 'KN');
        writeMatMulNBits(model, site, rounded, relativeErrorOf(rounded, w, 'KN'), o.accuracyLevel, report, o.spill);
      }
      quantizeEmbeddings(model, o, report, appliedScales);
      finishQuantizedModel(model, report);
      report.seconds = (performance.now() - t0) / 1000;
      return { model, report };
    },
  };
}
