import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import {
  DataType,
  GraphBuilder,
  createModel,
  decodeModel,
  encodeModel,
  float,
  floatTensor,
  int64Tensor,
  readModelFile,
  writeModelFile,
  float16ToFloat32,
  float32ToFloat16,
  bfloat16ToFloat32,
  float32ToBfloat16,
  packBits,
  unpackBits,
} from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'alki-onnx-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function linearModel(k: number, n: number) {
  const w = new Float32Array(k * n).map((_, i) => Math.sin(i) * 0.5);
  const b = new GraphBuilder('linear');
  const x = b.input('x', DataType.FLOAT, ['batch', k]);
  const weight = b.initializer(floatTensor('w', [k, n], w));
  const y = b.node('MatMul', [x, weight]);
  const z = b.node('LeakyRelu', [y], { alpha: float(1) }, { outputs: ['y'] });
  b.output(z, DataType.FLOAT, ['batch', n]);
  b.initializer(int64Tensor('unused_shape', [2], [1, -1]));
  return { model: createModel(b.build(), { opsets: { '': 17 }, metadata: { hello: 'world' } }), w };
}

describe('ModelProto round trip', () => {
  it('keeps nodes, attributes, tensors and metadata', () => {
    const { model, w } = linearModel(4, 3);
    const { model: back } = decodeModel(encodeModel(model));
    expect(back.irVersion).toBe(10);
    expect(back.opsetImports).toEqual([{ domain: '', version: 17 }]);
    expect(back.metadata).toEqual({ hello: 'world' });
    expect(back.graph.nodes.map((n) => n.opType)).toEqual(['MatMul', 'LeakyRelu']);
    expect(back.graph.nodes[1].attributes.alpha).toEqual({ type: 'float', value: 1 });
    expect(back.graph.inputs[0]).toEqual({ name: 'x', elemType: DataType.FLOAT, shape: ['batch', 4] });
    expect(Array.from(back.graph.initializers[0].data as Float32Array)).toEqual(Array.from(w));
    expect(Array.from(back.graph.initializers[1].data as BigInt64Array)).toEqual([1n, -1n]);
  });

  it('rejects bytes that are not ONNX with a clear error', () => {
    expect(() => decodeModel(new Uint8Array([0xff, 0xff, 0xff, 0x01, 0x02]))).toThrow(/not a valid ONNX model/);
  });

  it('runs in onnxruntime-node after writing, inline and with external data', async () => {
    const { model, w } = linearModel(300, 5);
    const inline = join(dir, 'inline.onnx');
    const ext = join(dir, 'ext.onnx');
    expect(writeModelFile(inline, model)).toEqual([inline]);
    expect(writeModelFile(ext, model, { externalData: 'always' })).toEqual([ext, `${ext}_data`]);
    expect(readFileSync(ext).byteLength).toBeLessThan(1000);
    const x = new Float32Array(300).map((_, i) => (i % 7) - 3);
    const expected = new Float32Array(5);
    for (let n = 0; n < 5; n++) for (let k = 0; k < 300; k++) expected[n] += x[k] * w[k * 5 + n];
    for (const path of [inline, ext]) {
      const s = await ort.InferenceSession.create(path);
      const out = await s.run({ x: new ort.Tensor('float32', x, [1, 300]) });
      const y = out.y.data as Float32Array;
      for (let n = 0; n < 5; n++) expect(y[n]).toBeCloseTo(expected[n], 3);
      await s.release();
    }
    const back = readModelFile(ext);
    expect(Array.from(back.graph.initializers[0].data as Float32Array)).toEqual(Array.from(w));
  });

  it('detects truncated external data', () => {
    const { model } = linearModel(300, 5);
    const ext = join(dir, 'trunc.onnx');
    writeModelFile(ext, model, { externalData: 'always' });
    const data = readFileSync(`${ext}_data`);
    writeFileSync(`${ext}_data`, data.subarray(0, data.length - 10));
    expect(() => readModelFile(ext)).toThrow(/reads past the end/);
    expect(existsSync(ext)).toBe(true);
  });
});

describe('tensor helpers', () => {
  it('converts float16 exactly for representable values and rounds to nearest', () => {
    const vals = new Float32Array([0, -0, 1, -2.5, 65504, 6.103515625e-5, 5.960464477539063e-8, 0.1, Infinity]);
    const back = float16ToFloat32(float32ToFloat16(vals));
    expect(Array.from(back.slice(0, 7))).toEqual(Array.from(vals.slice(0, 7)));
    expect(back[7]).toBeCloseTo(0.0999755859375, 10);
    expect(back[8]).toBe(Infinity);
  });

  it('converts bfloat16 by keeping the high 16 bits with rounding', () => {
    const vals = new Float32Array([1, -3.140625, 1e30]);
    const back = bfloat16ToFloat32(float32ToBfloat16(vals));
    expect(back[0]).toBe(1);
    expect(back[1]).toBe(-3.140625);
    expect(Math.abs(back[2] - 1e30) / 1e30).toBeLessThan(1 / 128);
  });

  it('packs 4-bit values low nibble first and unpacks them', () => {
    const vals = [1, 2, 3, 15, 0, 7, 9];
    const packed = packBits(vals, 4);
    expect(Array.from(packed)).toEqual([0x21, 0xf3, 0x70, 0x09]);
    expect(Array.from(unpackBits(packed, 4, vals.length))).toEqual(vals);
    const two = packBits([3, 0, 1, 2, 1], 2);
    expect(Array.from(two)).toEqual([0b10010011, 0b01]);
  });
});
