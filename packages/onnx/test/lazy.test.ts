import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DataType,
  GraphBuilder,
  TensorSpill,
  createModel,
  floatTensor,
  isLazy,
  lazyTensor,
  materialize,
  readModelFile,
  readTransposed,
  tensorByteLength,
  transpose,
  uint8Tensor,
  writeModelFile,
} from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'alki-lazy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const values = (n: number, seed: number) => new Float32Array(n).map((_, i) => Math.sin(i * 0.7 + seed));

describe('lazy tensors', () => {
  it('load on every read, report their size without loading, and become ordinary when materialized', () => {
    let loads = 0;
    const t = lazyTensor('w', DataType.FLOAT, [3, 4], () => (loads++, values(12, 1)));
    expect(isLazy(t)).toBe(true);
    expect(tensorByteLength(t)).toBe(48);
    expect(loads).toBe(0);
    const a = t.data;
    const b = t.data;
    expect(loads).toBe(2);
    expect(a).not.toBe(b);
    expect(Array.from(a as Float32Array)).toEqual(Array.from(b as Float32Array));
    materialize(t);
    expect(isLazy(t)).toBe(false);
    const c = t.data;
    expect(t.data).toBe(c);
    expect(loads).toBe(3);
  });

  it('refuse a load of the wrong size', () => {
    const t = lazyTensor('w', DataType.FLOAT, [3, 4], () => values(11, 1));
    expect(() => t.data).toThrow(/produced 11 values for dims \[3, 4\]/);
  });

  it('read transposed straight from the source layout, or by transposing', () => {
    const rows = values(12, 2); // [4, 3] as stored at the source
    let direct = 0;
    const t = lazyTensor(
      'w',
      DataType.FLOAT,
      [3, 4],
      () => transpose(rows, 4, 3),
      () => (direct++, rows),
    );
    expect(readTransposed(t)).toBe(rows);
    expect(direct).toBe(1);
    const plain = floatTensor('p', [3, 4], transpose(rows, 4, 3));
    expect(Array.from(readTransposed(plain))).toEqual(Array.from(rows));
  });
});

describe('TensorSpill', () => {
  it('keeps tensors in a file and reads them back exactly; removing it deletes the file', () => {
    const spill = new TensorSpill(join(dir, 'a.spill'));
    const f = floatTensor('f', [2, 5], values(10, 3));
    const u = uint8Tensor('u', [7], Uint8Array.from([1, 2, 3, 250, 0, 9, 8]));
    const sf = spill.spill(f);
    const su = spill.spill(u);
    expect(isLazy(sf) && isLazy(su)).toBe(true);
    expect(spill.bytes).toBe(47);
    expect(Array.from(su.data as Uint8Array)).toEqual(Array.from(u.data as Uint8Array));
    expect(Array.from(sf.data as Float32Array)).toEqual(Array.from(f.data as Float32Array));
    expect(sf.dataType).toBe(DataType.FLOAT);
    spill.remove();
    expect(() => readFileSync(join(dir, 'a.spill'))).toThrow();
    expect(() => sf.data).toThrow(/removed/);
  });

  it('never overwrites an existing file', () => {
    const spill = new TensorSpill(join(dir, 'b.spill'));
    expect(() => new TensorSpill(join(dir, 'b.spill'))).toThrow();
    spill.remove();
  });
});

describe('writing lazy models', () => {
  const build = (lazy: boolean) => {
    const b = new GraphBuilder('g');
    const x = b.input('x', DataType.FLOAT, ['n', 256]);
    const w = values(256 * 300, 4);
    b.initializer(lazy ? lazyTensor('w', DataType.FLOAT, [256, 300], () => Float32Array.from(w)) : floatTensor('w', [256, 300], w));
    b.initializer(floatTensor('small', [4], [1, 2, 3, 4]));
    b.output(b.node('MatMul', [x, 'w'], {}, { outputs: ['y'] }), DataType.FLOAT, ['n', 300]);
    return createModel(b.build(), { opsets: { '': 17 } });
  };

  for (const externalData of ['always', 'never'] as const) {
    it(`gives the same files as the loaded model (external data ${externalData})`, () => {
      const [la, pl] = [join(dir, `lazy-${externalData}`), join(dir, `plain-${externalData}`)];
      mkdirSync(la);
      mkdirSync(pl);
      const a = writeModelFile(join(la, 'model.onnx'), build(true), { externalData });
      const b = writeModelFile(join(pl, 'model.onnx'), build(false), { externalData });
      expect(a.length).toBe(externalData === 'always' ? 2 : 1);
      expect(b.length).toBe(a.length);
      for (let i = 0; i < a.length; i++) expect(readFileSync(a[i]).equals(readFileSync(b[i]))).toBe(true);
      const back = readModelFile(a[0]);
      expect(Array.from((back.graph.initializers.find((t) => t.name === 'w')!.data as Float32Array).slice(0, 5))).toEqual(Array.from(values(5, 4)));
    });
  }
});
