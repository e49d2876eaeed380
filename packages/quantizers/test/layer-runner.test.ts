import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exportModel, openHfModel } from '@alki/models';
import { LayerRunner } from '../src/index.js';
import { materializeModel, type LayerSpan } from '@alki/onnx';
import { SliceSessions } from '../src/calibration/slice-sessions.js';
import { extractSubgraph } from '../src/calibration/subgraph.js';
import { tinyLlama } from '../../../tools/fixtures/index.js';
import { decoderLogits } from '../../../tools/fixtures/decoder.js';

/** A generated model's export, its layer spans and hidden size. */
function exported(dir: string, model = exportModel(openHfModel(dir)).model) {
  const layers = JSON.parse(model.metadata['alki.layers']) as LayerSpan[];
  const hidden = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).hidden_size as number;
  return { model, layers, hidden };
}

/** Three 8-token calibration samples. */
const SAMPLES = [
  [1, 5, 9, 200, 7, 3, 8, 11],
  [1, 8, 2, 44, 6, 30, 9, 12],
  [1, 4, 4, 4, 6, 31, 90, 2],
];

describe('LayerRunner', () => {
  for (const flavour of ['portable', 'ort'] as const) {
    it(`decoder layers share one session per slice kind, and the last hidden state matches a full pass (${flavour})`, async () => {
      const m = tinyLlama({ seed: 5, numLayers: 3 });
      const { model, layers, hidden } = exported(m.dir, exportModel(openHfModel(m.dir), { flavour }).model);
      const samples = [
        [1, 5, 9, 200, 7, 3],
        [1, 8, 2, 44, 6, 30],
      ];
      const runner = new LayerRunner(model, layers, samples, hidden, 1);
      await runner.start();
      const sessions = (runner as unknown as { sessions: SliceSessions }).sessions;
      for (let i = 0; i < layers.length; i++) {
        const inputs = [
          ...new Set(model.graph.nodes.filter((n) => n.opType === 'MatMul' && n.inputs[1].startsWith(`model.layers.${i}.`)).map((n) => n.inputs[0])),
        ];
        const stats = await runner.collect(i, inputs, { gram: true, absMax: true });
        for (const st of stats.values()) {
          expect(st.tokens).toBe(12);
          // A positive diagonal (its values are checked against XᵀX in the block-row test below).
          expect(st.gram![0]).toBeGreaterThan(0);
          expect(st.absMax!.some((v) => v > 0)).toBe(true);
        }
        await runner.advance(i);
      }
      // Embedding + statistics + layer pass: three sessions for three layers.
      expect(sessions.size).toBe(3);
      // Through shared sessions, the head's input rows times the head weight give the full model's logits.
      const head = { input: layers[layers.length - 1].output, output: 'logits' };
      const withHead = new LayerRunner(model, [...layers, head], [samples[0]], hidden, 1);
      await withHead.start();
      for (let i = 0; i < layers.length; i++) await withHead.advance(i);
      const headMatMul = model.graph.nodes.find((n) => n.opType === 'MatMul' && n.inputs[1] === 'lm_head.weight')!;
      const x = (await withHead.collect(layers.length, [headMatMul.inputs[0]], { rows: samples[0].length })).get(headMatMul.inputs[0])!.rows!;
      const w = model.graph.initializers.find((t) => t.name === 'lm_head.weight')!;
      const V = w.dims[1];
      const full = await decoderLogits(model, samples[0]);
      let maxRel = 0;
      for (let t = 0; t < samples[0].length; t++)
        for (let v = 0; v < V; v++) {
          let y = 0;
          for (let k = 0; k < hidden; k++) y += x[t * hidden + k] * (w.data as Float32Array)[k * V + v];
          maxRel = Math.max(maxRel, Math.abs(y - full[t * V + v]) / (Math.abs(full[t * V + v]) + 1e-3));
        }
      expect(maxRel).toBeLessThan(1e-3);
      await runner.release();
      await withHead.release();
      m.cleanup();
      // 16 s alone, but it shares 2 cores with the other test files' GPTQ builds (now fitted to the float model, about
      // twice the work) and the browser tests: 62–188 s measured under npm test.
    }, 600_000);
  }

  it('Σ XᵀX from lower block rows equals XᵀX of the collected rows (a width split in block rows)', async () => {
    const m = tinyLlama({ seed: 7, numLayers: 1, intermediateSize: 1100 });
    const { model, layers, hidden } = exported(m.dir);
    const samples = SAMPLES;
    // Two batches: the sums accumulate across runs.
    const runner = new LayerRunner(model, layers, [...samples, ...samples.map((s) => [...s].reverse())], hidden, 3);
    await runner.start();
    const down = model.graph.nodes.find((n) => n.opType === 'MatMul' && n.inputs[1].endsWith('down_proj.weight'))!.inputs[0];
    const st = (await runner.collect(0, [down], { gram: true, rows: 48 })).get(down)!;
    expect(st.tokens).toBe(48);
    expect(st.K).toBe(1100);
    const x = st.rows!;
    let maxErr = 0;
    let scale = 0;
    for (let a = 0; a < st.K; a += 7)
      for (let b = 0; b < st.K; b += 5) {
        let v = 0;
        for (let t = 0; t < 48; t++) v += x[t * st.K + a] * x[t * st.K + b];
        maxErr = Math.max(maxErr, Math.abs(st.gram![a * st.K + b] - v));
        scale = Math.max(scale, Math.abs(v));
      }
    expect(scale).toBeGreaterThan(0);
    expect(maxErr / scale).toBeLessThan(1e-4);
    await runner.release();
    m.cleanup();
  });

  it('values kept by earlier passes (keep, keepFloat) give the statistics and hidden states of recomputing the layer', async () => {
    const m = tinyLlama({ seed: 11, numLayers: 2 });
    // Weights in memory (the export's are read from the checkpoint at each use), so that changing them sticks.
    const { model, layers, hidden } = exported(m.dir, materializeModel(exportModel(openHfModel(m.dir)).model));
    const samples = SAMPLES;
    // Both runners read the same model, so a weight changed between passes (as GPTQ does) reaches both.
    const [kept, recomputed] = [0, 1].map(() => new LayerRunner(model, layers, samples, hidden, 2, undefined, true));
    await kept.start();
    await recomputed.start();
    const matmuls = model.graph.nodes.filter((n) => n.opType === 'MatMul' && n.inputs[1].startsWith('model.layers.0.'));
    const inputs = [...new Set(matmuls.map((n) => n.inputs[0]))]; // in the order the layer computes them
    expect(inputs.length).toBe(4);
    const weight = (name: string) => model.graph.initializers.find((t) => t.name === name)!.data as Float32Array;
    const floats = new Map(matmuls.map((n) => [n.inputs[1], Float32Array.from(weight(n.inputs[1]))]));
    const relDiff = (a: Float32Array, b: Float32Array) => {
      let d = 0;
      let s = 0;
      for (let j = 0; j < a.length; j++) [d, s] = [Math.max(d, Math.abs(a[j] - b[j])), Math.max(s, Math.abs(b[j]))];
      expect(s).toBeGreaterThan(0);
      return d / s;
    };
    for (let p = 0; p < inputs.length; p++) {
      const request = { gram: true, float: floats, advanceFloat: p === 0 };
      const a = (await kept.collect(0, [inputs[p]], { ...request, keep: p > 0, keepFloat: p === 0 ? inputs.slice(1) : undefined })).get(inputs[p])!;
      const [gram, cross] = [Float32Array.from(a.gram!), Float32Array.from(a.cross!)];
      const b = (await recomputed.collect(0, [inputs[p]], request)).get(inputs[p])!;
      expect(relDiff(gram, b.gram!)).toBeLessThan(1e-5);
      expect(relDiff(cross, b.cross!)).toBeLessThan(1e-5);
      // This input's linears change before the next pass: the kept values must be the ones after earlier changes.
      for (const n of matmuls.filter((n) => n.inputs[0] === inputs[p])) weight(n.inputs[1]).forEach((v, j, w) => (w[j] = 0.75 * v + 0.002));
    }
    expect((kept as unknown as { kept: Map<string, unknown> }).kept.size).toBe(3);
    await kept.advance(0);
    await recomputed.advance(0);
    const [ha, hb] = [kept.hiddenStates, recomputed.hiddenStates];
    expect(ha.length).toBe(4); // two batches, two streams
    for (let j = 0; j < ha.length; j++) expect(relDiff(ha[j], hb[j])).toBeLessThan(1e-5);
    // Changed weights reached the next layer's inputs: this model's stream differs from the float model's.
    expect(relDiff(ha[0], ha[2])).toBeGreaterThan(1e-3);
    await kept.release();
    await recomputed.release();
    m.cleanup();
  });

  it('slices of different structure get sessions of their own', async () => {
    const m = tinyLlama({ seed: 6, numLayers: 2 });
    const { model } = exportModel(openHfModel(m.dir));
    const layers = JSON.parse(model.metadata['alki.layers']) as LayerSpan[];
    const sessions = new SliceSessions(model);
    const hidden = JSON.parse(readFileSync(join(m.dir, 'config.json'), 'utf8')).hidden_size as number;
    const cut = (i: number) => [{ name: layers[i].input, elemType: 1 as const, shape: ['batch', 'seq', hidden] }];
    const a = await sessions.prepare(extractSubgraph(model, [layers[0].output], cut(0)));
    const b = await sessions.prepare(extractSubgraph(model, [layers[1].output], cut(1)));
    expect(b.session).toBe(a.session);
    expect(a.name(layers[0].output)).toBe(b.name(layers[1].output));
    await sessions.prepare(
      extractSubgraph(
        model,
        ['logits'],
        cut(1).map((c) => ({ ...c, name: layers[1].output })),
      ),
    );
    expect(sessions.size).toBe(2);
    await sessions.release();
    m.cleanup();
  });
});
