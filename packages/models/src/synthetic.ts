import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SeededRandom } from '@alki/core';
import { makeDirs } from '@alki/core/node';
import { float32ToBfloat16, float32ToFloat16 } from '@alki/onnx';
import { SafetensorsWriter } from './safetensors.js';
import { tinyTokenizer } from './tokenizer-json.js';
import { architecture, type ModelType } from './architectures.js';
import { parseDecoderConfig } from './config.js';
import { finalNormName, layerNames, perHeadNormWeight } from './export/names.js';

/** Shape and switches of a generated Llama model. */
export interface SyntheticLlamaOptions {
  /** Architecture written to config.json (default llama): its record (architectures.ts) decides the rest. */
  modelType?: ModelType;
  /** phi, stablelm: fraction of each head that gets rotary embeddings. */
  partialRotaryFactor?: number;
  /** phi, stablelm: LayerNorm of q and k per head. */
  qkLayernorm?: boolean;
  /** stablelm: attention and MLP in parallel from one norm (phi always is). */
  parallelResidual?: boolean;
  /** stablelm: biases on q/k/v. */
  qkvBias?: boolean;
  /** mistral: sliding_window. */
  slidingWindow?: number;
  /** config.json rope_scaling, as HF writes it. */
  ropeScaling?: Record<string, unknown>;
  hiddenSize?: number;
  intermediateSize?: number;
  numLayers?: number;
  numHeads?: number;
  numKvHeads?: number;
  /** Overrides hidden/heads (written as config.head_dim). */
  headDim?: number;
  /** Defaults to the generated tokenizer's size; larger pads the vocabulary. */
  vocabSize?: number;
  maxPositions?: number;
  ropeTheta?: number;
  tieWordEmbeddings?: boolean;
  attentionBias?: boolean;
  mlpBias?: boolean;
  dtype?: 'F32' | 'F16' | 'BF16';
  seed?: number;
  /** Write shards of at most this many tensors plus model.safetensors.index.json. */
  shardTensors?: number;
  /**
   * 'normal' (default) or 'uniform' with the same variance: 10× faster to draw, for models generated only to be
   * measured (sizes, times), such as docs/models.md's real-build size table.
   */
  distribution?: 'normal' | 'uniform';
}

/** config.json's keys in one order whatever the architecture, so that a generated folder stays byte-identical. */
const KEY_ORDER = [
  'architectures',
  'model_type',
  'hidden_size',
  'intermediate_size',
  'num_hidden_layers',
  'num_attention_heads',
  'num_key_value_heads',
  'head_dim',
  'vocab_size',
  'max_position_embeddings',
  'layer_norm_eps',
  'rms_norm_eps',
  'partial_rotary_factor',
  'qk_layernorm',
  'use_qkv_bias',
  'use_parallel_residual',
  'rope_theta',
  'rope_scaling',
  'sliding_window',
  'use_sliding_window',
  'hidden_act',
  'hidden_activation',
  'tie_word_embeddings',
  'attention_bias',
  'mlp_bias',
  'bos_token_id',
  'eos_token_id',
  'torch_dtype',
];

function inKeyOrder(config: Record<string, unknown>): Record<string, unknown> {
  const rank = (key: string) => (KEY_ORDER.includes(key) ? KEY_ORDER.indexOf(key) : KEY_ORDER.length);
  return Object.fromEntries(Object.entries(config).sort(([a], [b]) => rank(a) - rank(b)));
}

/**
 * Writes a Llama model with seeded random weights in the HF folder layout
 * (config.json, generation_config.json, model.safetensors, tokenizer files).
 * Weights are scaled like a trained network's (unit-variance activations), so
 * logits are not flat and quantization error is visible. Returns the config.
 */
export function writeSyntheticLlama(dir: string, opts: SyntheticLlamaOptions = {}): Record<string, unknown> {
  const tok = tinyTokenizer();
  const H = opts.hiddenSize ?? 64;
  const I = opts.intermediateSize ?? 172;
  const L = opts.numLayers ?? 2;
  const nh = opts.numHeads ?? 4;
  const kvh = opts.numKvHeads ?? 2;
  const hd = opts.headDim ?? H / nh;
  const V = Math.max(opts.vocabSize ?? tok.vocabSize, tok.vocabSize);
  const tie = opts.tieWordEmbeddings ?? false;
  const seeded = new SeededRandom(opts.seed ?? 1);
  // normal() draws N(0, 1); the uniform alternative has the same variance (±√3).
  const rng = opts.distribution === 'uniform' ? { normal: () => (seeded.next() * 2 - 1) * Math.sqrt(3) } : seeded;
  const dtype = opts.dtype ?? 'F32';
  const modelType = opts.modelType ?? 'llama';
  const arch = architecture(modelType);
  // A (1 + w) norm stores its weights as offsets from 1.
  const normInit = () => (arch.norm.plusOne ? 0 : 1) + rng.normal() * 0.1;
  // Declared first, generated while writing (in declaration order, which fixes the random values): a generated
  // 7B checkpoint never sits in memory.
  const tensors: { name: string; shape: number[]; gen: () => number }[] = [];
  const put = (name: string, shape: number[], gen: () => number) => tensors.push({ name, shape, gen });
  const linear = (name: string, out: number, inp: number, bias: boolean) => {
    const std = 1 / Math.sqrt(inp);
    put(`${name}.weight`, [out, inp], () => rng.normal() * std);
    if (bias) put(`${name}.bias`, [out], () => rng.normal() * 0.02);
  };
  // The record's config keys, with the switches this call sets (keys the type does not have are not written).
  const fromOptions: Record<string, unknown> = {
    qk_layernorm: opts.qkLayernorm,
    use_qkv_bias: opts.qkvBias,
    use_parallel_residual: opts.parallelResidual,
    sliding_window: opts.slidingWindow,
    attention_bias: opts.attentionBias,
    mlp_bias: opts.mlpBias,
  };
  const typeConfig = Object.fromEntries(
    Object.entries(arch.syntheticConfig).map(([key, value]) => [key, typeof value === 'boolean' ? !!(fromOptions[key] ?? value) : (fromOptions[key] ?? value)]),
  );
  const config: Record<string, unknown> = inKeyOrder({
    architectures: [arch.hfClass],
    model_type: modelType,
    hidden_size: H,
    intermediate_size: I,
    num_hidden_layers: L,
    num_attention_heads: nh,
    num_key_value_heads: kvh,
    ...(opts.headDim ? { head_dim: opts.headDim } : {}),
    vocab_size: V,
    max_position_embeddings: opts.maxPositions ?? 256,
    [arch.norm.eps.config]: 1e-5,
    ...(arch.partialRotary ? { partial_rotary_factor: opts.partialRotaryFactor ?? arch.partialRotary.default } : {}),
    ...typeConfig,
    rope_theta: opts.ropeTheta ?? 10000,
    rope_scaling: opts.ropeScaling ?? null,
    tie_word_embeddings: tie,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: dtype === 'F32' ? 'float32' : dtype === 'F16' ? 'float16' : 'bfloat16',
  });
  // Which tensors exist and their names follow from the config, as the exporter reads them.
  const c = parseDecoderConfig(config);
  // Embeddings scaled by √H in the forward pass are drawn 1/√H smaller, so that the layers see unit variance.
  put(`${arch.names.embedding}.weight`, [V, H], () => (arch.scaleEmbeddings ? rng.normal() / Math.sqrt(H) : rng.normal()));
  const norm = (name: string, n: number) => {
    put(`${name}.weight`, [n], normInit);
    if (c.norm === 'layer') put(`${name}.bias`, [n], () => rng.normal() * 0.05);
  };
  for (let i = 0; i < L; i++) {
    const n = layerNames(c, i);
    norm(n.inputNorm, H);
    linear(n.q, nh * hd, H, c.qkvBias);
    linear(n.k, kvh * hd, H, c.qkvBias);
    linear(n.v, kvh * hd, H, c.qkvBias);
    linear(n.o, H, nh * hd, c.oBias);
    if (c.qkNorm === 'shared') {
      norm(n.qNorm!, hd);
      norm(n.kNorm!, hd);
    }
    if (c.qkNorm === 'per_head') {
      for (let h = 0; h < nh; h++) put(perHeadNormWeight(n.qNorm!, h), [hd], normInit);
      for (let h = 0; h < kvh; h++) put(perHeadNormWeight(n.kNorm!, h), [hd], normInit);
    }
    if (n.postNorm) norm(n.postNorm, H);
    if (c.mlp === 'fc') {
      linear(n.fc1!, I, H, c.mlpBias);
      linear(n.fc2!, H, I, c.mlpBias);
    } else {
      linear(n.gate!, I, H, c.mlpBias);
      linear(n.up!, I, H, c.mlpBias);
      linear(n.down!, H, I, c.mlpBias);
    }
  }
  norm(finalNormName(c), H);
  if (!c.tieWordEmbeddings) linear(arch.names.head, V, H, c.headBias);

  makeDirs(dir);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ bos_token_id: 1, eos_token_id: 2 }, null, 2));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tok.tokenizerJson));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(tok.tokenizerConfig, null, 2));
  writeFileSync(join(dir, 'special_tokens_map.json'), JSON.stringify(tok.specialTokensMap, null, 2));
  const files = new Map<string, string>(); // tensor → file
  if (opts.shardTensors) {
    const names = tensors.map((t) => t.name).sort();
    const shards = Math.ceil(names.length / opts.shardTensors);
    for (let s = 0; s < shards; s++) {
      const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
      for (const n of names.slice(s * opts.shardTensors, (s + 1) * opts.shardTensors)) files.set(n, file);
    }
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: Object.fromEntries(files) }, null, 2));
  } else for (const t of tensors) files.set(t.name, 'model.safetensors');
  const writers = new Map<string, SafetensorsWriter>();
  for (const file of new Set(files.values())) {
    writers.set(
      file,
      new SafetensorsWriter(
        join(dir, file),
        tensors.filter((t) => files.get(t.name) === file).map((t) => ({ name: t.name, dtype, shape: t.shape })),
      ),
    );
  }
  try {
    for (const t of tensors) {
      const data = new Float32Array(t.shape.reduce((a, b) => a * b, 1));
      for (let i = 0; i < data.length; i++) data[i] = t.gen();
      writers.get(files.get(t.name)!)!.write(t.name, dtype === 'F32' ? data : dtype === 'F16' ? float32ToFloat16(data) : float32ToBfloat16(data));
    }
  } finally {
    for (const w of writers.values()) w.close();
  }
  return config;
}
