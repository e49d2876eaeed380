import type { HfModel } from '../hf-folder.js';
import { exportDecoder, type ExportOptions, type ExportResult } from './decoder.js';

/** Exports an opened HF model to an ONNX decoder graph (every supported architecture goes through one builder). */
export function exportModel(model: HfModel, options: ExportOptions = {}): ExportResult {
  return exportDecoder(model.config, model.weights, options);
}
