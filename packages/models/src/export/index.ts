import { AlkiError } from '@alki/core';
import type { HfModel } from '../hf-folder.js';
import type { WeightStore } from '../weights.js';
import { exportDecoder, type ExportOptions, type ExportResult } from './decoder.js';

/** Exports an opened HF model to an ONNX decoder graph (every supported architecture goes through one builder). */
export function exportModel(model: HfModel, options: ExportOptions = {}): ExportResult {
  return exportDecoder(model.config, finiteWeights(model.weights), options);
}

/**
 * The same weights, each checked for NaN and ±Inf as it is read: a damaged checkpoint (or one saved after a
 * diverged step) must stop the build with the tensor's name, not become a bundle that prints one token forever.
 */
function finiteWeights(weights: WeightStore): WeightStore {
  const checked = Object.create(weights) as WeightStore;
  checked.get = (name, expectShape) => {
    const w = weights.get(name, expectShape);
    const d = w.data;
    for (let i = 0; i < d.length; i++) {
      const v = d[i];
      if (v - v !== 0) {
        throw new AlkiError(
          'NUMERIC',
          `weight "${name}" contains ${Number.isNaN(v) ? 'NaN' : v > 0 ? '+Inf' : '-Inf'} (element ${i} of ${d.length})`,
          'the checkpoint is damaged or was saved after a diverged training step: download it again, or use another checkpoint',
        );
      }
    }
    return w;
  };
  return checked;
}
