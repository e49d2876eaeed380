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
  if (!existsSync(abs)) throw new AlkiError('NOT_FOUND', `model folder not found: ${dir}`, 'check the path, or give a HuggingFace hub id such as TinyLlama/TinyLlama-1.1B-Chat-v1.0');
  if (!statSync(abs).isDirectory()) throw new AlkiError('NOT_A_MODEL', `${dir} is a file, not a model folder`, 'give the folder that holds config.json and model.safetensors');
  const rawConfig = readConfigJson(abs);
  const config = parseDecoderConfig(rawConfig);
  if (!existsSync(join(abs, 'tokenizer.json'))) {
    throw new AlkiError('NOT_A_MODEL', `${dir} has no tokenizer.json`, 'Alki bundles ship the fast tokenizer: save it with tokenizer.save_pretrained() or download it with the model');
  }
  const weights = WeightStore.open(abs);
  const sideFiles = SIDE_FILES.filter((f) => existsSync(join(abs, f)));
  return { dir: abs, rawConfig, config, weights, sideFiles };
}
