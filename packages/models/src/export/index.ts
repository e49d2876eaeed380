import type { HfModel } from '../hf-folder.js';
import { exportLlama, type ExportOptions, type ExportResult } from './decoder.js';

/** Exports an opened HF model to an ONNX decoder graph, picking the builder by architecture. */
export function exportModel(model: HfModel, options: ExportOptions = {}): ExportResult {
  switch (model.config.modelType) {
    case 'llama':
    case 'mistral':
    case 'qwen2':
    case 'gemma':
      return exportLlama(model.config, model.weights, options);
  }
}
