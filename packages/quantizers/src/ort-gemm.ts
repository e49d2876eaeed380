import * as ort from 'onnxruntime-node';
import { DataType, GraphBuilder, createModel, encodeModel } from '@alki/onnx';

/**
 * C = A·Bᵀ on onnxruntime's multithreaded GEMM: the heavy products of the
 * calibrated quantizers (AWQ's output errors) run there instead of in JS
 * loops, ~50× faster on this class of CPU. One session serves all shapes.
 */
export class OrtGemm {
  private session?: Promise<ort.InferenceSession>;

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

  async release(): Promise<void> {
    if (this.session) await (await this.session).release();
    this.session = undefined;
  }
}
