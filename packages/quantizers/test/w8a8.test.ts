import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { SeededRandom } from '@alki/core';
import { w8a8Saturates } from '@alki/hardware-presets';
import { detectCpu } from '@alki/hardware-presets/node';
import { exportModel, openHfModel } from '@alki/models';
import { DataType, GraphBuilder, createModel, encodeModel, floatTensor, type Model } from '@alki/onnx';
import { loadTokenizer } from '@alki/runtime';
import {
  calibrationFromText,
  createQuantizer,
  findLinears,
  int8PerChannel,
  readCalibrationFile,
  w8a8Codes,
  writeDynamicQuantizeMatMul,
  type W8A8Format,
} from '../src/index.js';
import { stories260K, tinyLlama, tinyStoriesText } from '../../../tools/fixtures/index.js';
import { decoderLogits } from '../../../tools/fixtures/decoder.js';

// Part of `pnpm test:isa`: what these assert depends on the int8 kernels of the CPU onnxruntime runs on.

const M = 16,
  K = 128,
  N = 48;

/** One MatMul with weight W [K, N]. */
function linear(w: Float32Array): Model {
  const b = new GraphBuilder('w8a8');
  const x = b.input('X', DataType.FLOAT, [M, K]);
  b.initializer(floatTensor('W', [K, N], w));
  b.output(b.node('MatMul', [x, 'W'], {}, { outputs: ['Y'] }), DataType.FLOAT, [M, N]);
  return createModel(b.build(), { opsets: { '': 17 } });
}

/**
 * What DynamicQuantizeMatMul computes in exact integer arithmetic: X to uint8 per tensor as
 * DynamicQuantizeLinear does (range including 0, zero point rounded), then Σ (qx − zx)·qw, scaled.
 */
function exactW8A8(x: Float32Array, q: Int8Array, scales: Float32Array): Float64Array {
  let lo = 0,
    hi = 0;
  for (const v of x) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const sx = (hi - lo) / 255;
  const zx = Math.max(0, Math.min(255, Math.round(-lo / sx)));
  const qx = x.map((v) => Math.max(0, Math.min(255, Math.round(v / sx) + zx)) - zx);
  const y = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let acc = 0;
      for (let k = 0; k < K; k++) acc += qx[m * K + k] * q[k * N + n];
      y[m * N + n] = acc * sx * scales[n];
    }
  return y;
}

describe('W8A8 formats on this CPU’s int8 kernels', () => {
  // Under `pnpm test:isa`, /proc/cpuinfo is the emulated CPU's (tools/test-isa.mjs).
  const cpu = detectCpu();
  const rng = new SeededRandom(8);
  // Non-negative activations use the whole uint8 range; a few heavy weights per column put codes at ±max.
  const x = new Float32Array(M * K).map(() => 3 * rng.next());
  const w = new Float32Array(K * N).map((_, i) => (i % 7 === 0 ? 1 : 0.2) * rng.normal());

  for (const format of ['s7', 'u8', 's8'] as W8A8Format[]) {
    const saturates = w8a8Saturates(cpu, w8a8Codes(format));
    it(`${format}: onnxruntime's product is ${saturates ? 'not ' : ''}the exact integer product (${cpu.model}: ${cpu.features.join(' ')})`, async () => {
      const model = linear(w);
      const { q, scales } = writeDynamicQuantizeMatMul(model, findLinears(model)[0], format);
      expect(int8PerChannel(w, K, N, w8a8Codes(format).maxCode).q).toEqual(q);
      const s = await ort.InferenceSession.create(encodeModel(model), { intraOpNumThreads: 1 });
      const y = (await s.run({ X: new ort.Tensor('float32', x, [M, K]) })).Y.data as Float32Array;
      await s.release();
      const ref = exactW8A8(x, q, scales);
      let worst = 0;
      for (let i = 0; i < y.length; i++) worst = Math.max(worst, Math.abs(y[i] - ref[i]) / (Math.abs(ref[i]) + 1e-3));
      // Float rounding of the final scaling only (1e-4); a saturated pair sum is off by far more.
      if (saturates === false) expect(worst).toBeLessThan(1e-4);
      if (saturates === true) expect(worst).toBeGreaterThan(1e-2);
    });
  }
});

describe('SmoothQuant options', () => {
  it('stores weights as s7 by default and records the format; an unknown format is refused with the choices', async () => {
    const m = tinyLlama({ seed: 2 });
    const calibration = { samples: [[1, 300, 301, 302, 303, 304, 305, 306]], source: 'test' };
    const { model, report } = await createQuantizer('smoothquant').quantize(exportModel(openHfModel(m.dir)).model, { calibration });
    expect(report).toMatchObject({ w8a8Format: 's7', alpha: 0.5 });
    const codes = model.graph.initializers.filter((t) => t.name.endsWith('.int8'));
    expect(codes.length).toBeGreaterThan(0);
    for (const t of codes) expect(Math.max(...Array.from(t.data as Int8Array, Math.abs))).toBeLessThanOrEqual(63);
    expect(() => createQuantizer('smoothquant', { w8a8Format: 's9' as W8A8Format })).toThrow(/unknown W8A8 format "s9"/);
    expect(() => createQuantizer('rtn', { w8a8Format: 's8' })).toThrow(/SmoothQuant \(W8A8\) only/);
    m.cleanup();
  });

  it('naive W8A8 (smooth: false) is truly unsmoothed — norms untouched, weights the checkpoint’s — while α = 0 still rescales', async () => {
    const m = tinyLlama({ seed: 3 });
    const fresh = () => exportModel(openHfModel(m.dir)).model;
    const original = fresh();
    const norm = (model: Model) => Array.from(model.graph.initializers.find((t) => t.name === 'model.layers.0.input_layernorm.weight')!.data as Float32Array);
    const naive = await createQuantizer('smoothquant', { smooth: false }).quantize(fresh());
    expect(naive.report.smooth).toBe(false);
    expect(naive.report.calibration).toBeUndefined();
    expect(norm(naive.model)).toEqual(norm(original));
    const site = findLinears(original).find((s) => s.weight.name.includes('layers.0.mlp.down_proj'))!;
    const expected = int8PerChannel(site.weight.data as Float32Array, site.K, site.N, 63).q;
    expect(Array.from(naive.model.graph.initializers.find((t) => t.name === `${site.weight.name}.int8`)!.data as Int8Array)).toEqual(Array.from(expected));
    const calibration = { samples: [[1, 300, 301, 302, 303, 304, 305, 306]], source: 'test' };
    const alpha0 = await createQuantizer('smoothquant', { alpha: 0 }).quantize(fresh(), { calibration });
    expect(norm(alpha0.model)).not.toEqual(norm(original));
    m.cleanup();
  });
});

/** Mean negative log-likelihood of each next token of `ids` under the logits [T, V]. */
function meanNll(logits: Float32Array, ids: number[], V: number): number {
  let nll = 0;
  for (let t = 0; t < ids.length - 1; t++) {
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, logits[t * V + v]);
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(logits[t * V + v] - max);
    nll -= logits[t * V + ids[t + 1]] - max - Math.log(sum);
  }
  return nll / (ids.length - 1);
}

describe.skipIf(!stories260K || !tinyStoriesText)('SmoothQuant W8A8 on stories260K, on this CPU', () => {
  it('the default format stays within 1% of fp32 perplexity (8 windows × 256 tokens)', async () => {
    const tok = loadTokenizer(stories260K!);
    const text = readCalibrationFile(tinyStoriesText!);
    const ids = tok.encode(text.slice(0, 40000));
    const windows = Array.from({ length: 8 }, (_, i) => ids.slice(i * 256, (i + 1) * 256));
    const calibration = calibrationFromText(tok, text.slice(text.length / 2), { samples: 16, seqLen: 256, name: 'tinystories (second half)' });
    const fp32 = exportModel(openHfModel(stories260K!)).model;
    const { model } = await createQuantizer('smoothquant').quantize(exportModel(openHfModel(stories260K!)).model, { calibration });
    let base = 0,
      q = 0;
    for (const w of windows) {
      base += meanNll(await decoderLogits(fp32, w), w, 512);
      q += meanNll(await decoderLogits(model, w), w, 512);
    }
    const rise = Math.exp((q - base) / windows.length) - 1;
    expect(rise).toBeGreaterThan(0);
    expect(rise).toBeLessThan(0.01);
  });
});
