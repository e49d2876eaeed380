import { describe, expect, it } from 'vitest';
import { exportModel, openHfModel } from '@alki/models';
import * as ort from 'onnxruntime-node';
import { DataType, createModel, encodeModel, floatTensor, materializeModel, type Model } from '@alki/onnx';
import { createQuantizer, dequantizeBlockwise, quantize, rtn } from '../src/index.js';
import { extractSubgraph } from '../src/calibration/subgraph.js';
import { tinyLlama } from '../../../tools/fixtures/index.js';
import { decoderLogits } from '../../../tools/fixtures/decoder.js';

const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
const ids = [1, 17, 42, 99, 3, 250];

/** Names a node reads that no graph input, initializer or earlier node defines: ONNX wants nodes in topological order. */
function undefinedInputs(model: Model): string[] {
  const known = new Set([...model.graph.inputs.map((v) => v.name), ...model.graph.initializers.map((t) => t.name), '']);
  const missing: string[] = [];
  for (const n of model.graph.nodes) {
    for (const i of n.inputs) if (!known.has(i)) missing.push(`${n.name}: ${i}`);
    for (const o of n.outputs) known.add(o);
  }
  return missing;
}

/** The same model with its embedding table replaced by the values a `bits`-bit table dequantizes to. */
function withRoundedEmbedding(model: Model, bits: 4 | 8, blockSize: number, symmetric: boolean, mseClip = false): Model {
  const t = model.graph.initializers.find((x) => x.name === 'model.embed_tokens.weight')!;
  const [V, H] = t.dims;
  const rounded = dequantizeBlockwise(rtn(t.data as Float32Array, V, H, { bits, blockSize, symmetric, mseClip }));
  model.graph.initializers[model.graph.initializers.indexOf(t)] = floatTensor(t.name, t.dims, rounded);
  return model;
}

describe('quantized embeddings', () => {
  for (const [bits, symmetric] of [
    [4, false],
    [8, false],
    [4, true],
  ] as const) {
    it(`looks rows up in a ${bits}-bit${symmetric ? ' symmetric' : ''} table with the values RTN rounds them to (untied model)`, async () => {
      const m = tinyLlama({ hiddenSize: 64, vocabSize: 300, seed: 21 });
      try {
        const fresh = () => materializeModel(exportModel(openHfModel(m.dir)).model);
        const q = quantize(fresh(), { method: 'rtn', bits: 4, blockSize: 32, symmetric, embedBits: bits });
        expect(q.report.embedding).toMatchObject({ name: 'model.embed_tokens.weight', bits });
        expect(q.model.graph.initializers.some((t) => t.name === 'model.embed_tokens.weight')).toBe(false);
        expect(q.model.graph.nodes.some((n) => n.opType === 'Gather' && n.inputs[0] === 'model.embed_tokens.weight.qweight')).toBe(true);
        // Reference: float table holding the rounded values, everything else quantized the same way.
        const ref = quantize(withRoundedEmbedding(fresh(), bits, 32, symmetric), { method: 'rtn', bits: 4, blockSize: 32, symmetric, embedBits: 32 });
        const [a, b] = [await decoderLogits(q.model, ids), await decoderLogits(ref.model, ids)];
        expect(maxAbsDiff(a, b)).toBeLessThan(1e-4);
        const plain = await decoderLogits(quantize(fresh(), { method: 'rtn', bits: 4, blockSize: 32, symmetric, embedBits: 32 }).model, ids);
        expect(maxAbsDiff(a, plain)).toBeGreaterThan(1e-4); // the rounding is really there
      } finally {
        m.cleanup();
      }
    });
  }

  it('stores a tied table once: the embedding reads the head’s codes (same logits as a float table of those values)', async () => {
    const m = tinyLlama({ hiddenSize: 64, vocabSize: 300, tieWordEmbeddings: true, seed: 22 });
    try {
      const fresh = () => materializeModel(exportModel(openHfModel(m.dir)).model);
      for (const headBits of [8, 4] as const) {
        const q = quantize(fresh(), { method: 'rtn', bits: 4, blockSize: 32, headBits, embedBits: 8 });
        expect(q.report.embedding).toMatchObject({ bits: headBits, sharedWith: 'lm_head.weight' });
        const V = fresh().graph.initializers.find((t) => t.name === 'model.embed_tokens.weight')!.dims[0];
        // Per-row tables of the vocabulary with more than one byte per block: codes and scales, once.
        const tables = q.model.graph.initializers.filter((t) => t.dims[0] === V && t.dims.length >= 2 && t.data.byteLength > V * 2);
        expect(tables.map((t) => t.name).sort()).toEqual(['lm_head.weight.qweight', 'lm_head.weight.scales'].sort());
        // The head's codes as RTN's default makes them in an int4 build: ranges searched below 8 bits, min/max at 8.
        const ref = quantize(withRoundedEmbedding(fresh(), headBits, 32, false, headBits < 8), {
          method: 'rtn',
          bits: 4,
          blockSize: 32,
          headBits,
          embedBits: 32,
        });
        expect(maxAbsDiff(await decoderLogits(q.model, ids), await decoderLogits(ref.model, ids))).toBeLessThan(1e-4);
      }
      // A float head leaves nothing to share: the table is quantized on its own.
      const own = quantize(fresh(), { method: 'rtn', bits: 4, blockSize: 32, headBits: 32, embedBits: 8 });
      expect(own.report.embedding?.sharedWith).toBeUndefined();
      expect(own.report.embedding?.bits).toBe(8);
    } finally {
      m.cleanup();
    }
  });

  it('keeps the table in float with embedBits 32, and refuses other widths', () => {
    const m = tinyLlama({ hiddenSize: 64, seed: 23 });
    try {
      const q = quantize(exportModel(openHfModel(m.dir)).model, { method: 'rtn', bits: 4, embedBits: 32 });
      expect(q.report.embedding).toBeUndefined();
      expect(q.model.graph.initializers.some((t) => t.name === 'model.embed_tokens.weight')).toBe(true);
      expect(() => quantize(exportModel(openHfModel(m.dir)).model, { method: 'rtn', bits: 4, embedBits: 2 as 4 })).toThrow(/--embed-bits 2 is not supported/);
    } finally {
      m.cleanup();
    }
  });

  it('AWQ and GPTQ on AWQ’s scales share a tied table with the head, dividing each looked-up row by the scale folded into the head', async () => {
    const m = tinyLlama({ hiddenSize: 64, vocabSize: 300, tieWordEmbeddings: true, seed: 25 });
    try {
      const calibration = { samples: [Array.from({ length: 32 }, (_, i) => (i * 37) % 300)], source: 'test' };
      const table = exportModel(openHfModel(m.dir)).model.graph.initializers.find((t) => t.name === 'model.embed_tokens.weight')!;
      const E = table.data as Float32Array;
      const ids = [0, 5, 37, 299];
      for (const [method, o] of [
        ['awq', {}],
        ['gptq', { awqScales: true }],
      ] as const) {
        const q = await createQuantizer(method, { bits: 4, blockSize: 32, ...o }).quantize(exportModel(openHfModel(m.dir)).model, { calibration });
        expect(q.report.embedding).toMatchObject({ bits: 8, sharedWith: 'lm_head.weight' });
        expect(q.model.graph.initializers.some((t) => t.name === 'model.embed_tokens.weight.qweight')).toBe(false);
        const mul = q.model.graph.nodes.find((n) => n.opType === 'Mul' && n.inputs[1] === 'model.embed_tokens.weight.inverse_awq_scale')!;
        const inverse = q.model.graph.initializers.find((t) => t.name === mul.inputs[1])!.data as Float32Array;
        expect(inverse.some((v) => Math.abs(v - 1) > 1e-3)).toBe(true); // AWQ did scale the head
        // The lookup alone, run by onnxruntime: the float table's rows within the head's 8-bit rounding.
        const graph = extractSubgraph(q.model, [mul.outputs[0]], []);
        const lookup = createModel(
          { ...graph, outputs: [{ name: mul.outputs[0], elemType: DataType.FLOAT, shape: [1, ids.length, 64] }] },
          {
            opsets: Object.fromEntries(q.model.opsetImports.map((x) => [x.domain, x.version])),
          },
        );
        const s = await ort.InferenceSession.create(encodeModel(lookup));
        const rows = (await s.run({ input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]) }))[mul.outputs[0]]
          .data as Float32Array;
        let num = 0;
        let den = 0;
        ids.forEach((id, r) => {
          for (let k = 0; k < 64; k++) {
            num += (rows[r * 64 + k] - E[id * 64 + k]) ** 2;
            den += E[id * 64 + k] ** 2;
          }
        });
        expect(Math.sqrt(num / den)).toBeLessThan(0.02);
      }
    } finally {
      m.cleanup();
    }
  });

  it('defaults to the model’s width (4 bits in int4 models, 8 in int8), stores float16 scales, and keeps nodes in topological order', () => {
    for (const tied of [false, true]) {
      const m = tinyLlama({ hiddenSize: 64, vocabSize: 300, tieWordEmbeddings: tied, seed: 24 });
      try {
        for (const bits of [4, 8] as const) {
          const q = quantize(exportModel(openHfModel(m.dir)).model, { method: 'rtn', bits, blockSize: 32 });
          // A tied table is the head's codes, at the head's 8 bits.
          expect(q.report.embedding?.bits).toBe(tied ? 8 : bits);
          expect(undefinedInputs(q.model)).toEqual([]);
          // float16 scales on disk; the lookup gathers rows of their float32 Cast (folded at load), never float16 rows
          // (a float16 Gather needs shader-f16 on WebGPU).
          const scales = q.model.graph.initializers.find((t) => t.name === (tied ? 'lm_head.weight.scales' : 'model.embed_tokens.weight.scales'));
          expect(scales?.dataType).toBe(DataType.FLOAT16);
          const cast = q.model.graph.nodes.find((n) => n.opType === 'Cast' && n.inputs[0] === scales!.name)!;
          expect(cast.attributes.to?.value).toBe(DataType.FLOAT);
          expect(q.model.graph.nodes.some((n) => n.opType === 'Gather' && n.inputs[0] === cast.outputs[0])).toBe(true);
          expect(q.model.graph.nodes.some((n) => n.opType === 'Gather' && n.inputs[0] === scales!.name)).toBe(false);
        }
      } finally {
        m.cleanup();
      }
    }
  });
});
