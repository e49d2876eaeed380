/**
 * One record per supported config.json `model_type`: what the architecture is, in the terms of its paper and of
 * transformers' modeling code. Config parsing (config.ts), checkpoint names (export/names.ts), the synthetic
 * generator (synthetic.ts) and the ONNX export read these records; none of them tests a model_type string.
 * Adding an architecture is adding a record here, plus code only for what is genuinely new (CONTRIBUTING.md).
 */

/**
 * A feature that is always on or off for an architecture, or that a boolean config.json key turns on (when `true`;
 * absent or anything else is off).
 */
export type Switch = boolean | { config: string };

/** Checkpoint tensor names, without `.weight` / `.bias`. */
export interface TensorNames {
  embedding: string;
  /** Prefix of the decoder layers: layer i's tensors are `${layers}.${i}.${name}`. */
  layers: string;
  /** The names below, up to `finalNorm`, are relative to one layer. */
  inputNorm: string;
  /** Unused with a parallel residual (one norm feeds attention and MLP). */
  postNorm: string;
  q: string;
  k: string;
  v: string;
  o: string;
  /** Gated MLP (`mlp: 'gated'`) or two-layer MLP (`mlp: 'fc'`). */
  mlp: { gate: string; up: string; down: string } | { fc1: string; fc2: string };
  /** q/k norms (when config.json has `qk_layernorm: true`); per-head weights are `${qNorm}.norms.${h}.weight`. */
  qNorm: string;
  kNorm: string;
  finalNorm: string;
  /** The vocabulary head (absent from the checkpoint when tied to the embedding, except a bias). */
  head: string;
}

/** What one `model_type` is. */
export interface Architecture {
  /** The transformers class (config.json `architectures`), as the synthetic generator writes it. */
  hfClass: string;
  norm: {
    /** RMSNorm (Llama family) or LayerNorm with a bias. */
    kind: 'rms' | 'layer';
    /** The config.json key of the norms' epsilon, and its value when the key is absent. */
    eps: { config: string; default: number };
    /** x̂·(1 + w): the checkpoint stores each norm weight as an offset from 1 (gemma). */
    plusOne: boolean;
  };
  /** Embeddings are multiplied by √hidden before the first layer (gemma). */
  scaleEmbeddings: boolean;
  /** gate/up/down with act(gate)·up (SwiGLU, GeGLU), or fc1 → act → fc2. */
  mlp: 'gated' | 'fc';
  activation: {
    /** The config.json keys that name the activation, first present wins, and the name when none is. */
    config: string[];
    default: string;
    /** transformers runs the tanh GELU for a plain "gelu" too (gemma's legacy hidden_act). */
    geluIsTanh?: boolean;
  };
  bias: { qkv: Switch; o: Switch; mlp: Switch; head: boolean };
  /**
   * Rotary embedding on the first `partial_rotary_factor · head_dim` dims of each head, with this default factor;
   * absent: on the whole head (and partial_rotary_factor is not read).
   */
  partialRotary?: { default: number };
  /** h + attn(norm(h)) + mlp(norm(h)) from one norm, instead of two residual steps. */
  parallelResidual: Switch;
  /**
   * The q/k norms that config.json `qk_layernorm: true` adds, over head_dim before rotary: one affine LayerNorm
   * shared by the heads, or one bias-free LayerNorm per head.
   */
  qkNorm: 'shared' | 'per_head';
  /** Keys further back than config.json `sliding_window` from the query are masked (null: no window). */
  slidingWindow: boolean;
  /** Config settings refused with UNSUPPORTED_CONFIG: `config` set to `value` needs what the exporter lacks (`why`). */
  unsupported?: { config: string; value: unknown; why: string; hint: string }[];
  /** tie_word_embeddings when config.json does not say (transformers' default for this type). */
  tieByDefault: boolean;
  names: TensorNames;
  /**
   * config.json keys the synthetic generator writes besides shape, epsilon, partial_rotary_factor, rope and
   * tying, with the values released checkpoints use; its options replace the switches among them.
   */
  syntheticConfig: Record<string, unknown>;
}

const LLAMA_NAMES: TensorNames = {
  embedding: 'model.embed_tokens',
  layers: 'model.layers',
  inputNorm: 'input_layernorm',
  postNorm: 'post_attention_layernorm',
  q: 'self_attn.q_proj',
  k: 'self_attn.k_proj',
  v: 'self_attn.v_proj',
  o: 'self_attn.o_proj',
  mlp: { gate: 'mlp.gate_proj', up: 'mlp.up_proj', down: 'mlp.down_proj' },
  qNorm: 'self_attn.q_layernorm',
  kNorm: 'self_attn.k_layernorm',
  finalNorm: 'model.norm',
  head: 'lm_head',
};

/** Llama (and Llama 2/3, TinyLlama): pre-norm RMSNorm, rotary on whole heads, SwiGLU, grouped-query attention. */
const LLAMA: Architecture = {
  hfClass: 'LlamaForCausalLM',
  norm: { kind: 'rms', eps: { config: 'rms_norm_eps', default: 1e-6 }, plusOne: false },
  scaleEmbeddings: false,
  mlp: 'gated',
  activation: { config: ['hidden_act'], default: 'silu' },
  bias: { qkv: { config: 'attention_bias' }, o: { config: 'attention_bias' }, mlp: { config: 'mlp_bias' }, head: false },
  parallelResidual: false,
  // qk_layernorm is no Llama key: a config that sets it anyway gets per-head norms (and fails on their missing
  // tensors) rather than an export that silently leaves them out.
  qkNorm: 'per_head',
  slidingWindow: false,
  tieByDefault: false,
  names: LLAMA_NAMES,
  syntheticConfig: { hidden_act: 'silu', attention_bias: false, mlp_bias: false },
};

/** Mistral: Llama with sliding-window attention. */
const MISTRAL: Architecture = {
  ...LLAMA,
  hfClass: 'MistralForCausalLM',
  slidingWindow: true,
  syntheticConfig: { sliding_window: null, ...LLAMA.syntheticConfig },
};

/** Qwen2 / Qwen2.5: Llama with biases on q, k and v (not o). */
const QWEN2: Architecture = {
  ...LLAMA,
  hfClass: 'Qwen2ForCausalLM',
  bias: { ...LLAMA.bias, qkv: true, o: false },
  // With use_sliding_window, the layers from max_window_layers on attend within a window: a mask per layer, which the
  // export does not build. The released configs leave it off.
  unsupported: [
    {
      config: 'use_sliding_window',
      value: true,
      why: 'per-layer windows',
      hint: 'supported: use_sliding_window false, as in the released Qwen2/Qwen2.5 configs',
    },
  ],
  syntheticConfig: { use_sliding_window: false, hidden_act: 'silu' },
};

/** Gemma: Llama with (1 + w) RMSNorm, embeddings × √hidden, GeGLU (tanh GELU) and a head tied by default. */
const GEMMA: Architecture = {
  ...LLAMA,
  hfClass: 'GemmaForCausalLM',
  norm: { ...LLAMA.norm, plusOne: true },
  scaleEmbeddings: true,
  // Gemma's checkpoints name the activation hidden_activation (hidden_act is the legacy key).
  activation: { config: ['hidden_activation', 'hidden_act'], default: 'gelu_pytorch_tanh', geluIsTanh: true },
  tieByDefault: true,
  syntheticConfig: { hidden_act: 'gelu', hidden_activation: 'gelu_pytorch_tanh', attention_bias: false, mlp_bias: false },
};

/**
 * Phi (phi-1, phi-2): LayerNorm, attention and a two-layer GELU MLP in parallel from one norm, partial rotary,
 * biases on every linear including the head, GPT-style names (dense, fc1/fc2, final_layernorm).
 */
const PHI: Architecture = {
  hfClass: 'PhiForCausalLM',
  norm: { kind: 'layer', eps: { config: 'layer_norm_eps', default: 1e-5 }, plusOne: false },
  scaleEmbeddings: false,
  mlp: 'fc',
  activation: { config: ['hidden_act'], default: 'gelu_new' },
  bias: { qkv: true, o: true, mlp: true, head: true },
  partialRotary: { default: 0.5 },
  parallelResidual: true,
  qkNorm: 'shared',
  slidingWindow: false,
  tieByDefault: false,
  names: { ...LLAMA_NAMES, o: 'self_attn.dense', mlp: { fc1: 'mlp.fc1', fc2: 'mlp.fc2' }, finalNorm: 'model.final_layernorm' },
  syntheticConfig: { qk_layernorm: false, hidden_act: 'gelu_new' },
};

/**
 * StableLM (2, 3B-4E1T): Llama's names and SwiGLU with LayerNorm, partial rotary, and config.json switches for q/k/v
 * biases, a parallel residual and per-head q/k norms.
 */
const STABLELM: Architecture = {
  ...LLAMA,
  hfClass: 'StableLmForCausalLM',
  norm: { kind: 'layer', eps: { config: 'layer_norm_eps', default: 1e-5 }, plusOne: false },
  bias: { ...LLAMA.bias, qkv: { config: 'use_qkv_bias' }, o: false },
  partialRotary: { default: 0.25 },
  parallelResidual: { config: 'use_parallel_residual' },
  qkNorm: 'per_head',
  syntheticConfig: { qk_layernorm: false, use_qkv_bias: false, use_parallel_residual: false, hidden_act: 'silu' },
};

/** The architectures Alki exports, by config.json `model_type`. */
export const ARCHITECTURES = {
  llama: LLAMA,
  mistral: MISTRAL,
  qwen2: QWEN2,
  gemma: GEMMA,
  phi: PHI,
  stablelm: STABLELM,
} satisfies Record<string, Architecture>;

export type ModelType = keyof typeof ARCHITECTURES;

/** Architectures (config.json `model_type`) that Alki exports today. */
export const SUPPORTED_MODEL_TYPES = Object.keys(ARCHITECTURES) as readonly ModelType[];

/** The record of a supported model_type. */
export function architecture(modelType: ModelType): Architecture {
  return ARCHITECTURES[modelType];
}
