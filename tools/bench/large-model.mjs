// A Llama-shaped model of any size with random bf16 weights, written tensor by tensor (a 7B model never sits in
// memory): the generated config, tokenizer and side files of writeSyntheticLlama, then model.safetensors streamed.
// Values are uniform in ±√(3/fan-in) (unit-variance activations), norms 1: enough for timing and memory, not text.
import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { writeSyntheticLlama } from '@alki/models';

/** Writes the model; `shape` uses writeSyntheticLlama's option names. Returns the config. */
export function writeLargeLlama(dir, shape) {
  const { hiddenSize: H, intermediateSize: I, numLayers: L, numHeads: nh, numKvHeads: kvh, vocabSize: V } = shape;
  // The small model supplies the tokenizer and the config's layout; its weights are replaced.
  const config = writeSyntheticLlama(dir, {
    hiddenSize: 64,
    intermediateSize: 128,
    numLayers: 1,
    numHeads: 4,
    numKvHeads: 2,
    vocabSize: V,
    maxPositions: shape.maxPositions,
    seed: shape.seed ?? 1,
  });
  Object.assign(config, {
    hidden_size: H,
    intermediate_size: I,
    num_hidden_layers: L,
    num_attention_heads: nh,
    num_key_value_heads: kvh,
    head_dim: H / nh,
    torch_dtype: 'bfloat16',
    tie_word_embeddings: false,
  });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  const hd = H / nh;
  const tensors = [['model.embed_tokens.weight', [V, H], H]];
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}`;
    tensors.push(
      [`${p}.input_layernorm.weight`, [H], 0],
      [`${p}.self_attn.q_proj.weight`, [nh * hd, H], H],
      [`${p}.self_attn.k_proj.weight`, [kvh * hd, H], H],
      [`${p}.self_attn.v_proj.weight`, [kvh * hd, H], H],
      [`${p}.self_attn.o_proj.weight`, [H, nh * hd], nh * hd],
      [`${p}.post_attention_layernorm.weight`, [H], 0],
      [`${p}.mlp.gate_proj.weight`, [I, H], H],
      [`${p}.mlp.up_proj.weight`, [I, H], H],
      [`${p}.mlp.down_proj.weight`, [H, I], I],
    );
  }
  tensors.push(['model.norm.weight', [H], 0], ['lm_head.weight', [V, H], H]);
  const header = {};
  let offset = 0;
  for (const [name, dims] of tensors) {
    const bytes = dims.reduce((a, b) => a * b, 1) * 2;
    header[name] = { dtype: 'BF16', shape: dims, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((json.length + 8) % 8)) % 8);
  const fd = openSync(join(dir, 'model.safetensors'), 'w');
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    writeSync(fd, len);
    writeSync(fd, Buffer.from(json));
    const CHUNK = 1 << 23;
    const f = new Float32Array(CHUNK);
    const halves = new Uint16Array(f.buffer);
    const out = new Uint16Array(CHUNK);
    let x = ((shape.seed ?? 1) * 2654435761) >>> 0 || 1;
    for (const [, dims, fanIn] of tensors) {
      let left = dims.reduce((a, b) => a * b, 1);
      const a = fanIn ? (Math.sqrt(3 / fanIn) * 2) / 4294967296 : 0;
      while (left > 0) {
        const n = Math.min(left, CHUNK);
        if (fanIn) {
          for (let i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >>> 17;
            x ^= x << 5;
            f[i] = ((x >>> 0) - 2147483648) * a;
          }
          for (let i = 0; i < n; i++) out[i] = halves[2 * i + 1]; // bf16 = the high half (truncation is fine here)
        } else out.fill(0x3f80, 0, n); // 1.0
        writeSync(fd, new Uint8Array(out.buffer, 0, n * 2));
        left -= n;
      }
    }
  } finally {
    closeSync(fd);
  }
  return config;
}
