import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AlkiError } from '@alki/core';
import { parseDecoderConfig, readConfigJson, type DecoderConfig } from './config.js';
import { SIDE_FILES } from './hf-folder.js';

/** Where an ONNX-only folder keeps its float graph (the transformers.js / Optimum layout). */
export const ONNX_SOURCE_GRAPH = 'onnx/model.onnx';

/**
 * An ONNX-only model folder, as onnx-community repositories and Optimum exports lay it out: config.json and the
 * tokenizer files at the top, the float decoder graph in onnx/model.onnx (its weights inline or in external data
 * beside it), no safetensors. Alki quantizes that graph directly instead of exporting one.
 */
export interface OnnxModelFolder {
  dir: string;
  rawConfig: Record<string, unknown>;
  config: DecoderConfig;
  /** Which of {@link SIDE_FILES} exist in the folder. */
  sideFiles: string[];
  /** Absolute path of onnx/model.onnx. */
  graphPath: string;
}

/** True for a folder with config.json and onnx/model.onnx but no safetensors weights. */
export function isOnnxModelFolder(dir: string): boolean {
  const abs = resolve(dir);
  return (
    existsSync(join(abs, 'config.json')) &&
    existsSync(join(abs, ONNX_SOURCE_GRAPH)) &&
    !existsSync(join(abs, 'model.safetensors')) &&
    !existsSync(join(abs, 'model.safetensors.index.json'))
  );
}

/** Opens an ONNX-only model folder: config.json (validated: the bundle records the model's shape), tokenizer, graph. */
export function openOnnxModelFolder(dir: string): OnnxModelFolder {
  const abs = resolve(dir);
  const graphPath = join(abs, ONNX_SOURCE_GRAPH);
  if (!existsSync(graphPath) || !statSync(graphPath).isFile())
    throw new AlkiError(
      'NOT_A_MODEL',
      `${dir} has no ${ONNX_SOURCE_GRAPH}`,
      'an ONNX-only model folder keeps its float graph in onnx/model.onnx (the transformers.js layout)',
    );
  const rawConfig = readConfigJson(abs);
  const config = parseDecoderConfig(rawConfig);
  if (!existsSync(join(abs, 'tokenizer.json'))) {
    throw new AlkiError('NOT_A_MODEL', `${dir} has no tokenizer.json`, 'Alki bundles ship the fast tokenizer: download it with the model');
  }
  return { dir: abs, rawConfig, config, sideFiles: SIDE_FILES.filter((f) => existsSync(join(abs, f))), graphPath };
}
