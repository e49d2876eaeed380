import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AlkiError } from '@alki/core';

/** Architectures (config.json `model_type`) that Alki exports today. */
export const SUPPORTED_MODEL_TYPES = ['llama'] as const;
export type ModelType = (typeof SUPPORTED_MODEL_TYPES)[number];

/** The decoder hyper-parameters Alki needs, normalised from a HF config.json. */
export interface DecoderConfig {
  modelType: ModelType;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  maxPositions: number;
  rmsNormEps: number;
  ropeTheta: number;
  tieWordEmbeddings: boolean;
  attentionBias: boolean;
  mlpBias: boolean;
  bosTokenId?: number;
  eosTokenIds: number[];
}

/** Reads config.json from a model folder. */
export function readConfigJson(dir: string): Record<string, unknown> {
  const path = join(dir, 'config.json');
  if (!existsSync(path)) {
    throw new AlkiError('NOT_A_MODEL', `${dir} has no config.json, so it is not a HuggingFace model folder`, 'point to a folder with config.json, model.safetensors and tokenizer.json (as saved by transformers\' save_pretrained), or to a hub id such as TinyLlama/TinyLlama-1.1B-Chat-v1.0');
  }
  try {
    const json = JSON.parse(readFileSync(path, 'utf8'));
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('not an object');
    return json;
  } catch (e) {
    throw new AlkiError('BAD_CONFIG', `${path} is not valid JSON (${(e as Error).message})`, 'download or copy config.json again');
  }
}

/** Validates a config.json and returns the normalised decoder configuration. */
export function parseDecoderConfig(raw: Record<string, unknown>): DecoderConfig {
  const modelType = raw.model_type;
  if (typeof modelType !== 'string') {
    throw new AlkiError('BAD_CONFIG', 'config.json has no "model_type"', `supported model types: ${SUPPORTED_MODEL_TYPES.join(', ')}`);
  }
  if (!(SUPPORTED_MODEL_TYPES as readonly string[]).includes(modelType)) {
    throw new AlkiError('UNSUPPORTED_ARCH', `model_type "${modelType}" is not supported`, `supported model types: ${SUPPORTED_MODEL_TYPES.join(', ')}`);
  }
  const int = (key: string, fallback?: number): number => {
    const v = raw[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
      throw new AlkiError('BAD_CONFIG', `config.json: "${key}" must be a positive integer, got ${JSON.stringify(raw[key])}`, 'fix config.json or download it again');
    }
    return v;
  };
  const hiddenSize = int('hidden_size');
  const numHeads = int('num_attention_heads');
  const numKvHeads = int('num_key_value_heads', numHeads);
  const headDim = raw.head_dim == null ? hiddenSize / numHeads : int('head_dim');
  if (!Number.isInteger(headDim)) throw new AlkiError('BAD_CONFIG', `hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads}`, 'set head_dim in config.json');
  if (headDim % 2 !== 0) throw new AlkiError('BAD_CONFIG', `head_dim ${headDim} is odd; rotary embeddings need an even head_dim`);
  if (numHeads % numKvHeads !== 0) throw new AlkiError('BAD_CONFIG', `num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  const act = raw.hidden_act ?? 'silu';
  if (act !== 'silu') throw new AlkiError('UNSUPPORTED_CONFIG', `hidden_act "${String(act)}" is not supported for ${modelType}`, 'supported: silu');
  if (raw.rope_scaling != null) {
    throw new AlkiError('UNSUPPORTED_CONFIG', `rope_scaling ${JSON.stringify(raw.rope_scaling)} is not supported yet`, 'supported: rope_scaling null (plain RoPE); exporting anyway would give wrong results at long context');
  }
  const eos = raw.eos_token_id;
  const eosTokenIds = Array.isArray(eos) ? (eos as number[]) : typeof eos === 'number' ? [eos] : [];
  return {
    modelType: modelType as ModelType,
    hiddenSize,
    intermediateSize: int('intermediate_size'),
    numLayers: int('num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: int('vocab_size'),
    maxPositions: int('max_position_embeddings', 2048),
    rmsNormEps: typeof raw.rms_norm_eps === 'number' ? raw.rms_norm_eps : 1e-6,
    ropeTheta: typeof raw.rope_theta === 'number' ? raw.rope_theta : 10000,
    tieWordEmbeddings: raw.tie_word_embeddings === true,
    attentionBias: raw.attention_bias === true,
    mlpBias: raw.mlp_bias === true,
    bosTokenId: typeof raw.bos_token_id === 'number' ? raw.bos_token_id : undefined,
    eosTokenIds,
  };
}

/** Number of parameters implied by a config (embeddings counted once when tied). */
export function countParameters(c: DecoderConfig): number {
  const attn = c.hiddenSize * c.numHeads * c.headDim * 2 + c.hiddenSize * c.numKvHeads * c.headDim * 2;
  const attnBias = c.attentionBias ? c.numHeads * c.headDim + 2 * c.numKvHeads * c.headDim + c.hiddenSize : 0;
  const mlp = 3 * c.hiddenSize * c.intermediateSize + (c.mlpBias ? 2 * c.intermediateSize + c.hiddenSize : 0);
  const layer = attn + attnBias + mlp + 2 * c.hiddenSize;
  const emb = c.vocabSize * c.hiddenSize;
  return c.numLayers * layer + emb * (c.tieWordEmbeddings ? 1 : 2) + c.hiddenSize;
}
