import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AlkiError } from '@alki/core';
import { parseDecoderConfig, readConfigJson, type DecoderConfig } from './config.js';
import { WeightStore } from './weights.js';

/** Files besides weights that travel with a model into its bundle. */
export const SIDE_FILES = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'] as const;

/** A HuggingFace model folder, opened and validated. */
export interface HfModel {
  dir: string;
  /** config.json as written by the model's authors. */
  rawConfig: Record<string, unknown>;
  config: DecoderConfig;
  weights: WeightStore;
  /** Which of {@link SIDE_FILES} exist in the folder. */
  sideFiles: string[];
}

/**
 * Opens a local HF model folder: config.json (validated), the safetensors
 * checkpoint (headers validated) and the tokenizer files.
 */
export function openHfModel(dir: string): HfModel {
  const abs = resolve(dir);
  if (!existsSync(abs))
    throw new AlkiError(
      'NOT_FOUND',
      `model folder not found: ${dir}`,
      'check the path, or give a HuggingFace hub id such as TinyLlama/TinyLlama-1.1B-Chat-v1.0',
    );
  if (!statSync(abs).isDirectory())
    throw new AlkiError('NOT_A_MODEL', `${dir} is a file, not a model folder`, 'give the folder that holds config.json and model.safetensors');
  const rawConfig = readConfigJson(abs);
  const config = parseDecoderConfig(rawConfig);
  if (!existsSync(join(abs, 'tokenizer.json'))) {
    throw new AlkiError(
      'NOT_A_MODEL',
      `${dir} has no tokenizer.json`,
      'Alki bundles ship the fast tokenizer: save it with tokenizer.save_pretrained() or download it with the model',
    );
  }
  const weights = WeightStore.open(abs);
  checkLayerCount(weights.names(), config.numLayers, dir);
  const sideFiles = SIDE_FILES.filter((f) => existsSync(join(abs, f)));
  return { dir: abs, rawConfig, config, weights, sideFiles };
}

/**
 * The checkpoint's decoder layers (`model.layers.<i>.`) must be exactly 0 … num_hidden_layers − 1: a config
 * that says fewer would silently drop layers, one that says more would fail halfway through the export.
 */
function checkLayerCount(names: string[], numLayers: number, dir: string): void {
  const found = new Set<number>();
  for (const n of names) {
    const m = /^model\.layers\.(\d+)\./.exec(n);
    if (m) found.add(Number(m[1]));
  }
  if (found.size === 0) return; // other naming schemes are checked tensor by tensor during the export
  const count = Math.max(...found) + 1;
  if (count !== numLayers || found.size !== count) {
    throw new AlkiError(
      'BAD_CONFIG',
      `the checkpoint in ${dir} has ${found.size === count ? `${count} decoder layers` : `decoder layers numbered up to ${count - 1} with ${count - found.size} missing`} but config.json says num_hidden_layers ${numLayers}`,
      'the config.json does not belong to these weights: download the model again, or fix num_hidden_layers',
    );
  }
}
