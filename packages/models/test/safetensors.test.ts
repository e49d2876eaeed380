import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { float32ToBfloat16, float32ToFloat16 } from '@alki/onnx';
import { WeightStore, openHfModel, readSafetensorsHeader, writeSafetensors } from '../src/index.js';
import { tempDir, tinyLlama } from '../../../tools/fixtures/index.js';

const t = tempDir();
afterAll(() => t.cleanup());

/** Writes a raw safetensors file from a header object and a data length. */
function rawFile(name: string, header: object, dataBytes: number, headerLenOverride?: number): string {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(headerLenOverride ?? json.length));
  const path = join(t.dir, name);
  writeFileSync(path, Buffer.concat([len, json, Buffer.alloc(dataBytes)]));
  return path;
}

describe('safetensors header validation', () => {
  it('reads a valid file and its values in F32, F16 and BF16', () => {
    const values = new Float32Array([1, -2, 0.5, 3.25]);
    const p = join(t.dir, 'ok.safetensors');
    writeSafetensors(p, {
      a: { dtype: 'F32', shape: [2, 2], data: values },
      b: { dtype: 'F16', shape: [4], data: float32ToFloat16(values) },
      c: { dtype: 'BF16', shape: [4], data: float32ToBfloat16(values) },
    });
    const store = new WeightStore([p]);
    for (const name of ['a', 'b', 'c']) expect(Array.from(store.get(name).data)).toEqual(Array.from(values));
    expect(store.shape('a')).toEqual([2, 2]);
    expect(() => store.get('a', [4, 1])).toThrow(/has shape \[2,2\] but config.json implies \[4,1\]/);
    expect(() => store.get('zzz')).toThrow(/weight "zzz" is missing/);
  });

  const cases: [string, () => string, RegExp][] = [
    [
      'a file shorter than 8 bytes',
      () => {
        const p = join(t.dir, 'tiny');
        writeFileSync(p, Buffer.alloc(3));
        return p;
      },
      /only 3 bytes/,
    ],
    ['an absurd header length', () => rawFile('huge', {}, 0, 2 ** 40), /header length .* not plausible/],
    ['a header past the end', () => rawFile('past', { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, 4, 5000), /runs past the end/],
    [
      'invalid JSON',
      () => {
        const p = rawFile('json', {}, 0);
        const b = readFileSync(p);
        b[9] = 0x7b;
        b[8] = 0x7b;
        writeFileSync(p, b);
        return p;
      },
      /not valid JSON|not a JSON object/,
    ],
    ['an unknown dtype', () => rawFile('dtype', { a: { dtype: 'F12', shape: [1], data_offsets: [0, 4] } }, 4), /unknown dtype/],
    [
      'a shape that does not match the bytes',
      () => rawFile('shape', { a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8),
      /holds 8 bytes but .* need 12/,
    ],
    ['offsets past the end (truncated)', () => rawFile('trunc', { a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 8), /truncated/],
    [
      'overlapping tensors',
      () => rawFile('overlap', { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12),
      /overlap/,
    ],
    ['reversed offsets', () => rawFile('rev', { a: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, 8), /invalid data_offsets/],
  ];
  for (const [what, make, message] of cases) {
    it(`rejects ${what}`, () => {
      expect(() => readSafetensorsHeader(make())).toThrow(message);
    });
  }
});

describe('HF model folders', () => {
  it('reads sharded checkpoints and F16/BF16 weights like the F32 original', () => {
    const base = tinyLlama({ seed: 3 });
    const sharded = tinyLlama({ seed: 3, shardTensors: 5 });
    const half = tinyLlama({ seed: 3, dtype: 'BF16' });
    const a = openHfModel(base.dir);
    const b = openHfModel(sharded.dir);
    const c = openHfModel(half.dir);
    expect(b.weights.files.length).toBeGreaterThan(1);
    const name = 'model.layers.1.mlp.down_proj.weight';
    expect(Array.from(b.weights.get(name).data)).toEqual(Array.from(a.weights.get(name).data));
    const x = a.weights.get(name).data;
    const y = c.weights.get(name).data;
    for (let i = 0; i < x.length; i++) expect(Math.abs(x[i] - y[i])).toBeLessThanOrEqual(Math.abs(x[i]) / 128);
    for (const m of [base, sharded, half]) m.cleanup();
  });

  it('names a missing shard', () => {
    const m = tinyLlama({ shardTensors: 5 });
    const idx = JSON.parse(readFileSync(join(m.dir, 'model.safetensors.index.json'), 'utf8'));
    idx.weight_map['extra.weight'] = 'model-00099-of-00099.safetensors';
    writeFileSync(join(m.dir, 'model.safetensors.index.json'), JSON.stringify(idx));
    expect(() => openHfModel(m.dir)).toThrow(/shard model-00099-of-00099.safetensors .* is missing/);
    m.cleanup();
  });

  it('refuses configs it would export wrongly', () => {
    const m = tinyLlama();
    const cfgPath = join(m.dir, 'config.json');
    const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
    writeFileSync(cfgPath, JSON.stringify({ ...cfg, rope_scaling: { type: 'yarn', factor: 4 } }));
    expect(() => openHfModel(m.dir)).toThrow(/rope_scaling type "yarn" is not supported/);
    writeFileSync(cfgPath, JSON.stringify({ ...cfg, rope_scaling: { rope_type: 'longrope', factor: 2 } }));
    expect(() => openHfModel(m.dir)).toThrow(expect.objectContaining({ hint: expect.stringMatching(/supported: linear, dynamic, llama3/) }));
    writeFileSync(cfgPath, JSON.stringify({ ...cfg, model_type: 'qwen2', use_sliding_window: true }));
    expect(() => openHfModel(m.dir)).toThrow(/use_sliding_window true/);
    writeFileSync(cfgPath, JSON.stringify({ ...cfg, hidden_act: 'relu' }));
    expect(() => openHfModel(m.dir)).toThrow(/hidden_act "relu"/);
    writeFileSync(cfgPath, JSON.stringify({ ...cfg, num_key_value_heads: 3 }));
    expect(() => openHfModel(m.dir)).toThrow(/not a multiple of num_key_value_heads/);
    writeFileSync(cfgPath, '{ not json');
    expect(() => openHfModel(m.dir)).toThrow(/config.json is not valid JSON/);
    m.cleanup();
  });
});
