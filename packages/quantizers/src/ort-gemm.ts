import * as ort from 'onnxruntime-node';
import { DataType, GraphBuilder, createModel, encodeModel, float, floatTensor, type Graph } from '@alki/onnx';
import type { CandidateLoss } from './awq.js';
import type { BlockwiseOptions } from './blockwise.js';
import { noteOrtOutput } from './ort-memory.js';

/** A small graph written by `build`. */
function graph(name: string, build: (g: GraphBuilder) => void): Graph {
  const g = new GraphBuilder(name);
  build(g);
  return g.build();
}

/**
 * The heavy products of the calibrated quantizers on onnxruntime's
 * multithreaded kernels instead of JS loops (~50× faster on this class of
 * CPU): A·Bᵀ, GPTQ's in-place updates, AWQ's block products and candidate
 * losses. Each graph gets one session, created on first use; all shapes are
 * symbolic.
 */
export class OrtGemm {
  private readonly sessions = new Map<string, Promise<ort.InferenceSession>>();

  private session(key: string, build: () => Graph): Promise<ort.InferenceSession> {
    let s = this.sessions.get(key);
    if (!s) {
      s = ort.InferenceSession.create(encodeModel(createModel(build(), { opsets: { '': 17 } })));
      this.sessions.set(key, s);
    }
    return s;
  }

  /** A [m, k], B [n, k] → A·Bᵀ [m, n], into `out` when given. */
  abt = async (a: Float32Array, m: number, k: number, b: Float32Array, n: number, out?: Float32Array): Promise<Float32Array> => {
    const s = await this.session('abt', () =>
      graph('gemm_abt', (g) => {
        const A = g.input('A', DataType.FLOAT, ['m', 'k']);
        const B = g.input('B', DataType.FLOAT, ['n', 'k']);
        g.output(g.node('Gemm', [A, B], { transB: 1 }, { outputs: ['C'] }), DataType.FLOAT, ['m', 'n']);
      }),
    );
    const feeds = { A: new ort.Tensor('float32', a, [m, k]), B: new ort.Tensor('float32', b, [n, k]) };
    noteOrtOutput(m * n * 4);
    if (out) {
      await s.run(feeds, { C: new ort.Tensor('float32', out, [m, n]) });
      return out;
    }
    return (await s.run(feeds)).C.data as Float32Array;
  };

  /** Batched X [nb, n, b] · Qt [nb, b, N] → [nb, n, N] (AWQ's per-block outputs). */
  blockOutputs = async (x: Float32Array, qt: Float32Array, nb: number, n: number, b: number, N: number): Promise<Float32Array> => {
    const s = await this.session('blockOutputs', () =>
      graph('block_matmul', (g) => {
        const X = g.input('X', DataType.FLOAT, ['nb', 'n', 'b']);
        const Q = g.input('Q', DataType.FLOAT, ['nb', 'b', 'N']);
        g.output(g.node('MatMul', [X, Q], {}, { outputs: ['Y'] }), DataType.FLOAT, ['nb', 'n', 'N']);
      }),
    );
    const out = await s.run({ X: new ort.Tensor('float32', x, [nb, n, b]), Q: new ort.Tensor('float32', qt, [nb, b, N]) });
    noteOrtOutput(nb * n * N * 4);
    return out.Y.data as Float32Array;
  };

  /** Σ_t (X·Qt − R)² per block and output, [nb, N], without the products leaving onnxruntime. */
  blockErrors = async (x: Float32Array, qt: Float32Array, ref: Float32Array, nb: number, n: number, b: number, N: number): Promise<Float32Array> => {
    const s = await this.session('blockErrors', () =>
      graph('block_err', (g) => {
        const X = g.input('X', DataType.FLOAT, ['nb', 'n', 'b']);
        const Q = g.input('Q', DataType.FLOAT, ['nb', 'b', 'N']);
        const R = g.input('R', DataType.FLOAT, ['nb', 'n', 'N']);
        const d = g.node('Sub', [g.node('MatMul', [X, Q]), R]);
        g.output(g.node('ReduceSumSquare', [d], { axes: [1], keepdims: 0 }, { outputs: ['E'] }), DataType.FLOAT, ['nb', 'N']);
      }),
    );
    const out = await s.run({ X: new ort.Tensor('float32', x, [nb, n, b]), Q: new ort.Tensor('float32', qt, [nb, b, N]), R: new ort.Tensor('float32', ref, [nb, n, N]) });
    return out.E.data as Float32Array;
  };

  /** C −= A·B in place for A [m, k], B [k, n], C [m, n] (Gemm with α = −1, β = 1, its output bound to C). */
  update = async (a: Float32Array, m: number, k: number, b: Float32Array, n: number, c: Float32Array): Promise<void> => {
    const s = await this.session('update', () =>
      graph('gemm_update', (g) => {
        const A = g.input('A', DataType.FLOAT, ['m', 'k']);
        const B = g.input('B', DataType.FLOAT, ['k', 'n']);
        const C = g.input('C', DataType.FLOAT, ['m', 'n']);
        g.output(g.node('Gemm', [A, B, C], { alpha: float(-1), beta: float(1) }, { outputs: ['Y'] }), DataType.FLOAT, ['m', 'n']);
      }),
    );
    const C = new ort.Tensor('float32', c, [m, n]);
    // Gemm copies C into Y before accumulating, so Y may alias C.
    await s.run({ A: new ort.Tensor('float32', a, [m, k]), B: new ort.Tensor('float32', b, [k, n]), C }, { Y: C });
    noteOrtOutput(m * n * 4);
  };

  /**
   * AWQ's candidate loss as one graph (see {@link CandidateLoss}): W·s cut into [N, K/b, b] blocks, per-block
   * min/max, scale and zero point, round and clip, dequantize, ÷ s, the product with X and the mean squared error.
   * Round is half-to-even where JS rounds half up: only exact ties differ, which does not matter for ranking
   * candidates (the chosen scale is quantized by the JS path). K must be a multiple of the block size.
   */
  candidateLoss: CandidateLoss = async (w, N, K, x, n, ref, o) => {
    const s = await this.session(`awq:${o.bits}:${o.blockSize}:${o.symmetric}`, () => awqCandidateGraph(o));
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
    for (const s of this.sessions.values()) await (await s).release();
    this.sessions.clear();
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
  const zero = c('zero', 0);
  const one = c('one', 1);
  const levels = c('levels', (1 << o.bits) - 1);
  const half = 1 << (o.bits - 1);
  const blocks = g.node('Reshape', [g.node('Mul', [W, S]), SHAPE]);
  const lo = g.node('ReduceMin', [blocks], { axes: [2], keepdims: 1 });
  const hi = g.node('ReduceMax', [blocks], { axes: [2], keepdims: 1 });
  // blockParams: symmetric maps the value of largest magnitude onto −2^(b−1); asymmetric spans [min(lo,0), max(hi,0)].
  let raw: string;
  let mn = '';
  if (o.symmetric) raw = g.node('Div', [g.node('Where', [g.node('Greater', [g.node('Abs', [lo]), g.node('Abs', [hi])]), lo, hi]), c('neg_half', -half)]);
  else {
    mn = g.node('Min', [lo, zero]);
    raw = g.node('Div', [g.node('Sub', [g.node('Max', [hi, zero]), mn]), levels]);
  }
  const scale = g.node('Where', [g.node('Equal', [raw, zero]), one, raw]);
  const zp = o.symmetric ? c('half', half) : g.node('Clip', [g.node('Round', [g.node('Div', [g.node('Neg', [mn]), scale])]), zero, levels]);
  const q = g.node('Clip', [g.node('Add', [g.node('Round', [g.node('Div', [blocks, scale])]), zp]), zero, levels]);
  const deq = g.node('Mul', [g.node('Sub', [q, zp]), scale]);
  const flat = g.node('Div', [g.node('Reshape', [deq, g.node('Shape', [W])]), S]);
  const y = g.node('Gemm', [X, flat], { transB: 1 });
  const d = g.node('Sub', [y, REF]);
  g.output(g.node('ReduceMean', [g.node('Mul', [d, d])], { keepdims: 0 }, { outputs: ['LOSS'] }), F, []);
  return g.build();
}
