import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { SeededRandom } from '@alki/core';
import { DataType, GraphBuilder, TensorSpill, createModel, encodeModel, float16ToFloat32, float32ToFloat16, floatTensor, isLazy, lazyTensor } from '@alki/onnx';
import {
  RtnPool,
  dequantizeBlockwise,
  halfPrecision,
  halfScales,
  matMulNBitsTensors,
  quantize,
  quantizeParallel,
  relativeErrorOf,
  rtn,
  rtnPacked,
  writtenBlockSize,
} from '../src/index.js';

function randomMatrix(rows: number, cols: number, seed: number): Float32Array {
  const rng = new SeededRandom(seed);
  return new Float32Array(rows * cols).map(() => rng.normal() * (1 + 3 * rng.next()));
}

/** Plain JS reference: y = x · dequant(Ŵ)ᵀ for x [M, K] and Ŵ [N, K]. */
function referenceMatMul(x: Float32Array, M: number, K: number, wRows: Float32Array, N: number): Float64Array {
  const y = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += x[m * K + k] * wRows[n * K + k];
      y[m * N + n] = s;
    }
  return y;
}

/** One-MatMul model x[M,K] @ W[K,N]. */
function matmulModel(wKN: Float32Array, K: number, N: number) {
  const b = new GraphBuilder();
  const x = b.input('x', DataType.FLOAT, ['m', K]);
  b.initializer(floatTensor('w', [K, N], wKN));
  b.output(b.node('MatMul', [x, 'w'], {}, { outputs: ['y'] }), DataType.FLOAT, ['m', N]);
  return createModel(b.build(), { opsets: { '': 17 } });
}

describe('RTN blockwise core', () => {
  // 150 outputs cross the tiles of the MatMul-layout walk (64, 64, 22).
  it.each([9, 150])('gives the same codes from the MatMul layout [K, N] (%i outputs), and relativeErrorOf matches the dequantized weight', (N) => {
    const K = 70;
    const w = randomMatrix(N, K, 12);
    const kn = new Float32Array(K * N);
    for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) kn[k * N + n] = w[n * K + k];
    for (const symmetric of [false, true]) {
      const a = rtn(w, N, K, { bits: 4, blockSize: 32, symmetric });
      const b = rtn(kn, N, K, { bits: 4, blockSize: 32, symmetric }, 'KN');
      expect(b.q).toEqual(a.q);
      expect(b.scales).toEqual(a.scales);
      expect(b.zeroPoints).toEqual(a.zeroPoints);
      const back = dequantizeBlockwise(a);
      const expected = Math.sqrt(w.reduce((s, v, i) => s + (v - back[i]) ** 2, 0) / w.reduce((s, v) => s + v * v, 0));
      expect(relativeErrorOf(a, w)).toBeCloseTo(expected, 6);
      expect(relativeErrorOf(b, kn, 'KN')).toBeCloseTo(expected, 6);
      expect(expected).toBeGreaterThan(0);
    }
  });

  it('reconstructs every value within half a step, symmetric and asymmetric', () => {
    const K = 70;
    const N = 3;
    const w = randomMatrix(N, K, 1);
    for (const symmetric of [false, true]) {
      for (const bits of [4, 8] as const) {
        const q = rtn(w, N, K, { bits, blockSize: 32, symmetric });
        expect(q.nBlocks).toBe(3);
        const back = dequantizeBlockwise(q);
        for (let n = 0; n < N; n++)
          for (let k = 0; k < K; k++) {
            const s = Math.abs(q.scales[n * 3 + Math.floor(k / 32)]);
            expect(Math.abs(back[n * K + k] - w[n * K + k])).toBeLessThanOrEqual(s / 2 + 1e-6);
          }
      }
    }
  });

  it('keeps zero exact with zero points and represents the block extreme exactly when symmetric', () => {
    const w = new Float32Array([0.5, 1.5, 3.0, 0.25, -1, 0, 2, 7]);
    const asym = dequantizeBlockwise(rtn(w, 1, 8, { bits: 4, blockSize: 16, symmetric: false }));
    expect(asym[5]).toBe(0);
    const sym = dequantizeBlockwise(rtn(w, 1, 8, { bits: 4, blockSize: 16, symmetric: true }));
    expect(sym[7]).toBeCloseTo(7, 6);
  });
});

describe('quantize() writes MatMulNBits that onnxruntime runs like the JS reference', () => {
  const M = 3;
  for (const [K, N, blockSize, bits, symmetric] of [
    [64, 16, 32, 4, false],
    [172, 64, 32, 4, false], // stories260K down_proj: K not a multiple of the block
    [172, 24, 16, 4, true],
    [100, 8, 128, 4, false],
    [96, 12, 64, 8, false],
    [70, 12, 32, 8, true],
  ] as const) {
    it(`K=${K} N=${N} block ${blockSize} int${bits} ${symmetric ? 'symmetric' : 'zero points'}`, async () => {
      const wRows = randomMatrix(N, K, K + N);
      const wKN = new Float32Array(K * N);
      for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) wKN[k * N + n] = wRows[n * K + k];
      const x = randomMatrix(M, K, 99);
      // accuracy_level 0: float activations, so onnxruntime must match the reference exactly.
      const { model, report } = quantize(matmulModel(wKN, K, N), { method: 'rtn', bits, blockSize, symmetric, accuracyLevel: 0 });
      // Scales stored as float16 and cast back in the graph (onnxruntime folds the Cast at load).
      expect(model.graph.nodes.map((n) => n.opType)).toEqual(['Cast', 'MatMulNBits']);
      expect(model.graph.initializers.find((t) => t.name.endsWith('.scales'))?.dataType).toBe(DataType.FLOAT16);
      expect(model.graph.initializers.some((t) => t.name === 'w')).toBe(false);
      // zero_points 1-D, each row padded to a byte, as the op spec says (onnxruntime-web's WebGPU kernel refuses 2-D).
      const zp = model.graph.initializers.find((t) => t.name.endsWith('zero_points'));
      // Quantized in the block that stores the rows in the fewest bytes (K=96 at 64 and K=70 at 32: smaller blocks).
      const written = writtenBlockSize(K, blockSize, bits, symmetric);
      expect(model.graph.nodes[1].attributes.block_size.value).toBe(written);
      if (symmetric) expect(zp).toBeUndefined();
      else expect(zp?.dims).toEqual([N * Math.ceil((Math.ceil(K / written) * bits) / 8)]);
      expect(report.layers[0].relativeError).toBeLessThan(bits === 4 ? 0.12 : 0.01);
      // The default ranges: searched by least squared error below 8 bits in blocks ≤ 64, min/max otherwise.
      const ref = referenceMatMul(
        x,
        M,
        K,
        dequantizeBlockwise(rtn(wRows, N, K, { bits, blockSize: written, symmetric, mseClip: bits < 8 && blockSize <= 64 })),
        N,
      );
      const s = await ort.InferenceSession.create(encodeModel(model));
      const y = (await s.run({ x: new ort.Tensor('float32', x, [M, K]) })).y.data as Float32Array;
      for (let i = 0; i < M * N; i++) expect(Math.abs(y[i] - ref[i])).toBeLessThan(1e-3 * (1 + Math.abs(ref[i])));
    });
  }

  it('quantizes rows that blocks of the size asked would pad in the power-of-two block storing them in the fewest bytes', async () => {
    // Blocks that split K evenly stay; a row narrower than a block loses the padding; a ragged row takes smaller blocks
    // where their scales cost less than the padding (stories260K's 172, Qwen2.5-0.5B's 896).
    expect([512, 2048, 5632].map((K) => writtenBlockSize(K, 256))).toEqual([256, 256, 256]);
    expect(writtenBlockSize(64, 128)).toBe(64);
    expect(writtenBlockSize(48, 256)).toBe(16);
    expect(writtenBlockSize(172, 256)).toBe(64);
    expect(writtenBlockSize(172, 128)).toBe(64);
    expect(writtenBlockSize(896, 256)).toBe(128);
    expect(writtenBlockSize(896, 256, 8)).toBe(128);
    expect(writtenBlockSize(100, 32)).toBe(32); // a tie (74 bytes a row at 16 and 32): the larger
    expect(writtenBlockSize(100, 32, 4, true)).toBe(16); // no zero points: 16 is 2 bytes a row smaller
    const [K, N] = [48, 10];
    const wRows = randomMatrix(N, K, 5);
    const wKN = new Float32Array(K * N);
    for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) wKN[k * N + n] = wRows[n * K + k];
    const x = randomMatrix(M, K, 6);
    for (const symmetric of [false, true]) {
      const { model } = quantize(matmulModel(wKN, K, N), { method: 'rtn', bits: 4, blockSize: 256, symmetric, accuracyLevel: 0 });
      const node = model.graph.nodes.find((n) => n.opType === 'MatMulNBits')!;
      expect(node.attributes.block_size.value).toBe(16);
      expect(model.graph.initializers.find((t) => t.name.endsWith('.qweight'))?.dims).toEqual([N, 3, 8]);
      const ref = referenceMatMul(x, M, K, dequantizeBlockwise(rtn(wRows, N, K, { bits: 4, blockSize: 16, symmetric })), N);
      const s = await ort.InferenceSession.create(encodeModel(model));
      const y = (await s.run({ x: new ort.Tensor('float32', x, [M, K]) })).y.data as Float32Array;
      for (let i = 0; i < M * N; i++) expect(Math.abs(y[i] - ref[i])).toBeLessThan(1e-3 * (1 + Math.abs(ref[i])));
    }
  });

  it('defaults to accuracy level 4 (int8 activations), close to the float-activation result', async () => {
    const K = 128,
      N = 16,
      M = 4;
    const wRows = randomMatrix(N, K, 77);
    const wKN = new Float32Array(K * N);
    for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) wKN[k * N + n] = wRows[n * K + k];
    const x = randomMatrix(M, K, 78);
    const { model, report } = quantize(matmulModel(wKN, K, N), { method: 'rtn', bits: 8 });
    expect(report.accuracyLevel).toBe(4);
    expect(model.graph.nodes.find((n) => n.opType === 'MatMulNBits')!.attributes.accuracy_level).toEqual({ type: 'int', value: 4 });
    const ref = referenceMatMul(x, M, K, dequantizeBlockwise(rtn(wRows, N, K, { bits: 8, blockSize: 32, symmetric: false })), N);
    const s = await ort.InferenceSession.create(encodeModel(model));
    const y = (await s.run({ x: new ort.Tensor('float32', x, [M, K]) })).y.data as Float32Array;
    let num = 0,
      den = 0;
    for (let i = 0; i < M * N; i++) {
      num += (y[i] - ref[i]) ** 2;
      den += ref[i] ** 2;
    }
    // int8 activations: ~1e-2 relative error is the documented cost.
    expect(Math.sqrt(num / den)).toBeLessThan(0.03);
    expect(quantize(matmulModel(wKN, K, N), { method: 'rtn', bits: 4 }).report.accuracyLevel).toBe(4);
    expect(quantize(matmulModel(wKN, K, N), { method: 'rtn', bits: 4, accuracyLevel: 0 }).report.accuracyLevel).toBe(0);
  });

  it('leaves excluded layers in float and refuses bad options', () => {
    const w = randomMatrix(32, 8, 5);
    const { model, report } = quantize(matmulModel(w, 32, 8), { method: 'rtn', exclude: ['w'] });
    expect(model.graph.nodes[0].opType).toBe('MatMul');
    expect(report.excluded).toEqual(['w']);
    expect(() => quantize(matmulModel(w, 32, 8), { method: 'rtn', bits: 3 as 4 })).toThrow(/--bits 3/);
    expect(() => quantize(matmulModel(w, 32, 8), { method: 'rtn', blockSize: 48 })).toThrow(/--block-size 48/);
    expect(() => quantize(matmulModel(w, 32, 8), { method: 'gptq-x' as 'rtn' })).toThrow(/unknown quantization method/);
    expect(() => quantize(matmulModel(w, 32, 8), { method: 'rtn', actOrder: true })).toThrow(/act-order applies to GPTQ only/);
  });

  it('stops on NaN weights, naming the layer', () => {
    const w = randomMatrix(32, 8, 5);
    w[17] = NaN;
    expect(() => quantize(matmulModel(w, 32, 8), { method: 'rtn' })).toThrow(/weight "w" contains NaN/);
  });
});

describe('RTN fast path (rtnPacked)', () => {
  it('is bit-identical to rtn + matMulNBitsTensors, with the same relative error, for every width, block and partial block, with and without the MSE range search', () => {
    for (const [N, K] of [
      [9, 70],
      [16, 64],
      [5, 200],
    ] as const) {
      const rows = randomMatrix(N, K, N + K);
      const kn = new Float32Array(K * N);
      for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) kn[k * N + n] = rows[n * K + k];
      for (const bits of [2, 4, 8] as const) {
        for (const blockSize of [16, 32, 64]) {
          for (const [symmetric, mseClip] of [
            [false, false],
            [true, false],
            [false, true],
            [true, true],
          ]) {
            const o = { bits, blockSize, symmetric, mseClip };
            const ref = rtn(kn, N, K, o, 'KN');
            const t = matMulNBitsTensors(ref, 'w');
            const p = rtnPacked(rows, N, K, o);
            expect(Array.from(p.B)).toEqual(Array.from(t.B.data as Uint8Array));
            expect(Array.from(p.scales)).toEqual(Array.from(t.scales.data as Float32Array));
            expect(p.zeroPoints ? Array.from(p.zeroPoints) : undefined).toEqual(t.zeroPoints ? Array.from(t.zeroPoints.data as Uint8Array) : undefined);
            expect(p.relativeError).toBeCloseTo(relativeErrorOf(ref, kn, 'KN'), 12);
            // The searched ranges never round worse than min/max (α = 1 is among the candidates).
            if (mseClip) expect(p.relativeError).toBeLessThanOrEqual(rtnPacked(rows, N, K, { ...o, mseClip: false }).relativeError + 1e-12);
          }
        }
      }
    }
  });

  it('reports NaN and ±Inf weights by name and element through quantize()', () => {
    const K = 64,
      N = 8;
    for (const bad of [NaN, Infinity, -Infinity]) {
      const w = randomMatrix(K, N, 3);
      w[77] = bad;
      expect(() => quantize(matmulModel(w, K, N), { method: 'rtn', bits: 4 })).toThrow(/weight "w" contains (NaN|Inf) \(element 77\)/);
    }
  });

  it('gives the same model from lazy weights spilled to a file as from weights in memory', () => {
    const K = 96,
      N = 40;
    const w = randomMatrix(K, N, 8);
    const dir = mkdtempSync(join(tmpdir(), 'alki-rtn-'));
    const spill = new TensorSpill(join(dir, 'q.spill'));
    try {
      const lazy = matmulModel(w, K, N);
      lazy.graph.initializers[0] = lazyTensor('w', DataType.FLOAT, [K, N], () => Float32Array.from(w));
      const a = quantize(lazy, { method: 'rtn', bits: 4, blockSize: 32, spill });
      const b = quantize(matmulModel(w, K, N), { method: 'rtn', bits: 4, blockSize: 32 });
      expect(a.model.graph.initializers.every(isLazy)).toBe(true);
      expect(Buffer.from(encodeModel(a.model)).equals(Buffer.from(encodeModel(b.model)))).toBe(true);
      expect(a.report).toEqual(b.report);
    } finally {
      spill.remove();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rounds on worker threads into the same bytes as one thread, for a weight large enough to split and an uneven split', async () => {
    // 1040 × 1056 values (over the pool's 1M threshold), split 3 ways whatever the cores: 347 + 346 + 347 rows; 33
    // blocks of 32 per row, so each row's 4-bit zero points end in a half-filled byte.
    const K = 1056,
      N = 1040;
    const w = randomMatrix(K, N, 21);
    const pool = new RtnPool(3);
    try {
      expect(pool.threads).toBe(3); // the worker script is found (built dist/), or this test would not split at all
    } finally {
      await pool.close();
    }
    for (const o of [
      { method: 'rtn' as const, bits: 4 as const, blockSize: 32 },
      { method: 'rtn' as const, bits: 8 as const, blockSize: 128, symmetric: true },
    ]) {
      const serial = quantize(matmulModel(w, K, N), o);
      const parallel = await quantizeParallel(matmulModel(w, K, N), o, 3);
      expect(Buffer.from(encodeModel(parallel.model)).equals(Buffer.from(encodeModel(serial.model)))).toBe(true);
      expect(parallel.report.layers[0].relativeError).toBeCloseTo(serial.report.layers[0].relativeError, 12);
      expect(parallel.report.layers[0].relativeError).toBeGreaterThan(0);
    }
  });
});

describe('float16 scales', () => {
  it('rounds every scale to a float16 value: 11 significant bits in the normal range, the subnormal grid below, none above 65504', () => {
    const rng = new SeededRandom(5);
    const xs = Array.from({ length: 4000 }, () => (rng.next() - 0.5) * 10 ** (rng.next() * 16 - 10));
    // Float16's edges: its largest value and the tie above it, the smallest normal and its neighbours, subnormals.
    xs.push(65504, -65504, 65519, 65520, 65536, 2 ** -14, 2 ** -14 * (1 - 2 ** -12), 2 ** -14 * (1 + 2 ** -11), 1e-6, -3e-7, 1e-9, 0);
    const isHalf = (v: number) => float16ToFloat32(float32ToFloat16(new Float32Array([v])))[0] === v;
    let moved = 0;
    for (const x of xs) {
      const h = halfPrecision(x);
      if (Math.abs(x) >= 65520) {
        expect(h).toBe(x); // rounds past float16's largest value: left alone, and halfScales keeps that tensor in float32
        continue;
      }
      expect(isHalf(h), `${x} → ${h}`).toBe(true);
      const tolerance = Math.abs(x) >= 2 ** -14 ? 2 ** -11 * Math.abs(x) : 2 ** -25;
      expect(Math.abs(h - x)).toBeLessThanOrEqual(tolerance);
      if (h !== x) moved++;
    }
    expect(halfPrecision(65519)).toBe(65504);
    expect(halfPrecision(1e-9)).toBe(0);
    expect(moved).toBeGreaterThan(3000); // doubles are rarely float16 values already
  });

  it('stores scales as float16 behind a Cast, and keeps float32 for a tensor with a scale float16 cannot hold exactly', () => {
    const values = [0.5, 0, -1.25e-3, 1e-6].map(halfPrecision);
    const fits = halfScales(floatTensor('a.scales', [4], values));
    expect(fits.tensor.dataType).toBe(DataType.FLOAT16);
    expect(Array.from(float16ToFloat32(fits.tensor.data as Uint16Array))).toEqual(values.map(Math.fround));
    expect(fits.cast).toMatchObject({ opType: 'Cast', inputs: ['a.scales'], outputs: [fits.value] });
    for (const odd of [1.25e-3, 1e5, NaN]) {
      const kept = halfScales(floatTensor('b.scales', [2], [0.5, odd]));
      expect(kept.tensor.dataType).toBe(DataType.FLOAT);
      expect(kept.cast).toBeUndefined();
      expect(kept.value).toBe('b.scales');
    }
  });

  it('quantize() keeps float32 scales for weights whose scales overflow float16, and onnxruntime still matches the reference', async () => {
    const [K, N, M] = [64, 8, 3];
    const wRows = randomMatrix(N, K, 31).map((v) => v * 1e6);
    const wKN = new Float32Array(K * N);
    for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) wKN[k * N + n] = wRows[n * K + k];
    const { model } = quantize(matmulModel(wKN, K, N), { method: 'rtn', bits: 4, blockSize: 32, symmetric: false, accuracyLevel: 0 });
    expect(model.graph.nodes.map((n) => n.opType)).toEqual(['MatMulNBits']);
    expect(model.graph.initializers.find((t) => t.name.endsWith('.scales'))?.dataType).toBe(DataType.FLOAT);
    const x = randomMatrix(M, K, 32);
    const ref = referenceMatMul(x, M, K, dequantizeBlockwise(rtn(wRows, N, K, { bits: 4, blockSize: 32, symmetric: false, mseClip: true })), N);
    const s = await ort.InferenceSession.create(encodeModel(model));
    const y = (await s.run({ x: new ort.Tensor('float32', x, [M, K]) })).y.data as Float32Array;
    for (let i = 0; i < M * N; i++) expect(Math.abs(y[i] - ref[i])).toBeLessThan(1e-3 * (1 + Math.abs(ref[i])));
  });
});
