import * as ort from 'onnxruntime-node';
import { DataType, GraphBuilder, createModel, encodeModel, float } from '@alki/onnx';

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

  async release(): Promise<void> {
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
