import { GraphBuilder, float, floatTensor, int64Tensor } from '@alki/onnx';

/**
 * Thin helpers over {@link GraphBuilder} for the few patterns a decoder
 * repeats: shared constants, RMSNorm, linear layers, rotary embedding.
 */
export class Ops {
  private readonly consts = new Map<string, string>();
  constructor(readonly b: GraphBuilder) {}

  /** A shared int64 constant (1-D, or scalar when `scalar`). */
  i64(values: number[], scalar = false): string {
    const key = `i64:${scalar}:${values.join(',')}`;
    let name = this.consts.get(key);
    if (!name) {
      name = this.b.initializer(int64Tensor(`const_i64_${this.consts.size}`, scalar ? [] : [values.length], values));
      this.consts.set(key, name);
    }
    return name;
  }

  /** A shared float32 scalar constant. */
  f32(value: number): string {
    const key = `f32:${value}`;
    let name = this.consts.get(key);
    if (!name) {
      name = this.b.initializer(floatTensor(`const_f32_${this.consts.size}`, [], [value]));
      this.consts.set(key, name);
    }
    return name;
  }

  /** RMSNorm as HF Llama computes it: x / sqrt(mean(x²) + eps) * w. */
  rmsNorm(x: string, weight: string, eps: number): string {
    const { b } = this;
    const sq = b.node('Pow', [x, this.f32(2)]);
    const mean = b.node('ReduceMean', [sq], { axes: [-1], keepdims: 1 });
    const std = b.node('Sqrt', [b.node('Add', [mean, this.f32(eps)])]);
    return b.node('Mul', [b.node('Div', [x, std]), weight]);
  }

  /** LayerNorm over the last axis (ONNX LayerNormalization), with optional bias. */
  layerNorm(x: string, weight: string, bias: string | undefined, eps: number): string {
    return this.b.node('LayerNormalization', bias ? [x, weight, bias] : [x, weight], { axis: -1, epsilon: float(eps) });
  }

  /** GELU with the tanh approximation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). */
  geluTanh(x: string): string {
    const { b } = this;
    const cube = b.node('Mul', [b.node('Mul', [x, x]), x]);
    const inner = b.node('Mul', [b.node('Add', [x, b.node('Mul', [cube, this.f32(0.044715)])]), this.f32(Math.sqrt(2 / Math.PI))]);
    return b.node('Mul', [b.node('Mul', [x, this.f32(0.5)]), b.node('Add', [b.node('Tanh', [inner]), this.f32(1)])]);
  }

  /** x @ W (+ bias), W stored as [in, out]. */
  linear(x: string, weight: string, bias?: string): string {
    const y = this.b.node('MatMul', [x, weight]);
    return bias ? this.b.node('Add', [y, bias]) : y;
  }

  /**
   * Rotary embedding in HF's rotate_half layout on [B, heads, S, headDim]:
   * x·cos + rotate_half(x)·sin on the first `rotaryDim` dims (all of them
   * unless partial), with cos/sin of shape [B, 1, S, rotaryDim].
   */
  rope(x: string, cos: string, sin: string, headDim: number, rotaryDim = headDim): string {
    const { b } = this;
    const half = rotaryDim / 2;
    const xr = rotaryDim === headDim ? x : b.node('Slice', [x, this.i64([0]), this.i64([rotaryDim]), this.i64([3])]);
    const x1 = b.node('Slice', [xr, this.i64([0]), this.i64([half]), this.i64([3])]);
    const x2 = b.node('Slice', [xr, this.i64([half]), this.i64([rotaryDim]), this.i64([3])]);
    const rot = b.node('Concat', [b.node('Neg', [x2]), x1], { axis: 3 });
    const rotated = b.node('Add', [b.node('Mul', [xr, cos]), b.node('Mul', [rot, sin])]);
    if (rotaryDim === headDim) return rotated;
    // Partial rotary (phi, stablelm): the rest of each head passes through.
    return b.node('Concat', [rotated, b.node('Slice', [x, this.i64([rotaryDim]), this.i64([headDim]), this.i64([3])])], { axis: 3 });
  }

  /** [B, S, heads*dim] → [B, heads, S, dim]. */
  splitHeads(x: string, heads: number, dim: number): string {
    const r = this.b.node('Reshape', [x, this.i64([0, 0, heads, dim])]);
    return this.b.node('Transpose', [r], { perm: [0, 2, 1, 3] });
  }
}
