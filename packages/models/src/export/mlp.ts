import type { ScaleGroup } from '@alki/onnx';
import { bias, linearWeight, type ExportContext } from './context.js';
import type { LayerNames } from './names.js';

/** One layer's MLP: its output [B, S, hidden], the weights that read its input, and its inner scale groups. */
export interface MlpOutput {
  output: string;
  /** MatMul weights [in, out] that read the MLP's input (their scales fold into the norm before it). */
  inputs: string[];
  /** The linears inside the MLP, with what can absorb their input scales. */
  groups: ScaleGroup[];
}

/** The MLP's activation: SiLU (SwiGLU) or the tanh GELU (GeGLU, gelu_new). */
function activation(ctx: ExportContext, x: string): string {
  return ctx.c.activation === 'silu' ? ctx.b.node('Mul', [x, ctx.b.node('Sigmoid', [x])]) : ctx.ops.geluTanh(x);
}

/** Layer `i`'s MLP on `x`: down(act(gate(x)) · up(x)), or fc2(act(fc1(x))). */
export function mlp(ctx: ExportContext, i: number, x: string, n: LayerNames): MlpOutput {
  const { b, ops, c } = ctx;
  const H = c.hiddenSize;
  const I = c.intermediateSize;
  if (c.mlp === 'gated') {
    const wg = linearWeight(ctx, n.gate!, I, H);
    const wu = linearWeight(ctx, n.up!, I, H);
    const wd = linearWeight(ctx, n.down!, H, I);
    const gate = ops.linear(x, wg, bias(ctx, c.mlpBias, n.gate!, I));
    const up = ops.linear(x, wu, bias(ctx, c.mlpBias, n.up!, I));
    const output = ops.linear(b.node('Mul', [activation(ctx, gate), up]), wd, bias(ctx, c.mlpBias, n.down!, H));
    return { output, inputs: [wg, wu], groups: [{ layer: i, prev: wu, linears: [wd] }] };
  }
  const w1 = linearWeight(ctx, n.fc1!, I, H);
  const w2 = linearWeight(ctx, n.fc2!, H, I);
  const output = ops.linear(activation(ctx, ops.linear(x, w1, bias(ctx, c.mlpBias, n.fc1!, I))), w2, bias(ctx, c.mlpBias, n.fc2!, H));
  // fc2 reads GELU(fc1): no producer can absorb a scale (AWQ clips it; GPTQ needs none).
  return { output, inputs: [w1], groups: [{ layer: i, linears: [w2] }] };
}
