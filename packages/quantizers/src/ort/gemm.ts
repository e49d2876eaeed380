import { ort } from '@alki/runtime';
import { DataType, GraphBuilder, createModel, encodeModel, float, floatTensor, int64Tensor, type Graph } from '@alki/onnx';
import type { CandidateLoss } from '../awq.js';
import type { BlockwiseOptions } from '../blockwise.js';
import { noteOrtOutput } from './memory.js';
import { CALIBRATION_SESSION_OPTIONS } from './no-spin.js';

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
      s = ort.InferenceSession.create(encodeModel(createModel(build(), { opsets: { '': 17 } })), CALIBRATION_SESSION_OPTIONS);
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

  /** C = op(A)·B, op(A) = Aᵀ when `transA` (A [k, m]) else A [m, k]; B [k, n]; into `out` when given. */
  ab = async (a: Float32Array, m: number, k: number, b: Float32Array, n: number, transA = false, out?: Float32Array): Promise<Float32Array> => {
    const key = transA ? 'atb' : 'ab';
    const s = await this.session(key, () =>
      graph(`gemm_${key}`, (g) => {
        const A = g.input('A', DataType.FLOAT, transA ? ['k', 'm'] : ['m', 'k']);
        const B = g.input('B', DataType.FLOAT, ['k', 'n']);
        g.output(g.node('Gemm', [A, B], { transA: transA ? 1 : 0 }, { outputs: ['C'] }), DataType.FLOAT, ['m', 'n']);
      }),
    );
    const feeds = { A: new ort.Tensor('float32', a, transA ? [k, m] : [m, k]), B: new ort.Tensor('float32', b, [k, n]) };
    noteOrtOutput(m * n * 4);
    if (out) {
      await s.run(feeds, { C: new ort.Tensor('float32', out, [m, n]) });
      return out;
    }
    return (await s.run(feeds)).C.data as Float32Array;
  };

  /** AWQ clipping's per-block Gram matrices: X [n, K] → [K/b, b, b] (see {@link ClipProducts}). */
  blockGram = async (x: Float32Array, n: number, K: number, b: number): Promise<Float32Array> => {
    const s = await this.session('blockGram', () =>
      graph('block_gram', (g) => {
        const X = g.input('X', DataType.FLOAT, ['n', 'K']);
        const SHAPE = g.input('SHAPE', DataType.INT64, [3]);
        const blocks = g.node('Reshape', [X, SHAPE]); // [n, nb, b]
        const xb = g.node('Transpose', [blocks], { perm: [1, 0, 2] }); // [nb, n, b]
        const xt = g.node('Transpose', [blocks], { perm: [1, 2, 0] }); // [nb, b, n]
        g.output(g.node('MatMul', [xt, xb], {}, { outputs: ['G'] }), DataType.FLOAT, ['nb', 'b', 'b']);
      }),
    );
    const out = await s.run({
      X: new ort.Tensor('float32', x, [n, K]),
      SHAPE: new ort.Tensor('int64', BigInt64Array.from([BigInt(n), BigInt(K / b), BigInt(b)]), [3]),
    });
    return out.G.data as Float32Array;
  };

  /** AWQ clipping's output errors dᵀ·G·d per block and output: D [nb, N, b], G [nb, b, b] → [nb, N]. */
  quadratic = async (d: Float32Array, gram: Float32Array, nb: number, N: number, b: number): Promise<Float32Array> => {
    const s = await this.session('quadratic', () =>
      graph('quadratic', (g) => {
        const D = g.input('D', DataType.FLOAT, ['nb', 'N', 'b']);
        const G = g.input('G', DataType.FLOAT, ['nb', 'b', 'b']);
        const dg = g.node('MatMul', [D, G]);
        const axes = g.initializer(int64Tensor('axes', [1], [2]));
        g.output(g.node('ReduceSum', [g.node('Mul', [dg, D]), axes], { keepdims: 0 }, { outputs: ['E'] }), DataType.FLOAT, ['nb', 'N']);
      }),
    );
    const out = await s.run({ D: new ort.Tensor('float32', d, [nb, N, b]), G: new ort.Tensor('float32', gram, [nb, b, b]) });
    return out.E.data as Float32Array;
  };

  /** C −= Aᵀ·B in place for A [k, m], B [k, n], C [m, n] (Gemm with transA, α = −1, β = 1, its output bound to C). */
  update = async (a: Float32Array, m: number, k: number, b: Float32Array, n: number, c: Float32Array): Promise<void> => {
    const s = await this.session('update', () =>
      graph('gemm_update', (g) => {
        const A = g.input('A', DataType.FLOAT, ['k', 'm']);
        const B = g.input('B', DataType.FLOAT, ['k', 'n']);
        const C = g.input('C', DataType.FLOAT, ['m', 'n']);
        g.output(g.node('Gemm', [A, B, C], { transA: 1, alpha: float(-1), beta: float(1) }, { outputs: ['Y'] }), DataType.FLOAT, ['m', 'n']);
      }),
    );
    const C = new ort.Tensor('float32', c, [m, n]);
    // Gemm copies C into Y before accumulating, so Y may alias C.
    await s.run({ A: new ort.Tensor('float32', a, [k, m]), B: new ort.Tensor('float32', b, [k, n]), C }, { Y: C });
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
  const levels = o.symmetric ? '' : c('levels', (1 << o.bits) - 1);
  const half = 1 << (o.bits - 1);
  const negHalf = o.symmetric ? c('neg_half', -half) : '';
  const blocks = g.node('Reshape', [g.node('Mul', [W, S]), SHAPE]);
  const lo = g.node('ReduceMin', [blocks], { axes: [2], keepdims: 1 });
  const hi = g.node('ReduceMax', [blocks], { axes: [2], keepdims: 1 });
  // blockParams: symmetric maps the value of largest magnitude onto −2^(b−1); asymmetric spans [min(lo,0), max(hi,0)].
  let raw: string;
  let mn = '';
  if (o.symmetric) raw = g.node('Div', [g.node('Where', [g.node('Greater', [g.node('Abs', [lo]), g.node('Abs', [hi])]), lo, hi]), negHalf]);
  else {
    mn = g.node('Min', [lo, zero]);
    raw = g.node('Div', [g.node('Sub', [g.node('Max', [hi, zero]), mn]), levels]);
  }
  // halfPrecision: scales below 65520 are rounded to float16 values (subnormals included), as blockParams does.
  const fits = g.node('Less', [g.node('Abs', [raw]), c('half_limit', 65520)]);
  raw = g.node('Where', [fits, g.node('Cast', [g.node('Cast', [raw], { to: DataType.FLOAT16 })], { to: F }), raw]);
  const scale = g.node('Where', [g.node('Equal', [raw, zero]), one, raw]);
  const zp = o.symmetric ? '' : g.node('Clip', [g.node('Round', [g.node('Div', [g.node('Neg', [mn]), scale])]), zero, levels]);
  // (clip(round(w/scale) + zp, 0, L) − zp)·scale, as clip(round(w·(1/scale)), −zp, L − zp)·scale: fewer passes over W.
  const r = g.node('Round', [g.node('Mul', [blocks, g.node('Reciprocal', [scale])])]);
  const centered = o.symmetric
    ? g.node('Clip', [r, negHalf, c('top', (1 << o.bits) - 1 - half)])
    : g.node('Min', [g.node('Max', [r, g.node('Neg', [zp])]), g.node('Sub', [levels, zp])]);
  const deq = g.node('Reshape', [g.node('Mul', [centered, scale]), g.node('Shape', [W])]);
  // Q(W·s)/s against X equals Q(W·s) against X/s, and X is the smaller operand.
  const y = g.node('Gemm', [g.node('Div', [X, S]), deq], { transB: 1 });
  const d = g.node('Sub', [y, REF]);
  g.output(g.node('ReduceMean', [g.node('Mul', [d, d])], { keepdims: 0 }, { outputs: ['LOSS'] }), F, []);
  return g.build();
}
