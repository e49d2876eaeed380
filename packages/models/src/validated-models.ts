/**
 * The seed models Alki promises, with the architecture fields of their
 * published config.json (written from the files on the HuggingFace Hub; the
 * fields Alki reads, verbatim). docs/models.md's "validated models" table and
 * the pipeline test that builds a small model with each one's feature
 * switches both come from here.
 */
export interface ValidatedModel {
  /** Hub id. */
  id: string;
  config: Record<string, unknown>;
}

export const VALIDATED_MODELS: ValidatedModel[] = [
  {
    id: 'TinyLlama/TinyLlama-1.1B-Chat-v1.0',
    config: {
      model_type: 'llama', architectures: ['LlamaForCausalLM'], hidden_size: 2048, intermediate_size: 5632, num_hidden_layers: 22,
      num_attention_heads: 32, num_key_value_heads: 4, vocab_size: 32000, max_position_embeddings: 2048, rms_norm_eps: 1e-5,
      rope_theta: 10000.0, rope_scaling: null, hidden_act: 'silu', attention_bias: false, tie_word_embeddings: false,
      bos_token_id: 1, eos_token_id: 2, torch_dtype: 'bfloat16',
    },
  },
  {
    id: 'microsoft/phi-2',
    config: {
      model_type: 'phi', architectures: ['PhiForCausalLM'], hidden_size: 2560, intermediate_size: 10240, num_hidden_layers: 32,
      num_attention_heads: 32, num_key_value_heads: 32, vocab_size: 51200, max_position_embeddings: 2048, layer_norm_eps: 1e-5,
      partial_rotary_factor: 0.4, rope_theta: 10000.0, rope_scaling: null, hidden_act: 'gelu_new', qk_layernorm: false,
      tie_word_embeddings: false, bos_token_id: 50256, eos_token_id: 50256, torch_dtype: 'float16',
    },
  },
  {
    id: 'google/gemma-2b',
    config: {
      model_type: 'gemma', architectures: ['GemmaForCausalLM'], hidden_size: 2048, intermediate_size: 16384, num_hidden_layers: 18,
      num_attention_heads: 8, num_key_value_heads: 1, head_dim: 256, vocab_size: 256000, max_position_embeddings: 8192,
      rms_norm_eps: 1e-6, rope_theta: 10000.0, rope_scaling: null, hidden_act: 'gelu', attention_bias: false,
      bos_token_id: 2, eos_token_id: 1, pad_token_id: 0, torch_dtype: 'bfloat16',
    },
  },
  {
    id: 'Qwen/Qwen2.5-0.5B',
    config: {
      model_type: 'qwen2', architectures: ['Qwen2ForCausalLM'], hidden_size: 896, intermediate_size: 4864, num_hidden_layers: 24,
      num_attention_heads: 14, num_key_value_heads: 2, vocab_size: 151936, max_position_embeddings: 32768, rms_norm_eps: 1e-6,
      rope_theta: 1000000.0, rope_scaling: null, hidden_act: 'silu', use_sliding_window: false, sliding_window: 32768,
      max_window_layers: 24, tie_word_embeddings: true, bos_token_id: 151643, eos_token_id: 151643, torch_dtype: 'bfloat16',
    },
  },
  {
    id: 'stabilityai/stablelm-2-1_6b',
    config: {
      model_type: 'stablelm', architectures: ['StableLmForCausalLM'], hidden_size: 2048, intermediate_size: 5632, num_hidden_layers: 24,
      num_attention_heads: 32, num_key_value_heads: 32, vocab_size: 100352, max_position_embeddings: 4096, layer_norm_eps: 1e-5,
      partial_rotary_factor: 0.25, rope_theta: 10000, rope_scaling: null, hidden_act: 'silu', use_qkv_bias: true,
      qk_layernorm: false, use_parallel_residual: false, tie_word_embeddings: false, bos_token_id: 100257, eos_token_id: 100257,
      torch_dtype: 'float16',
    },
  },
  {
    id: 'stabilityai/stablelm-3b-4e1t',
    config: {
      model_type: 'stablelm', architectures: ['StableLmForCausalLM'], hidden_size: 2560, intermediate_size: 6912, num_hidden_layers: 32,
      num_attention_heads: 32, num_key_value_heads: 32, vocab_size: 50304, max_position_embeddings: 4096, layer_norm_eps: 1e-5,
      partial_rotary_factor: 0.25, rope_theta: 10000, rope_scaling: null, hidden_act: 'silu', use_qkv_bias: false,
      qk_layernorm: false, use_parallel_residual: false, tie_word_embeddings: false, bos_token_id: 0, eos_token_id: 0,
      torch_dtype: 'bfloat16',
    },
  },
  {
    id: 'mistralai/Mistral-7B-v0.1',
    config: {
      model_type: 'mistral', architectures: ['MistralForCausalLM'], hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32,
      num_attention_heads: 32, num_key_value_heads: 8, vocab_size: 32000, max_position_embeddings: 32768, rms_norm_eps: 1e-5,
      rope_theta: 10000.0, sliding_window: 4096, hidden_act: 'silu', tie_word_embeddings: false, bos_token_id: 1, eos_token_id: 2,
      torch_dtype: 'bfloat16',
    },
  },
];
