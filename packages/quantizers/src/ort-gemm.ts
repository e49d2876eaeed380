import * as ort from 'onnxruntime-node';
import { DataType, GraphBuilder, createModel, encodeModel, float, floatTensor, type Graph } from '@alki/onnx';
import type { CandidateLoss } from './awq.js';
import type { BlockwiseOptions } from './blockwise.js';

/**
 * C = A·Bᵀ on onnxruntime's multithreaded GEMM: the heavy products of the
 * calibrated quantizers (AWQ's output errors) run there instead of in JS
 * loops, ~50× faster on this class of CPU. One session serves all shapes.
 */
export class OrtGemm {
  private session?: Promise<ort.InferenceSession>;
  private errSession?: Promise<ort.InferenceSession>;
  private updSession?: Promise<ort.InferenceSession>;
  private bmmSession?: Promise<ort.InferenceSession>;
  private readonly awqSessions = new Map<string, Promise<ort.InferenceSession>>();

  private get(): Promise<ort.InferenceSession> {
    if (!this.session) {
      const b = new GraphBuilder('gemm_abt');
      const a = b.input('A', DataType.FLOAT, ['m', 'k']);
      const bt = b.input('B', DataType.FLOAT, ['n', 'k']);
      b.output(b.node('Gemm', [a, bt], { transB: 1 }, { outputs: ['C'] }), DataType.FLOAT, ['m', 'n']);
      this.session = ort.InferenceSession.create(encodeModel(createModel(b.build(), { opsets: { '': 17 } })));
    }
    return this.session;
  }

  /** A [m, k], B [n, k] → A·Bᵀ [m, n]. */
  async abt(a: Float32Array, m: number, k: number, b: Float32Array, n: number): Promise<Float32Array> {
    const s = await this.get();
    const out = await s.run({ A: new ort.Tensor('float32', a, [m, k]), B: new ort.Tensor('float32', b, [n, k]) });
    return out.C.data as Float32Array;
  }

  /** Batched X [nb, n, b] · Qt [nb, b, N] → [nb, n, N] (AWQ's per-block outputs). */
  async blockOutputs(x: Float32Array, qt: Float32Array, nb: number, n: number, b: number, N: number): Promise<Float32Array> {
    if (!this.bmmSession) {
      const g = new GraphBuilder('block_matmul');
      const X = g.input('X', DataType.FLOAT, ['nb', 'n', 'b']);
      const Q = g.input('Q', DataType.FLOAT, ['nb', 'b', 'N']);
      g.output(g.node('MatMul', [X, Q], {}, { outputs: ['Y'] }), DataType.FLOAT, ['nb', 'n', 'N']);
      this.bmmSession = ort.InferenceSession.create(encodeModel(createModel(g.build(), { opsets: { '': 17 } })));
    }
    const s = await this.bmmSession;
    const out = await s.run({ X: new ort.Tensor('float32', x, [nb, n, b]), Q: new ort.Tensor('float32', qt, [nb, b, N]) });
    return out.Y.data as Float32Array;
  }

  /** Σ_t (X·Qt − R)² per block and output, [nb, N], without the products leaving onnxruntime. */
  async blockErrors(x: Float32Array, qt: Float32Array, ref: Float32Array, nb: number, n: number, b: number, N: number): Promise<Float32Array> {
    if (!this.errSession) {
      const g = new GraphBuilder('block_err');
      const X = g.input('X', DataType.FLOAT, ['nb', 'n', 'b']);
      const Q = g.input('Q', DataType.FLOAT, ['nb', 'b', 'N']);
      const R = g.input('R', DataType.FLOAT, ['nb', 'n', 'N']);
      const d = g.node('Sub', [g.node('MatMul', [X, Q]), R]);
      g.output(g.node('ReduceSumSquare', [d], { axes: [1], keepdims: 0 }, { outputs: ['E'] }), DataType.FLOAT, ['nb', 'N']);
      this.errSession = ort.InferenceSession.create(encodeModel(createModel(g.build(), { opsets: { '': 17 } })));
    }
    const s = await this.errSession;
    const out = await s.run({ X: new ort.Tensor('float32', x, [nb, n, b]), Q: new ort.Tensor('float32', qt, [nb, b, N]), R: new ort.Tensor('float32', ref, [nb, n, N]) });
    return out.E.data as Float32Array;
  }

  /** C − A·B for A [m, k], B [k, n], C [m, n] (Gemm with α = −1, β = 1), written over C (no new buffer per call). */
  async update(a: Float32Array, m: number, k: number, b: Float32Array, n: number, c: Float32Array): Promise<Float32Array> {
    if (!this.updSession) {
      const g = new GraphBuilder('gemm_update');
      const A = g.input('A', DataType.FLOAT, ['m', 'k']);
      const B = g.input('B', DataType.FLOAT, ['k', 'n']);
      const C = g.input('C', DataType.FLOAT, ['m', 'n']);
      g.output(g.node('Gemm', [A, B, C], { alpha: float(-1), beta: float(1) }, { outputs: ['Y'] }), DataType.FLOAT, ['m', 'n']);
      this.updSession = ort.InferenceSession.create(encodeModel(createModel(g.build(), { opsets: { '': 17 } })));
    }
    const s = await this.updSession;
    const C = new ort.Tensor('float32', c, [m, n]);
    // Gemm copies C into Y before accumulating, so Y may alias C.
    await s.run({ A: new ort.Tensor('float32', a, [m, k]), B: new ort.Tensor('float32', b, [k, n]), C }, { Y: C });
    return c;
  }

  /**
   * AWQ's candidate loss as one graph (see {@link CandidateLoss}): W·s cut into [N, K/b, b] blocks, per-block
   * min/max, scale and zero point, round and clip, dequantize, ÷ s, the product with X and the mean squared error.
   * Round is half-to-even where JS rounds half up: only exact ties differ, which does not matter for ranking
   * candidates (the chosen scale is quantized by the JS path). K must be a multiple of the block size.
   */
  candidateLoss: CandidateLoss = async (w, N, K, x, n, ref, o) => {
    const key = `${o.bits}:${o.blockSize}:${o.symmetric}`;
    let session = this.awqSessions.get(key);
    if (!session) {
      session = ort.InferenceSession.create(encodeModel(createModel(awqCandidateGraph(o), { opsets: { '': 17 } })));
      this.awqSessions.set(key, session);
    }
    const s = await session;
    const fixed = {
      W: new ort.Tensor('float32', w, [N, K]),
      X: new ort.Tensor('float32', x, [n, K]),
      REF: new ort.Tensor('float32', ref, [n, N]),
      SHAPE: new ort.Tensor('int64', BigInt64Array.from([BigInt(N), BigInt(K / o.blockSize), BigInt(o.blockSize)]), [3]),
    };
    return async (scale) => {
      const out = await s.run({ ...fixed, S: new ort.Tensor('float32', scale, [K]) });
      return (out.LOSS.data as Float32Array)[0];
    };
  };

  async release(): Promise<void> {
    for (const s of this.awqSessions.values()) await (await s).release();
    this.awqSessions.clear();
    if (this.updSession) await (await this.updSession).release();
    this.updSession = undefined;
    if (this.session) await (await this.session).release();
    if (this.errSession) await (await this.errSession).release();
    if (this.bmmSession) await (await this.bmmSession).release();
    this.session = undefined;
    this.errSession = undefined;
    this.bmmSession = undefined;
  }
}

/** The graph behind {@link OrtGemm.candidateLoss}. */
function awqCandidateGraph(o: BlockwiseOptions): Graph {
  const g = new GraphBuilder('awq_candidate');
  const F = DataType.FLOAT;
  const W = g.input('W', F, ['N', 'K']);
  const S = g.input('S', F, ['K']);
  const X = g.input('X', F, ['n', 'K']);
  const REF = g.input('REF', F, ['n', 'N']);
  const SHAPE = g.input('SHAPE', DataType.INT64, [3]);
  const c = (name: string, v: number) => g.initializer(floatTensor(name, [], [v]));
  const levels = (1 << o.bits) - 1;
  const half = 1 << (o.bits - 1);
  const zero = c('zero', 0);
  const one = c('one', 1);
  const blocks = g.node('Reshape', [g.node('Mul', [W, S]), SHAPE]);
  const lo = g.node('ReduceMin', [blocks], { axes: [2], keepdims: 1 });
  const hi = g.node('ReduceMax', [blocks], { axes: [2], keepdims: 1 });
  let scale: string;
  let zp: string;
  if (o.symmetric) {
    const m = g.node('Where', [g.node('Greater', [g.node('Abs', [lo]), g.node('Abs', [hi])]), lo, hi]);
    scale = g.node('Div', [m, c('neg_half', -half)]);
    zp = c('half', half);
  } else {
    const mn = g.node('Min', [lo, zero]);
    scale = g.node('Div', [g.node('Sub', [g.node('Max', [hi, zero]), mn]), c('levels', levels)]);
    const safe = g.node('Where', [g.node('Equal', [scale, zero]), one, scale]);
    zp = g.node('Clip', [g.node('Round', [g.node('Div', [g.node('Neg', [mn]), safe])]), zero, c('levels_max', levels)]);
    scale = safe;
  }
  if (o.symmetric) scale = g.node('Where', [g.node('Equal', [scale, zero]), one, scale]);
  const q = g.node('Clip', [g.node('Add', [g.node('Round', [g.node('Div', [blocks, scale])]), zp]), zero, c('levels_clip', levels)]);
  const deq = g.node('Mul', [g.node('Sub', [q, zp]), scale]);
  const flat = g.node('Div', [g.node('Reshape', [deq, g.node('Shape', [W])]), S]);
  const y = g.node('Gemm', [X, flat], { transB: 1 });
  const d = g.node('Sub', [y, REF]);
  g.output(g.node('ReduceMean', [g.node('Mul', [d, d])], { keepdims: 0 }, { outputs: ['LOSS'] }), F, []);
  return g.build();
}
