import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { AlkiError } from '@alki/core';
import { readRegularFile } from '@alki/core/node';
import { SUPPORTED_MODEL_TYPES, architecture, type ModelType, type Switch } from './architectures.js';

export { SUPPORTED_MODEL_TYPES, type ModelType };

/**
 * The decoder hyper-parameters Alki needs, normalised from a HF config.json: the model_type's record
 * (architectures.ts) resolved against the switches and sizes of one checkpoint.
 */
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
  /** RMSNorm (Llama family) or LayerNorm with bias (phi, stablelm). */
  norm: 'rms' | 'layer';
  /** The norms' epsilon (rms_norm_eps or layer_norm_eps). */
  normEps: number;
  ropeTheta: number;
  tieWordEmbeddings: boolean;
  /** Biases on q/k/v (llama attention_bias, always in qwen2). */
  qkvBias: boolean;
  /** Bias on o_proj (llama attention_bias). */
  oBias: boolean;
  mlpBias: boolean;
  /** Bias on the vocabulary head (phi). */
  headBias: boolean;
  /** Gated MLP (gate/up/down) or plain two-layer MLP (phi's fc1 → GELU → fc2). */
  mlp: 'gated' | 'fc';
  /** Rotary embedding covers the first `rotaryDim` dims of each head (partial_rotary_factor; headDim when full). */
  rotaryDim: number;
  /** h + attn(norm(h)) + mlp(norm(h)) from one norm (phi, stablelm use_parallel_residual). */
  parallelResidual: boolean;
  /** LayerNorm of q and k per head before rotary: one shared over head_dim with bias (phi), or one per head without bias (stablelm). */
  qkNorm?: 'shared' | 'per_head';
  /** Activation of the MLP (of the gate when gated): SiLU (SwiGLU) or tanh-approximate GELU (GeGLU, gemma; phi's gelu_new). */
  activation: 'silu' | 'gelu_tanh';
  /** RMSNorm computes x̂·(1 + w): the checkpoint stores each norm weight as an offset from 1 (gemma). */
  normPlusOne: boolean;
  /** Embeddings are multiplied by √hidden before the first layer (gemma). */
  scaleEmbeddings: boolean;
  /** Keys further back than this from the query are masked (mistral sliding_window). */
  slidingWindow?: number;
  ropeScaling?: RopeScaling;
  bosTokenId?: number;
  eosTokenIds: number[];
}

/** rope_scaling variants Alki exports exactly. */
export type RopeScaling =
  | { type: 'linear'; factor: number }
  | { type: 'dynamic'; factor: number }
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number };

export const SUPPORTED_ROPE_SCALING = ['linear', 'dynamic', 'llama3'] as const;

function parseRopeScaling(raw: unknown): RopeScaling | undefined {
  if (raw == null) return undefined;
  const r = raw as Record<string, unknown>;
  const type = (r.rope_type ?? r.type) as string | undefined;
  const num = (k: string) => {
    const v = r[k];
    if (typeof v !== 'number' || !(v > 0)) throw new AlkiError('BAD_CONFIG', `rope_scaling.${k} must be a positive number, got ${JSON.stringify(v)}`);
    return v;
  };
  if (type === 'default') return undefined;
  if (type === 'linear' || type === 'dynamic') return { type, factor: num('factor') };
  if (type === 'llama3')
    return {
      type,
      factor: num('factor'),
      lowFreqFactor: num('low_freq_factor'),
      highFreqFactor: num('high_freq_factor'),
      originalMaxPositions: num('original_max_position_embeddings'),
    };
  throw new AlkiError(
    'UNSUPPORTED_CONFIG',
    `rope_scaling type "${String(type)}" is not supported`,
    `supported: ${SUPPORTED_ROPE_SCALING.join(', ')} (or none); exporting anyway would give wrong results at long context`,
  );
}

/** Reads config.json from a model folder. */
export function readConfigJson(dir: string): Record<string, unknown> {
  const path = join(dir, 'config.json');
  if (!existsSync(path)) {
    throw new AlkiError(
      'NOT_A_MODEL',
      `${dir} has no config.json, so it is not a HuggingFace model folder`,
      "point to a folder with config.json, model.safetensors and tokenizer.json (as saved by transformers' save_pretrained), or to a hub id such as TinyLlama/TinyLlama-1.1B-Chat-v1.0",
    );
  }
  const bytes = readRegularFile(path, 8 * 1024 * 1024, 'config.json');
  try {
    const json = JSON.parse(bytes.toString('utf8'));
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('not an object');
    return json;
  } catch (e) {
    throw new AlkiError('BAD_CONFIG', `${path} is not valid JSON (${(e as Error).message})`, 'download or copy config.json again');
  }
}

/** Upper bounds of the integer hyper-parameters (a damaged or hostile config.json must not size allocations). */
const LIMITS: Record<string, number> = {
  hidden_size: 65_536,
  intermediate_size: 262_144,
  num_hidden_layers: 1_024,
  num_attention_heads: 1_024,
  num_key_value_heads: 1_024,
  head_dim: 1_024,
  vocab_size: 4_194_304,
  max_position_embeddings: 1_048_576,
  sliding_window: 1_048_576,
};

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
      throw new AlkiError(
        'BAD_CONFIG',
        `config.json: "${key}" must be a positive integer, got ${JSON.stringify(raw[key])}`,
        'fix config.json or download it again',
      );
    }
    // Beyond these no real decoder goes, and tables sized by them (rotary caches, masks) would not fit in memory.
    const limit = LIMITS[key];
    if (limit !== undefined && v > limit) {
      throw new AlkiError(
        'BAD_CONFIG',
        `config.json: "${key}" is ${v}, more than the ${limit.toLocaleString('en-US')} Alki supports`,
        'check config.json: the value looks damaged',
      );
    }
    return v;
  };
  const hiddenSize = int('hidden_size');
  const numHeads = int('num_attention_heads');
  const numKvHeads = int('num_key_value_heads', numHeads);
  const headDim = raw.head_dim == null ? hiddenSize / numHeads : int('head_dim');
  if (!Number.isInteger(headDim))
    throw new AlkiError('BAD_CONFIG', `hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads}`, 'set head_dim in config.json');
  if (headDim % 2 !== 0)
    throw new AlkiError('BAD_CONFIG', `head_dim ${headDim} is odd; rotary embeddings need an even head_dim`, 'fix config.json or download it again');
  if (numHeads % numKvHeads !== 0)
    throw new AlkiError(
      'BAD_CONFIG',
      `num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`,
      'fix config.json or download it again',
    );
  const arch = architecture(modelType as ModelType);
  const act = arch.activation.config.map((key) => raw[key]).find((v) => v != null) ?? arch.activation.default;
  const activation =
    act === 'silu'
      ? 'silu'
      : ['gelu_pytorch_tanh', 'gelu_new', 'gelu_fast'].includes(String(act)) || (arch.activation.geluIsTanh && act === 'gelu')
        ? 'gelu_tanh'
        : undefined;
  if (!activation)
    throw new AlkiError(
      'UNSUPPORTED_CONFIG',
      `hidden_act "${String(act)}" is not supported for ${modelType}`,
      'supported: silu, gelu_pytorch_tanh, gelu_new, gelu_fast',
    );
  const ropeScaling = parseRopeScaling(raw.rope_scaling);
  const positive = (key: string, fallback: number): number => {
    const v = raw[key] ?? fallback;
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v))
      throw new AlkiError(
        'BAD_CONFIG',
        `config.json: "${key}" must be a positive number, got ${JSON.stringify(raw[key])}`,
        'fix config.json or download it again',
      );
    return v;
  };
  // A norm's epsilon keeps 1/sqrt(var + eps) finite: positive and small (real models use 1e-12 … 1e-5).
  const epsilon = (key: string, fallback: number): number => {
    const v = positive(key, fallback);
    if (v >= 1)
      throw new AlkiError(
        'BAD_CONFIG',
        `config.json: "${key}" is ${v}; a normalization epsilon is a small positive number such as 1e-5`,
        'fix config.json or download it again',
      );
    return v;
  };
  // HF: rotary_ndims = int(partial_rotary_factor · head_dim).
  const partial = arch.partialRotary ? positive('partial_rotary_factor', arch.partialRotary.default) : 1;
  if (partial > 1) throw new AlkiError('BAD_CONFIG', `partial_rotary_factor ${partial} is larger than 1`, 'fix config.json or download it again');
  const rotaryDim = Math.floor(partial * headDim);
  if (rotaryDim < 2 || rotaryDim % 2 !== 0)
    throw new AlkiError(
      'UNSUPPORTED_CONFIG',
      `partial_rotary_factor ${partial} × head_dim ${headDim} gives ${rotaryDim} rotary dims; an even number ≥ 2 is needed`,
    );
  const on = (s: Switch): boolean => (typeof s === 'boolean' ? s : raw[s.config] === true);
  let slidingWindow: number | undefined;
  if (arch.slidingWindow && raw.sliding_window != null) slidingWindow = int('sliding_window');
  for (const u of arch.unsupported ?? []) {
    if (raw[u.config] === u.value)
      throw new AlkiError('UNSUPPORTED_CONFIG', `${modelType} with ${u.config} ${JSON.stringify(u.value)} (${u.why}) is not supported`, u.hint);
  }
  const vocabSize = int('vocab_size');
  // Token ids decide where generation stops: an id outside the vocabulary could never be produced (or fed back).
  const tokenId = (key: string, v: unknown): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= vocabSize) {
      throw new AlkiError(
        'BAD_CONFIG',
        `config.json: "${key}" ${JSON.stringify(v)} is not a token id of the ${vocabSize}-token vocabulary`,
        'fix config.json or download it again',
      );
    }
    return v;
  };
  const eos = raw.eos_token_id;
  const eosTokenIds = eos == null ? [] : (Array.isArray(eos) ? eos : [eos]).map((v) => tokenId('eos_token_id', v));
  const bosTokenId = raw.bos_token_id == null ? undefined : tokenId('bos_token_id', raw.bos_token_id);
  return {
    modelType: modelType as ModelType,
    hiddenSize,
    intermediateSize: int('intermediate_size'),
    numLayers: int('num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize,
    maxPositions: int('max_position_embeddings', 2048),
    norm: arch.norm.kind,
    normEps: epsilon(arch.norm.eps.config, arch.norm.eps.default),
    ropeTheta: positive('rope_theta', 10000),
    tieWordEmbeddings: typeof raw.tie_word_embeddings === 'boolean' ? raw.tie_word_embeddings : arch.tieByDefault,
    qkvBias: on(arch.bias.qkv),
    oBias: on(arch.bias.o),
    mlpBias: on(arch.bias.mlp),
    headBias: arch.bias.head,
    mlp: arch.mlp,
    rotaryDim,
    parallelResidual: on(arch.parallelResidual),
    qkNorm: raw.qk_layernorm === true ? arch.qkNorm : undefined,
    activation,
    normPlusOne: arch.norm.plusOne,
    scaleEmbeddings: arch.scaleEmbeddings,
    slidingWindow,
    ropeScaling,
    bosTokenId,
    eosTokenIds,
  };
}

/** Number of parameters implied by a config (embeddings counted once when tied). */
export function countParameters(c: DecoderConfig): number {
  const H = c.hiddenSize;
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const attn = H * q * 2 + H * kv * 2 + (c.qkvBias ? q + 2 * kv : 0) + (c.oBias ? H : 0);
  const qkNorm = c.qkNorm === 'shared' ? 4 * c.headDim : c.qkNorm === 'per_head' ? (c.numHeads + c.numKvHeads) * c.headDim : 0;
  const I = c.intermediateSize;
  const mlp = (c.mlp === 'gated' ? 3 : 2) * H * I + (c.mlpBias ? (c.mlp === 'gated' ? 2 : 1) * I + H : 0);
  const norm = c.norm === 'layer' ? 2 * H : H;
  const layer = attn + qkNorm + mlp + norm * (c.parallelResidual ? 1 : 2);
  const emb = c.vocabSize * H;
  return c.numLayers * layer + emb * (c.tieWordEmbeddings ? 1 : 2) + (c.headBias ? c.vocabSize : 0) + norm;
}
