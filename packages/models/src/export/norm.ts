import { float, floatTensor, type ScaleGroup } from '@alki/onnx';
import { MS_DOMAIN, vector, type ExportContext } from './context.js';
import { perHeadNormWeight } from './names.js';

/** A norm's initializers: weight, and bias for LayerNorm. */
export interface Norm {
  weight: string;
  bias?: string;
}

/**
 * Norm weight (and LayerNorm bias). A (1 + w) norm (gemma) is stored as that sum, so the graph (and AWQ's folding)
 * stay plain RMSNorm.
 */
export function normParams(ctx: ExportContext, name: string, n = ctx.c.hiddenSize): Norm {
  const { b, c, weights } = ctx;
  const w = Float32Array.from(weights.get(`${name}.weight`, [n]).data);
  if (ctx.c.normPlusOne) for (let i = 0; i < n; i++) w[i] = Math.fround(1 + w[i]);
  const weight = b.initializer(floatTensor(`${name}.weight`, [n], w));
  return { weight, bias: c.norm === 'layer' ? vector(ctx, `${name}.bias`, n) : undefined };
}

/** LayerNorm, or RMSNorm: one SimplifiedLayerNormalization in the ort flavour, Pow/ReduceMean/Div in the portable one. */
export function norm(ctx: ExportContext, x: string, p: Norm): string {
  const { b, ops, c } = ctx;
  if (c.norm === 'layer') return ops.layerNorm(x, p.weight, p.bias, c.normEps);
  return ctx.ort ? b.node('SimplifiedLayerNormalization', [x, p.weight], { axis: -1, epsilon: float(c.normEps) }) : ops.rmsNorm(x, p.weight, c.normEps);
}

/** norm(x + skip) and x + skip: one SkipSimplifiedLayerNormalization / SkipLayerNormalization in the ort flavour. */
export function skipNorm(ctx: ExportContext, x: string, skip: string, p: Norm): { normed: string; sum: string } {
  const { b, c } = ctx;
  if (!ctx.ort) {
    const sum = b.node('Add', [skip, x]);
    return { normed: norm(ctx, sum, p), sum };
  }
  const op = c.norm === 'layer' ? 'SkipLayerNormalization' : 'SkipSimplifiedLayerNormalization';
  const inputs = c.norm === 'layer' ? [x, skip, p.weight, p.bias!] : [x, skip, p.weight];
  const [normed, , , sum] = b.nodeN(op, inputs, { epsilon: float(c.normEps) }, { ...MS_DOMAIN, outputs: 4 });
  return { normed, sum };
}

/**
 * q/k LayerNorm over head_dim before rotary: phi shares one affine norm across heads; stablelm has one
 * bias-free norm per head (normalized with unit scale, then multiplied by the per-head weights).
 * `layout`: bshd = [B, S, heads·hd] (returned flat), bhsd = [B, heads, S, hd].
 */
export function qkNorm(ctx: ExportContext, x: string, name: string, count: number, layout: 'bshd' | 'bhsd'): string {
  const { b, ops, c, weights } = ctx;
  const hd = c.headDim;
  const x4 = layout === 'bshd' ? b.node('Reshape', [x, ops.i64([0, 0, count, hd])]) : x;
  let y: string;
  if (c.qkNorm === 'shared') {
    y = ops.layerNorm(x4, vector(ctx, `${name}.weight`, hd), vector(ctx, `${name}.bias`, hd), c.normEps);
  } else {
    const w = new Float32Array(count * hd);
    for (let h = 0; h < count; h++) w.set(weights.get(perHeadNormWeight(name, h), [hd]).data, h * hd);
    const ones = b.initializer(floatTensor(`${name}.unit_scale`, [hd], new Float32Array(hd).fill(1)));
    const perHead = b.initializer(floatTensor(`${name}.weight`, layout === 'bshd' ? [count, hd] : [count, 1, hd], w));
    y = b.node('Mul', [ops.layerNorm(x4, ones, undefined, c.normEps), perHead]);
  }
  return layout === 'bshd' ? b.node('Reshape', [y, ops.i64([0, 0, count * hd])]) : y;
}

/** The scale group of the linears that read a norm's output: AWQ/SmoothQuant fold their scales into its weight. */
export function normGroup(layer: number, p: Norm, linears: string[]): ScaleGroup {
  return { layer, norm: p.weight, ...(p.bias ? { normBias: p.bias } : {}), linears };
}
