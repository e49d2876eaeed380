/**
 * GGUF, llama.cpp's model file (ggml's docs/gguf.md), written from a HuggingFace Llama checkpoint: F16, Q8_0 or
 * Q4_0 weights with ggml's reference rounding, so that Alki's bundles can be measured side by side with llama.cpp
 * on the same weights (`pnpm bench:peer`), and Q4_0's quality measured with Alki's own perplexity
 * ({@link fakeQuantizeGgml}).
 */
import { closeSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { floatToHalf, halfToFloat } from '@alki/onnx';
import { AlkiError } from '@alki/core';
import type { HfModel } from './hf-folder.js';
import { loadTokenizerVocab } from './tokenizer-json.js';

/** The ggml tensor types Alki writes, by their GGUF numbers. */
export const GGML_TYPES = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8 } as const;
export type GgmlType = keyof typeof GGML_TYPES;
/** Values per block and bytes per block of each type. */
const BLOCK: Record<GgmlType, { values: number; bytes: number }> = {
  F32: { values: 1, bytes: 4 },
  F16: { values: 1, bytes: 2 },
  Q4_0: { values: 32, bytes: 18 },
  Q8_0: { values: 32, bytes: 34 },
};

/** Bytes of a row of `n` values in `type` (n a multiple of the block size for Q4_0/Q8_0). */
export function ggmlRowBytes(type: GgmlType, n: number): number {
  return (n / BLOCK[type].values) * BLOCK[type].bytes;
}

/**
 * Q4_0 as ggml's quantize_row_q4_0_ref: per block of 32, d = (the value of largest magnitude) / −8 stored as fp16,
 * codes min(15, trunc(x/d + 8.5)) packed low nibble = element j, high nibble = element j + 16.
 */
export function quantizeQ4_0(x: Float32Array, out = new Uint8Array(ggmlRowBytes('Q4_0', x.length))): Uint8Array {
  if (x.length % 32 !== 0) throw new AlkiError('BAD_INPUT', `Q4_0 rows must be a multiple of 32 values, got ${x.length}`);
  for (let b = 0, o = 0; b < x.length; b += 32, o += 18) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      const v = x[b + j];
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = Math.fround(max / -8);
    const id = d ? Math.fround(1 / d) : 0;
    const h = floatToHalf(d);
    out[o] = h & 0xff;
    out[o + 1] = h >> 8;
    for (let j = 0; j < 16; j++) {
      const x0 = Math.fround(x[b + j] * id);
      const x1 = Math.fround(x[b + 16 + j] * id);
      const q0 = Math.min(15, Math.trunc(Math.fround(x0 + 8.5)));
      const q1 = Math.min(15, Math.trunc(Math.fround(x1 + 8.5)));
      out[o + 2 + j] = q0 | (q1 << 4);
    }
  }
  return out;
}

/** Q8_0 as ggml's quantize_row_q8_0_ref: per block of 32, d = amax/127 (fp16), codes round(x/d) as int8. */
export function quantizeQ8_0(x: Float32Array, out = new Uint8Array(ggmlRowBytes('Q8_0', x.length))): Uint8Array {
  if (x.length % 32 !== 0) throw new AlkiError('BAD_INPUT', `Q8_0 rows must be a multiple of 32 values, got ${x.length}`);
  for (let b = 0, o = 0; b < x.length; b += 32, o += 34) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b + j]));
    const d = Math.fround(amax / 127);
    const id = d ? Math.fround(1 / d) : 0;
    const h = floatToHalf(d);
    out[o] = h & 0xff;
    out[o + 1] = h >> 8;
    for (let j = 0; j < 32; j++) {
      const v = Math.fround(x[b + j] * id);
      // roundf: halves away from zero.
      out[o + 2 + j] = (Math.sign(v) * Math.round(Math.abs(v))) & 0xff;
    }
  }
  return out;
}

/** Values of Q4_0 / Q8_0 blocks (as llama.cpp dequantizes them: fp16 d times the centred code). */
export function dequantizeGgml(type: 'Q4_0' | 'Q8_0', bytes: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  const { bytes: bb } = BLOCK[type];
  for (let b = 0, o = 0; b < n; b += 32, o += bb) {
    const d = halfToFloat(bytes[o] | (bytes[o + 1] << 8));
    if (type === 'Q4_0') {
      for (let j = 0; j < 16; j++) {
        out[b + j] = ((bytes[o + 2 + j] & 15) - 8) * d;
        out[b + 16 + j] = ((bytes[o + 2 + j] >> 4) - 8) * d;
      }
    } else {
      for (let j = 0; j < 32; j++) out[b + j] = ((bytes[o + 2 + j] << 24) >> 24) * d;
    }
  }
  return out;
}

/**
 * A weight [N, K] rounded to `type` and back, row by row (what llama.cpp computes with): the quality of a GGUF
 * type measured with Alki's own evaluation. A row whose length is not a multiple of 32 (llama.cpp cannot store
 * it) has its last block rounded as if padded with zeros.
 */
export function fakeQuantizeGgml(w: Float32Array, N: number, K: number, type: 'Q4_0' | 'Q8_0' | 'F16'): Float32Array {
  const out = new Float32Array(w.length);
  if (type === 'F16') {
    for (let i = 0; i < w.length; i++) out[i] = halfToFloat(floatToHalf(w[i]));
    return out;
  }
  const Kp = Math.ceil(K / 32) * 32;
  const row = new Float32Array(Kp);
  for (let n = 0; n < N; n++) {
    row.fill(0);
    row.set(w.subarray(n * K, (n + 1) * K));
    const q = dequantizeGgml(type, type === 'Q4_0' ? quantizeQ4_0(row) : quantizeQ8_0(row), Kp);
    out.set(q.subarray(0, K), n * K);
  }
  return out;
}

/** GGUF metadata value types (gguf.md), by the element type of a {@link Meta} entry. */
const VALUE_TYPE = { u32: 4, i32: 5, f32: 6, str: 8 } as const;
const ARRAY = 9;
type Scalar = keyof typeof VALUE_TYPE;
type Meta = [key: string, type: 'u32' | 'f32' | 'str', value: number | string] | [key: string, type: 'str[]' | 'f32[]' | 'i32[]', value: (string | number)[]];

/** Little-endian GGUF header bytes, appended piece by piece. */
class HeaderWriter {
  private chunks: Buffer[] = [];
  private put(size: number, write: (b: Buffer) => void): void {
    const b = Buffer.alloc(size);
    write(b);
    this.chunks.push(b);
  }
  u32 = (v: number) => this.put(4, (b) => b.writeUInt32LE(v));
  i32 = (v: number) => this.put(4, (b) => b.writeInt32LE(v));
  f32 = (v: number) => this.put(4, (b) => b.writeFloatLE(v));
  u64 = (v: number) => this.put(8, (b) => b.writeBigUInt64LE(BigInt(v)));
  str = (s: string) => {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.chunks.push(b);
  };
  private value(type: Scalar, v: number | string): void {
    if (type === 'str') this.str(v as string);
    else this[type](v as number);
  }
  meta([key, type, value]: Meta): void {
    this.str(key);
    const elem = type.replace('[]', '') as Scalar;
    if (Array.isArray(value)) {
      this.u32(ARRAY);
      this.u32(VALUE_TYPE[elem]);
      this.u64(value.length);
      for (const v of value) this.value(elem, v);
    } else {
      this.u32(VALUE_TYPE[elem]);
      this.value(elem, value);
    }
  }
  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

const ALIGN = 32;
const align = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

export interface WriteGgufOptions {
  /** Type of the decoder layers' and the embedding's weights. */
  type: 'F16' | 'Q8_0' | 'Q4_0';
  /**
   * Type of the output projection (default: F16 for F16, else Q8_0). llama-quantize's default for Q4_0 is Q6_K,
   * which Alki does not write: Q8_0 is slightly larger (and slower to read) than Q6_K, never smaller.
   */
  outputType?: 'F16' | 'Q8_0' | 'Q4_0';
  onProgress?: (done: number, total: number) => void;
}

/** The ftype llama.cpp records for a file of mostly `type`. */
const FILE_TYPE = { F16: 1, Q4_0: 2, Q8_0: 7 } as const;

/**
 * Writes a Llama-architecture checkpoint as GGUF (general.architecture "llama"), streaming tensor by tensor: q/k
 * projections permuted to llama.cpp's rotary layout (as convert_hf_to_gguf.py does), norms in F32, a SentencePiece
 * ("llama") vocabulary from tokenizer.json padded to vocab_size with unused tokens. Returns the file's bytes.
 */
export function writeGguf(hf: HfModel, path: string, o: WriteGgufOptions): number {
  const c = hf.config;
  if (c.modelType !== 'llama' && c.modelType !== 'mistral')
    throw new AlkiError('UNSUPPORTED_ARCH', `GGUF export supports llama and mistral checkpoints, not ${c.modelType}`);
  if (c.qkvBias || c.oBias || c.mlpBias || c.mlp !== 'gated' || c.norm !== 'rms')
    throw new AlkiError('UNSUPPORTED_ARCH', 'GGUF export supports plain Llama layers (no biases, gated MLP, RMSNorm)');
  const outputType = o.outputType ?? (o.type === 'F16' ? 'F16' : 'Q8_0');
  type Entry = { name: string; source: string; dims: number[]; type: GgmlType; permuteHeads?: number };
  const tensors: Entry[] = [{ name: 'token_embd.weight', source: 'model.embed_tokens.weight', dims: [c.hiddenSize, c.vocabSize], type: o.type }];
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}.`;
    const kv = c.numKvHeads * c.headDim;
    tensors.push(
      { name: `blk.${i}.attn_norm.weight`, source: `${p}input_layernorm.weight`, dims: [c.hiddenSize], type: 'F32' },
      {
        name: `blk.${i}.attn_q.weight`,
        source: `${p}self_attn.q_proj.weight`,
        dims: [c.hiddenSize, c.numHeads * c.headDim],
        type: o.type,
        permuteHeads: c.numHeads,
      },
      { name: `blk.${i}.attn_k.weight`, source: `${p}self_attn.k_proj.weight`, dims: [c.hiddenSize, kv], type: o.type, permuteHeads: c.numKvHeads },
      { name: `blk.${i}.attn_v.weight`, source: `${p}self_attn.v_proj.weight`, dims: [c.hiddenSize, kv], type: o.type },
      { name: `blk.${i}.attn_output.weight`, source: `${p}self_attn.o_proj.weight`, dims: [c.numHeads * c.headDim, c.hiddenSize], type: o.type },
      { name: `blk.${i}.ffn_norm.weight`, source: `${p}post_attention_layernorm.weight`, dims: [c.hiddenSize], type: 'F32' },
      { name: `blk.${i}.ffn_gate.weight`, source: `${p}mlp.gate_proj.weight`, dims: [c.hiddenSize, c.intermediateSize], type: o.type },
      { name: `blk.${i}.ffn_up.weight`, source: `${p}mlp.up_proj.weight`, dims: [c.hiddenSize, c.intermediateSize], type: o.type },
      { name: `blk.${i}.ffn_down.weight`, source: `${p}mlp.down_proj.weight`, dims: [c.intermediateSize, c.hiddenSize], type: o.type },
    );
  }
  tensors.push({ name: 'output_norm.weight', source: 'model.norm.weight', dims: [c.hiddenSize], type: 'F32' });
  if (!c.tieWordEmbeddings) tensors.push({ name: 'output.weight', source: 'lm_head.weight', dims: [c.hiddenSize, c.vocabSize], type: outputType });
  for (const t of tensors) {
    if (BLOCK[t.type].values > 1 && t.dims[0] % 32 !== 0)
      throw new AlkiError('BAD_INPUT', `${t.source} has rows of ${t.dims[0]} values: ${t.type} needs a multiple of 32`, 'use --type F16 for this model');
  }

  const vocab = loadTokenizerVocab(hf.dir, c.vocabSize);
  const meta: Meta[] = [
    ['general.architecture', 'str', 'llama'],
    ['general.name', 'str', hf.dir.split('/').pop() ?? 'model'],
    ['general.file_type', 'u32', FILE_TYPE[o.type]],
    ['general.alignment', 'u32', ALIGN],
    ['llama.context_length', 'u32', c.maxPositions],
    ['llama.embedding_length', 'u32', c.hiddenSize],
    ['llama.block_count', 'u32', c.numLayers],
    ['llama.feed_forward_length', 'u32', c.intermediateSize],
    ['llama.rope.dimension_count', 'u32', c.headDim],
    ['llama.attention.head_count', 'u32', c.numHeads],
    ['llama.attention.head_count_kv', 'u32', c.numKvHeads],
    ['llama.attention.layer_norm_rms_epsilon', 'f32', c.normEps],
    ['llama.rope.freq_base', 'f32', c.ropeTheta],
    ['llama.vocab_size', 'u32', c.vocabSize],
    ['tokenizer.ggml.model', 'str', 'llama'],
    ['tokenizer.ggml.tokens', 'str[]', vocab.tokens],
    ['tokenizer.ggml.scores', 'f32[]', vocab.tokens.map((_, i) => -i)],
    ['tokenizer.ggml.token_type', 'i32[]', vocab.types],
    ...(c.bosTokenId !== undefined ? ([['tokenizer.ggml.bos_token_id', 'u32', c.bosTokenId]] as Meta[]) : []),
    ...(c.eosTokenIds.length ? ([['tokenizer.ggml.eos_token_id', 'u32', c.eosTokenIds[0]]] as Meta[]) : []),
  ];
  const h = new HeaderWriter();
  h.u32(0x46554747); // "GGUF"
  h.u32(3);
  h.u64(tensors.length);
  h.u64(meta.length);
  for (const m of meta) h.meta(m);
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    h.str(t.name);
    h.u32(t.dims.length);
    for (const d of t.dims) h.u64(d);
    h.u32(GGML_TYPES[t.type]);
    h.u64(offset);
    offsets.push(offset);
    offset = align(offset + ggmlRowBytes(t.type, t.dims[0]) * (t.dims[1] ?? 1));
  }
  const header = h.bytes();
  const dataStart = align(header.length);
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, header, 0, header.length, 0);
    tensors.forEach((t, i) => {
      const w = hf.weights.get(t.source).data;
      const [K, N] = [t.dims[0], t.dims[1] ?? 1];
      const src = t.permuteHeads ? permuteForRope(w, t.permuteHeads, N / t.permuteHeads, K) : w;
      writeSync(fd, encodeRows(src, N, K, t.type), 0, undefined, dataStart + offsets[i]);
      o.onProgress?.(i + 1, tensors.length);
    });
    // Each tensor's data is padded to the alignment, the last one included (as gguf-py writes files).
    ftruncateSync(fd, dataStart + offset);
  } finally {
    closeSync(fd);
  }
  return dataStart + offset;
}

/** Rows of a [heads·headDim, K] projection reordered from HF's rotate-half layout to llama.cpp's interleaved pairs. */
function permuteForRope(w: Float32Array, heads: number, headDim: number, K: number): Float32Array {
  const out = new Float32Array(w.length);
  const half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) out.set(w.subarray((h * headDim + j * half + i) * K, (h * headDim + j * half + i + 1) * K), (h * headDim + 2 * i + j) * K);
    }
  }
  return out;
}

/** [N, K] float32 values as N rows of `type`. */
function encodeRows(w: Float32Array, N: number, K: number, type: GgmlType): Uint8Array {
  if (type === 'F32') return new Uint8Array(w.buffer, w.byteOffset, w.byteLength);
  const rowBytes = ggmlRowBytes(type, K);
  const out = new Uint8Array(rowBytes * N);
  for (let n = 0; n < N; n++) {
    const row = w.subarray(n * K, (n + 1) * K);
    const dst = out.subarray(n * rowBytes, (n + 1) * rowBytes);
    if (type === 'F16') {
      for (let k = 0; k < K; k++) {
        const v = floatToHalf(row[k]);
        dst[2 * k] = v & 0xff;
        dst[2 * k + 1] = v >> 8;
      }
    } else if (type === 'Q4_0') quantizeQ4_0(row, dst);
    else quantizeQ8_0(row, dst);
  }
  return out;
}
