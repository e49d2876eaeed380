import type { DecoderConfig } from '../config.js';

/** Checkpoint tensor names (without .weight/.bias) of one decoder layer, by architecture. */
export interface LayerNames {
  inputNorm: string;
  /** Absent with a parallel residual (one norm feeds attention and MLP). */
  postNorm?: string;
  q: string;
  k: string;
  v: string;
  /** The packed q/k/v projection the ort flavour writes (not a checkpoint name). */
  qkv: string;
  o: string;
  /** Gated MLP (gate/up/down) or phi's fc1/fc2. */
  gate?: string;
  up?: string;
  down?: string;
  fc1?: string;
  fc2?: string;
  qNorm?: string;
  kNorm?: string;
}

export function layerNames(c: DecoderConfig, i: number): LayerNames {
  const p = `model.layers.${i}`;
  const phi = c.modelType === 'phi';
  return {
    inputNorm: `${p}.input_layernorm`,
    postNorm: c.parallelResidual ? undefined : `${p}.post_attention_layernorm`,
    q: `${p}.self_attn.q_proj`,
    k: `${p}.self_attn.k_proj`,
    v: `${p}.self_attn.v_proj`,
    qkv: `${p}.self_attn.qkv_proj`,
    o: phi ? `${p}.self_attn.dense` : `${p}.self_attn.o_proj`,
    ...(c.mlp === 'fc' ? { fc1: `${p}.mlp.fc1`, fc2: `${p}.mlp.fc2` } : { gate: `${p}.mlp.gate_proj`, up: `${p}.mlp.up_proj`, down: `${p}.mlp.down_proj` }),
    ...(c.qkNorm ? { qNorm: `${p}.self_attn.q_layernorm`, kNorm: `${p}.self_attn.k_layernorm` } : {}),
  };
}

/** Name of the final norm before the head. */
export function finalNormName(c: DecoderConfig): string {
  return c.modelType === 'phi' ? 'model.final_layernorm' : 'model.norm';
}
