import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '@alki/core';
import { exportModel, openHfModel } from '@alki/models';
import { loadTokenizer } from '@alki/runtime';
import { calibrationFromText, createQuantizer, readCalibrationFile, type CalibrationData } from '../src/index.js';
import { stories260K, tinyStoriesText, tinyLlama } from '../../../tools/fixtures/index.js';
import { decoderLogits } from '../../../tools/fixtures/decoder.js';

function mse(a: Float32Array, b: Float32Array): number {
  return a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0) / a.length;
}

describe.skipIf(!stories260K || !tinyStoriesText)('GPTQ and AWQ on stories260K (layer by layer, sequential)', () => {
  it('GPTQ (with and without MSE ranges, with AWQ scales) and AWQ produce MatMulNBits models whose logits are closer to fp32 than RTN int4', async () => {
    const tok = loadTokenizer(stories260K!);
    const text = readCalibrationFile(tinyStoriesText!);
    // Calibrate on the end of the text, evaluate on its start.
    const calibration: CalibrationData = calibrationFromText(tok, text.slice(text.length / 2), { samples: 16, seqLen: 256, name: 'tinystories (second half)' });
    expect(calibration.samples).toHaveLength(16);
    const evalIds = tok.encode(text.slice(0, 4000)).slice(0, 256);
    const fresh = () => exportModel(openHfModel(stories260K!)).model;
    const ref = await decoderLogits(fresh(), evalIds);
    const errors: Record<string, number> = {};
    for (const [method, extra] of [
      ['rtn', { mseClip: false }],
      ['rtn', {}],
      ['gptq', {}],
      ['awq', {}],
      ['gptq', { awqScales: true }],
      ['gptq', { mseClip: false }],
      ['gptq', { trueSequential: false, floatTargets: false }],
    ] as const) {
      const q = createQuantizer(method, { bits: 4, blockSize: 32, ...extra });
      const { model, report } = await q.quantize(fresh(), { calibration });
      expect(model.graph.nodes.filter((n) => n.opType === 'MatMulNBits')).toHaveLength(36);
      expect(model.graph.nodes.some((n) => n.opType === 'MatMul' && n.inputs[1]?.endsWith('.weight'))).toBe(false);
      if (method !== 'rtn') expect(report.calibration).toMatchObject({ samples: 16, sequenceLength: 256 });
      if (method === 'gptq')
        expect(report).toMatchObject({
          mseClip: !('mseClip' in extra),
          ...('awqScales' in extra ? { awqScales: true } : {}),
          trueSequential: !('trueSequential' in extra),
          floatTargets: !('floatTargets' in extra),
        });
      errors[`${method}${Object.keys(extra).join('+')}`] = mse(await decoderLogits(model, evalIds), ref);
    }
    // Against RTN with min/max ranges (RTN's default searches its ranges since; GPTQ, which searches them too, beats that).
    expect(errors.gptq).toBeLessThan(errors.rtnmseClip);
    expect(errors.awq).toBeLessThan(errors.rtnmseClip);
    // AWQ's scales under GPTQ's rounding, and GPTQ with min/max ranges, are GPTQ variants: better than RTN too.
    expect(errors.gptqawqScales).toBeLessThan(errors.rtnmseClip);
    expect(errors.gptqmseClip).toBeLessThan(errors.rtnmseClip);
    expect(errors.rtn).toBeLessThan(errors.rtnmseClip);
    expect(errors.gptq).toBeLessThan(errors.rtn);
    // Fitted to the float model's outputs, statistics after each earlier linear (the defaults): better than plain GPTQ.
    expect(errors.gptq).toBeLessThan(errors['gptqtrueSequential+floatTargets']);
  });
});

describe('calibration input errors', () => {
  it('a text too short for one sample, a missing file, a JSONL line without text', async () => {
    const m = tinyLlama();
    const tok = loadTokenizer(m.dir);
    expect(() => calibrationFromText(tok, 'the cat', { samples: 4, seqLen: 64 })).toThrow(/fewer than one sample of 64/);
    expect(() => readCalibrationFile(join(m.dir, 'nope.txt'))).toThrow(/calibration file not found/);
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(m.dir, 'c.jsonl'), '{"text": "ok"}\n{"body": "no"}\n');
    expect(() => readCalibrationFile(join(m.dir, 'c.jsonl'))).toThrow(/c\.jsonl:2 has no "text" string/);
    m.cleanup();
  });

  it('NaN appearing in activations stops with the layer named', async () => {
    const m = tinyLlama({ seed: 4 });
    const { model } = exportModel(openHfModel(m.dir));
    const norm = model.graph.initializers.find((t) => t.name === 'model.layers.1.post_attention_layernorm.weight')!;
    (norm.data as Float32Array)[3] = NaN;
    const calibration: CalibrationData = { samples: [[1, 300, 301, 302, 303, 304, 305, 306]], source: 'test' };
    await expect(createQuantizer('gptq', { bits: 4 }).quantize(model, { calibration })).rejects.toThrow(/layer 1[\s\S]*NaN|NaN[\s\S]*layer 1/);
    m.cleanup();
  });

  it('AWQ/GPTQ without calibration data, or on a graph not fed by token ids, say what is missing', async () => {
    const m = tinyLlama();
    const { model } = exportModel(openHfModel(m.dir));
    await expect(createQuantizer('awq').quantize(model)).rejects.toThrow(/needs calibration data/);
    const { GraphBuilder, DataType, floatTensor, createModel } = await import('@alki/onnx');
    const b = new GraphBuilder();
    b.initializer(floatTensor('w', [8, 4], new Float32Array(32).fill(0.5)));
    b.output(b.node('MatMul', [b.input('features', DataType.FLOAT, ['n', 8]), 'w'], {}, { outputs: ['y'] }), DataType.FLOAT);
    const foreign = createModel(b.build(), { opsets: { '': 17 } });
    await expect(createQuantizer('gptq').quantize(foreign, { calibration: { samples: [[1, 2, 3]], source: 'x' } })).rejects.toThrow(
      /cannot feed the graph input "features"/,
    );
    m.cleanup();
  });
});

describe('calibrated quantizers on both graph flavours', () => {
  for (const flavour of ['ort', 'portable'] as const) {
    it(`GPTQ, AWQ and SmoothQuant run on the ${flavour} graph (packed q/k/v + GroupQueryAttention in ort) and GPTQ/AWQ beat RTN`, async () => {
      const m = tinyLlama({ seed: 8, numHeads: 2, numKvHeads: 1, hiddenSize: 64, intermediateSize: 128 });
      const fresh = () => exportModel(openHfModel(m.dir), { flavour }).model;
      const rng = new SeededRandom(3);
      const calibration: CalibrationData = {
        samples: Array.from({ length: 8 }, () => [1, ...Array.from({ length: 63 }, () => 3 + rng.int(300))]),
        source: 'random ids',
      };
      // Evaluated on fresh text from the calibration distribution (random ids): what AWQ and GPTQ optimize for.
      const r2 = new SeededRandom(77);
      const evalIds = [1, ...Array.from({ length: 63 }, () => 3 + r2.int(300))];
      const ref = await decoderLogits(fresh(), evalIds);
      const errors: Record<string, number> = {};
      for (const method of ['rtn', 'gptq', 'awq', 'smoothquant'] as const) {
        // RTN with min/max ranges: on this random 64-wide model the calibrated methods beat it, not always RTN's range search.
        const options = method === 'smoothquant' ? {} : { bits: 4 as const, blockSize: 32, ...(method === 'rtn' ? { mseClip: false } : {}) };
        const { model } = await createQuantizer(method, options).quantize(fresh(), { calibration });
        const packed = model.graph.nodes.some((n) => n.opType === 'GroupQueryAttention') && model.graph.nodes.some((n) => n.inputs[1]?.includes('qkv_proj'));
        expect(packed).toBe(flavour === 'ort');
        errors[method] = mse(await decoderLogits(model, evalIds), ref);
        expect(Number.isFinite(errors[method])).toBe(true);
      }
      expect(errors.gptq).toBeLessThan(errors.rtn);
      expect(errors.awq).toBeLessThan(errors.rtn);
      // W8A8 is far more precise than int4.
      expect(errors.smoothquant).toBeLessThan(errors.rtn);
      m.cleanup();
    });
  }
});

describe('exclude means bit-identical', () => {
  const excluded = ['model.layers.0.mlp.up_proj.weight', 'model.layers.1.self_attn.o_proj.weight', /layers\.1\.mlp\.down/];
  const excludedNames = ['model.layers.0.mlp.up_proj.weight', 'model.layers.1.mlp.down_proj.weight', 'model.layers.1.self_attn.o_proj.weight'];
  for (const method of ['gptq', 'awq', 'smoothquant'] as const) {
    it(`${method}: excluded weights stay MatMuls with the checkpoint's bytes, and scales never fold into them`, async () => {
      const m = tinyLlama({ seed: 5 });
      const fresh = () => exportModel(openHfModel(m.dir)).model;
      const original = new Map(fresh().graph.initializers.map((t) => [t.name, t.data.slice()]));
      const rng = new SeededRandom(9);
      const calibration: CalibrationData = {
        samples: Array.from({ length: 4 }, () => [1, ...Array.from({ length: 31 }, () => 3 + rng.int(300))]),
        source: 'random ids',
      };
      const { model, report } = await createQuantizer(method, { bits: method === 'smoothquant' ? 8 : 4, exclude: excluded }).quantize(fresh(), { calibration });
      expect(report.excluded.sort()).toEqual(excludedNames);
      for (const name of excludedNames) {
        const node = model.graph.nodes.find((n) => n.inputs[1] === name);
        expect(node?.opType).toBe('MatMul');
        const data = model.graph.initializers.find((t) => t.name === name)!.data as Float32Array;
        const before = original.get(name)!;
        expect(Buffer.from(data.buffer, data.byteOffset, data.byteLength).equals(Buffer.from(before.buffer, before.byteOffset, before.byteLength))).toBe(true);
      }
      // The other linears were quantized.
      expect(report.layers.length).toBe(11 - excludedNames.length);
      m.cleanup();
    });
  }

  it('a pattern that matches nothing is refused with examples of the names', async () => {
    const m = tinyLlama({ seed: 5 });
    expect(() => createQuantizer('rtn', { exclude: ['lm_head'] }).quantize(exportModel(openHfModel(m.dir)).model)).rejects.toThrow(
      /--exclude lm_head matches no linear layer/,
    );
    m.cleanup();
  });
});

describe('the output projection’s width (headBits)', () => {
  it('8 by default: the head is an 8-bit MatMulNBits while the body is int4; 32 keeps it float; 4 follows the body', async () => {
    const m = tinyLlama({ seed: 6 });
    const fresh = () => exportModel(openHfModel(m.dir)).model;
    const headNode = (model: ReturnType<typeof fresh>) => model.graph.nodes.find((n) => n.outputs[0] === 'logits')!;
    const byDefault = await createQuantizer('rtn', { bits: 4 }).quantize(fresh());
    expect(byDefault.report.head).toEqual({ name: 'lm_head.weight', bits: 8 });
    expect(headNode(byDefault.model).attributes.bits.value).toBe(8);
    expect(byDefault.model.graph.nodes.filter((n) => n.opType === 'MatMulNBits' && n.attributes.bits.value === 4)).toHaveLength(10);
    const float = await createQuantizer('rtn', { bits: 4, headBits: 32 }).quantize(fresh());
    expect(headNode(float.model).opType).toBe('MatMul');
    expect(float.report.excluded).toEqual(['lm_head.weight']);
    const four = await createQuantizer('rtn', { bits: 4, headBits: 4 }).quantize(fresh());
    expect(headNode(four.model).attributes.bits.value).toBe(4);
    const calibration: CalibrationData = { samples: [[1, 300, 301, 302, 303, 304, 305, 306]], source: 'test' };
    const gptq = await createQuantizer('gptq', { bits: 4 }).quantize(fresh(), { calibration });
    expect(headNode(gptq.model).attributes.bits.value).toBe(8);
    expect(() => createQuantizer('smoothquant', { headBits: 4 })).toThrow(/--head-bits 4 is not possible/);
    expect(() => createQuantizer('rtn', { headBits: 6 as 8 })).toThrow(/--head-bits 6 is not supported/);
    m.cleanup();
  });
  it('refuses to resume codes recorded in another block layout (an earlier version wrote the down projection in blocks of 128)', async () => {
    const m = tinyLlama({ seed: 6 });
    try {
      const model = exportModel(openHfModel(m.dir)).model;
      const qw = {
        bits: 4,
        blockSize: 128,
        N: 64,
        K: 172,
        nBlocks: 2,
        q: new Uint8Array(64 * 256),
        scales: new Float32Array(128),
        zeroPoints: new Uint8Array(128),
      };
      const checkpoint = {
        load: () => ({ done: 1, layers: [{ codes: [{ name: 'model.layers.0.mlp.down_proj.weight', qw, error: 0 }], tensors: [] }], hidden: [] }),
        save: () => {},
      };
      const calibration: CalibrationData = { samples: [[1, 300, 301, 302, 303, 304, 305, 306]], source: 'test' };
      await expect(createQuantizer('gptq', { bits: 4, blockSize: 128, checkpoint }).quantize(model, { calibration })).rejects.toThrow(
        /the checkpoint holds model\.layers\.0\.mlp\.down_proj\.weight in blocks of 128, where this build writes blocks of 64/,
      );
    } finally {
      m.cleanup();
    }
  });
});
