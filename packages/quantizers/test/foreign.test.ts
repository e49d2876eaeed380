import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { SeededRandom } from '@alki/core';
import { DataType, GraphBuilder, createModel, encodeModel, floatTensor, int64Tensor, type Model } from '@alki/onnx';
import { LayerRunner, applyScale, createQuantizer, gemmToMatMul, inferScaleGroups, type CalibrationData } from '../src/index.js';

/**
 * A graph as a third-party exporter writes it: no Alki names or metadata;
 * Gather → LayerNormalization → Gemm(+bias) → Relu → MatMul + Add → residual →
 * LayerNormalization → MatMul head.
 */
function foreignModel(seed = 1): Model {
  const rng = new SeededRandom(seed);
  const V = 64,
    H = 32,
    F = 96;
  const rand = (n: number, std: number) => new Float32Array(n).map(() => rng.normal() * std);
  const b = new GraphBuilder('third_party');
  const ids = b.input('input_ids', DataType.INT64, ['batch', 'seq']);
  b.initializer(floatTensor('wte', [V, H], rand(V * H, 1)));
  b.initializer(
    floatTensor(
      'ln1.g',
      [H],
      rand(H, 0.1).map((x) => 1 + x),
    ),
  );
  b.initializer(floatTensor('ln1.b', [H], rand(H, 0.1)));
  b.initializer(floatTensor('fc1.w', [F, H], rand(F * H, 1 / Math.sqrt(H))));
  b.initializer(floatTensor('fc1.b', [F], rand(F, 0.1)));
  b.initializer(floatTensor('fc2.w', [F, H], rand(F * H, 1 / Math.sqrt(F))));
  b.initializer(floatTensor('fc2.b', [H], rand(H, 0.1)));
  b.initializer(
    floatTensor(
      'ln2.g',
      [H],
      rand(H, 0.1).map((x) => 1 + x),
    ),
  );
  b.initializer(floatTensor('ln2.b', [H], rand(H, 0.1)));
  b.initializer(floatTensor('head.w', [H, V], rand(H * V, 1 / Math.sqrt(H))));
  b.initializer(int64Tensor('flat', [2], [-1, H]));
  const x = b.node('Gather', ['wte', ids]);
  const x2d = b.node('Reshape', [x, 'flat']);
  const n1 = b.node('LayerNormalization', [x2d, 'ln1.g', 'ln1.b'], { axis: -1, epsilon: 1e-5 });
  const h = b.node('Relu', [b.node('Gemm', [n1, 'fc1.w', 'fc1.b'], { transB: 1 })]);
  const y = b.node('Add', [b.node('MatMul', [h, 'fc2.w']), 'fc2.b']);
  const r = b.node('Add', [x2d, y]);
  const n2 = b.node('LayerNormalization', [r, 'ln2.g', 'ln2.b'], { axis: -1, epsilon: 1e-5 });
  b.output(b.node('MatMul', [n2, 'head.w'], {}, { outputs: ['logits'] }), DataType.FLOAT, ['tokens', V]);
  return createModel(b.build(), { opsets: { '': 17 }, producerName: 'someone-else' });
}

async function run(model: Model, ids: number[]): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(encodeModel(model));
  const out = (await s.run({ input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]) })).logits.data as Float32Array;
  await s.release();
  return Float32Array.from(out);
}

const rel = (a: Float32Array, b: Float32Array) => Math.sqrt(a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0) / b.reduce((s, v) => s + v * v, 0));

describe('@alki/quantizers on a graph it did not build', () => {
  const rng = new SeededRandom(2);
  const calibration: CalibrationData = { samples: Array.from({ length: 8 }, () => Array.from({ length: 32 }, () => rng.int(64))), source: 'random ids' };
  const ids = Array.from({ length: 24 }, (_, i) => (i * 7) % 64);

  for (const method of ['rtn', 'gptq', 'awq', 'smoothquant'] as const) {
    it(`${method}: quantizes MatMul and Gemm layers and stays close to the float model`, async () => {
      const ref = await run(foreignModel(), ids);
      const model = foreignModel();
      const { model: q, report } = await createQuantizer(method, method === 'smoothquant' ? {} : { bits: 8, blockSize: 32 }).quantize(model, { calibration });
      expect(report.layers.map((l) => l.name).sort()).toEqual(['fc1.w.gemm_weight', 'fc2.w', 'head.w']);
      const ops = q.graph.nodes.map((n) => n.opType);
      expect(ops).not.toContain('Gemm');
      expect(ops.filter((o) => o === (method === 'smoothquant' ? 'DynamicQuantizeMatMul' : 'MatMulNBits'))).toHaveLength(3);
      if (method === 'awq') expect(ops).toContain('Mul'); // the Relu-fed fc2 has no producer to fold into
      expect(rel(await run(q, ids), ref)).toBeLessThan(0.05);
    });
  }

  it('a kept value of rank 2 (tokens flattened) is fed back with its own dims, and later passes read it', async () => {
    const model = foreignModel();
    const input = (w: string) => model.graph.nodes.find((n) => n.opType === 'MatMul' && n.inputs[1] === w)!.inputs[0];
    const [h, n2] = [input('fc2.w'), input('head.w')];
    // One span from the graph inputs, batches of 4 sequences: a [tokens, F] value fed as [4, seq, F] would not add up.
    const span = [{ input: '', output: 'logits' }];
    const [kept, fresh] = [0, 1].map(() => new LayerRunner(model, span, calibration.samples, 32, 4));
    const gram = async (r: LayerRunner) => Float32Array.from((await r.collect(0, [n2], { gram: true })).get(n2)!.gram!);
    await kept.collect(0, [h], { gram: true, keep: true });
    await expect(kept.collect(0, [h], { gram: true, keep: true })).rejects.toThrow(/kept already/);
    const [a, b] = [await gram(kept), await gram(fresh)];
    const scale = Math.max(...b.map(Math.abs));
    expect(scale).toBeGreaterThan(0);
    expect(Math.max(...a.map((v, j) => Math.abs(v - b[j]))) / scale).toBeLessThan(1e-5);
    // The pass reads the kept arrays, not a recomputation: doubling them changes the statistics.
    for (const arr of (kept as unknown as { kept: Map<string, Float32Array[]> }).kept.get(h)!) arr.forEach((v, j) => (arr[j] = 2 * v));
    const c = await gram(kept);
    expect(Math.max(...c.map((v, j) => Math.abs(v - b[j]))) / scale).toBeGreaterThan(1e-2);
    await kept.release();
    await fresh.release();
  });

  it('folding into LayerNormalization (γ and β) and the inserted Mul leave the float model unchanged', async () => {
    const model = foreignModel();
    expect(gemmToMatMul(model)).toBe(1);
    const ref = await run(model, ids);
    const groups = inferScaleGroups(model);
    expect(groups.map((g) => (g.norm ? 'norm' : g.prev ? 'prev' : g.insertMul ? 'mul' : '?')).sort()).toEqual(['mul', 'norm', 'norm']);
    const r = new SeededRandom(4);
    for (const g of groups) {
      const K = model.graph.initializers.find((t) => t.name === g.linears[0])!.dims[0];
      applyScale(
        model,
        g,
        new Float32Array(K).map(() => 0.5 + r.next()),
      );
    }
    expect(rel(await run(model, ids), ref)).toBeLessThan(1e-5);
  });

  it('Skip*Normalization: γ is input 2 (input 1 is the skip), β input 3; folding there leaves the float model unchanged', async () => {
    for (const op of ['SkipSimplifiedLayerNormalization', 'SkipLayerNormalization'] as const) {
      const rng = new SeededRandom(11);
      const H = 32,
        V = 64;
      const b = new GraphBuilder('skip_norm');
      const ids = b.input('input_ids', DataType.INT64, ['batch', 'seq']);
      b.initializer(
        floatTensor(
          'wte',
          [V, H],
          new Float32Array(V * H).map(() => rng.normal()),
        ),
      );
      b.initializer(
        floatTensor(
          'gamma',
          [H],
          new Float32Array(H).map(() => 1 + 0.1 * rng.normal()),
        ),
      );
      b.initializer(
        floatTensor(
          'beta',
          [H],
          new Float32Array(H).map(() => 0.1 * rng.normal()),
        ),
      );
      b.initializer(
        floatTensor(
          'head.w',
          [H, V],
          new Float32Array(H * V).map(() => rng.normal() / Math.sqrt(H)),
        ),
      );
      const x = b.node('Gather', ['wte', ids]);
      const inputs = op === 'SkipLayerNormalization' ? [x, x, 'gamma', 'beta'] : [x, x, 'gamma'];
      const n = b.node(op, inputs, { epsilon: 1e-5 }, { domain: 'com.microsoft' });
      b.output(b.node('MatMul', [n, 'head.w'], {}, { outputs: ['logits'] }), DataType.FLOAT, ['batch', 'seq', V]);
      const model = createModel(b.build(), { opsets: { '': 17, 'com.microsoft': 1 } });
      const groups = inferScaleGroups(model);
      expect(groups).toEqual([{ layer: 0, norm: 'gamma', normBias: op === 'SkipLayerNormalization' ? 'beta' : undefined, linears: ['head.w'] }]);
      const ref = await run(model, [1, 5, 9, 13]);
      applyScale(
        model,
        groups[0],
        new Float32Array(H).map(() => 0.5 + rng.next()),
      );
      expect(rel(await run(model, [1, 5, 9, 13]), ref)).toBeLessThan(1e-5);
    }
  });
});
