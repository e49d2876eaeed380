import { architecture } from '../architectures.js';
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

/** Alki's own name (not a checkpoint's) of the packed q/k/v projection, relative to a layer. */
const PACKED_QKV = 'self_attn.qkv_proj';

/** The checkpoint tensor names of decoder layer `i`, from the architecture's record. */
export function layerNames(c: DecoderConfig, i: number): LayerNames {
  const t = architecture(c.modelType).names;
  const at = (name: string) => `${t.layers}.${i}.${name}`;
  return {
    inputNorm: at(t.inputNorm),
    postNorm: c.parallelResidual ? undefined : at(t.postNorm),
    q: at(t.q),
    k: at(t.k),
    v: at(t.v),
    qkv: at(PACKED_QKV),
    o: at(t.o),
    ...Object.fromEntries(Object.entries(t.mlp).map(([role, name]) => [role, at(name)])),
    ...(c.qkNorm ? { qNorm: at(t.qNorm), kNorm: at(t.kNorm) } : {}),
  };
}

/** Name of the final norm before the head. */
export function finalNormName(c: DecoderConfig): string {
  return architecture(c.modelType).names.finalNorm;
}

/** Weight of head `h`'s norm among per-head q/k norms (stablelm's `qk_layernorm`) named `norm`. */
export function perHeadNormWeight(norm: string, h: number): string {
  return `${norm}.norms.${h}.weight`;
}
