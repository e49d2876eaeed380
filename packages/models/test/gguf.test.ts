import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dequantizeGgml, fakeQuantizeGgml, ggmlRowBytes, openHfModel, quantizeQ4_0, quantizeQ8_0, writeGguf } from '../src/index.js';
import { tempDir, tinyLlama } from '../../../tools/fixtures/index.js';

/** A minimal GGUF reader: header, metadata keys and values, tensor infos (enough to check what the writer wrote). */
function readGguf(buf: Buffer) {
  let p = 0;
  const u32 = () => ((p += 4), buf.readUInt32LE(p - 4));
  const u64 = () => ((p += 8), Number(buf.readBigUInt64LE(p - 8)));
  const str = () => {
    const n = u64();
    p += n;
    return buf.toString('utf8', p - n, p);
  };
  const value = (type: number): unknown => {
    if (type === 4) return u32();
    if (type === 5) return ((p += 4), buf.readInt32LE(p - 4));
    if (type === 6) return ((p += 4), buf.readFloatLE(p - 4));
    if (type === 8) return str();
    if (type === 9) {
      const t = u32();
      return Array.from({ length: u64() }, () => value(t));
    }
    throw new Error(`type ${type}`);
  };
  const magic = buf.toString('ascii', 0, 4);
  p = 4;
  const version = u32();
  const nTensors = u64();
  const nMeta = u64();
  const meta: Record<string, unknown> = {};
  for (let i = 0; i < nMeta; i++) {
    const k = str();
    meta[k] = value(u32());
  }
  const tensors = Array.from({ length: nTensors }, () => {
    const name = str();
    const dims = Array.from({ length: u32() }, () => u64());
    return { name, dims, type: u32(), offset: u64() };
  });
  return { magic, version, meta, tensors, dataStart: Math.ceil(p / 32) * 32 };
}

describe('GGUF', () => {
  const t = tempDir('alki-gguf-');
  const model = tinyLlama({ seed: 8, hiddenSize: 64, intermediateSize: 128 });
  afterAll(() => {
    t.cleanup();
    model.cleanup();
  });

  it('Q4_0 and Q8_0 round as ggml’s reference code does', () => {
    const x = Float32Array.from({ length: 32 }, (_, j) => j - 16);
    const q4 = quantizeQ4_0(x);
    expect(q4.length).toBe(18);
    const d4 = dequantizeGgml('Q4_0', q4, 32);
    // d = −16 / −8 = 2; codes trunc(x/2 + 8.5) capped at 15.
    expect(d4[0]).toBe(-16);
    expect(d4[16]).toBe(0);
    expect(d4[17]).toBe(2); // 1/2 + 8.5 = 9 → (9 − 8)·2
    expect(d4[31]).toBe(14); // 7.5 + 8.5 = 16 → 15
    const d8 = dequantizeGgml('Q8_0', quantizeQ8_0(x), 32);
    for (let j = 0; j < 32; j++) expect(Math.abs(d8[j] - x[j])).toBeLessThanOrEqual(16 / 127 / 2 + 1e-3);
    expect(() => quantizeQ4_0(new Float32Array(20))).toThrow(/multiple of 32/);
    // A row of 40 values: the last block is rounded as if padded with zeros.
    const w = Float32Array.from({ length: 40 }, (_, j) => Math.sin(j));
    const f = fakeQuantizeGgml(w, 1, 40, 'Q4_0');
    const padded = new Float32Array(64);
    padded.set(w);
    expect(Array.from(f)).toEqual(Array.from(dequantizeGgml('Q4_0', quantizeQ4_0(padded), 64).subarray(0, 40)));
  });

  it('writes a llama GGUF v3: metadata, aligned tensor data, q/k rows in llama.cpp’s rotary order', () => {
    const hf = openHfModel(model.dir);
    const path = join(t.dir, 'model-q4_0.gguf');
    const bytes = writeGguf(hf, path, { type: 'Q4_0' });
    expect(statSync(path).size).toBe(bytes);
    const buf = readFileSync(path);
    const g = readGguf(buf);
    expect(g.magic).toBe('GGUF');
    expect(g.version).toBe(3);
    const c = hf.config;
    expect(g.meta['general.architecture']).toBe('llama');
    expect(g.meta['general.file_type']).toBe(2);
    expect(g.meta['llama.block_count']).toBe(c.numLayers);
    expect(g.meta['llama.attention.head_count_kv']).toBe(c.numKvHeads);
    expect((g.meta['tokenizer.ggml.tokens'] as string[]).length).toBe(c.vocabSize);
    expect(new Set(g.meta['tokenizer.ggml.tokens'] as string[]).size).toBe(c.vocabSize);
    expect(g.tensors.length).toBe(2 + 9 * c.numLayers + (c.tieWordEmbeddings ? 0 : 1));
    for (const x of g.tensors) expect(x.offset % 32).toBe(0);
    // attn_q: row 2i+j of head h is HF row h·hd + j·hd/2 + i.
    const q = g.tensors.find((x) => x.name === 'blk.0.attn_q.weight')!;
    expect(q.type).toBe(2);
    const K = c.hiddenSize;
    const rowBytes = ggmlRowBytes('Q4_0', K);
    const hd = c.headDim;
    const hfq = hf.weights.get('model.layers.0.self_attn.q_proj.weight').data;
    const row = (r: number) => dequantizeGgml('Q4_0', buf.subarray(g.dataStart + q.offset + r * rowBytes, g.dataStart + q.offset + (r + 1) * rowBytes), K);
    for (const [ggufRow, hfRow] of [
      [1, hd / 2],
      [2, 1],
      [hd + 3, hd + hd / 2 + 1],
    ]) {
      expect(Array.from(row(ggufRow))).toEqual(Array.from(fakeQuantizeGgml(hfq.subarray(hfRow * K, (hfRow + 1) * K), 1, K, 'Q4_0')));
    }
    const norm = g.tensors.find((x) => x.name === 'output_norm.weight')!;
    expect(norm.type).toBe(0);
    expect(
      Array.from(new Float32Array(buf.buffer.slice(buf.byteOffset + g.dataStart + norm.offset, buf.byteOffset + g.dataStart + norm.offset + 4 * K))),
    ).toEqual(Array.from(hf.weights.get('model.norm.weight').data));
  });
});
