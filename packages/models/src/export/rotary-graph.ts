import { DataType, floatTensor } from '@alki/onnx';
import type { ExportContext } from './context.js';
import { rotaryTables } from './rotary.js';

/**
 * cos/sin [B, 1, S, rotaryDim] at position_ids, built once on first use (in the first layer that needs them):
 * computed in the graph for dynamic NTK scaling, else gathered from precomputed tables.
 */
export function rotaryAtPositions(ctx: ExportContext): { cos: string; sin: string } {
  return (ctx.positional ??= ctx.c.ropeScaling?.type === 'dynamic' ? dynamicRotary(ctx, ctx.pos) : tableRotary(ctx, ctx.pos));
}

/** cos/sin gathered by position from precomputed tables (plain, linear and llama3 RoPE): [B, 1, S, rotaryDim]. */
function tableRotary(ctx: ExportContext, pos: string): { cos: string; sin: string } {
  const { b, ops } = ctx;
  const { cos, sin } = rotaryCaches(ctx);
  const gather = (cache: string) => {
    const g = b.node('Gather', [cache, pos], { axis: 0 });
    return b.node('Unsqueeze', [b.node('Concat', [g, g], { axis: -1 }), ops.i64([1])]);
  };
  return { cos: gather(cos), sin: gather(sin) };
}

/** The cos/sin tables [maxPositions, rotaryDim/2] as initializers. */
export function rotaryCaches(ctx: ExportContext): { cos: string; sin: string } {
  const { b, c } = ctx;
  const half = c.rotaryDim / 2;
  const tables = rotaryTables(c.maxPositions, c.rotaryDim, c.ropeTheta, c.ropeScaling);
  return {
    cos: b.initializer(floatTensor('rotary.cos_cache', [c.maxPositions, half], tables.cos)),
    sin: b.initializer(floatTensor('rotary.sin_cache', [c.maxPositions, half], tables.sin)),
  };
}

/**
 * Dynamic NTK scaling (HF "dynamic"): once the sequence (max position + 1)
 * exceeds max_position_embeddings, the base becomes
 * θ·(factor·len/max − (factor − 1))^(d/(d−2)). The frequencies depend on the
 * input, so the angles are computed in the graph: for positions `pos` (any
 * shape), with the sequence length `len` (float scalar). Returns cos/sin of
 * shape [...pos, rotaryDim/2].
 */
export function dynamicAngles(ctx: ExportContext, pos: string, len: string): { cos: string; sin: string } {
  const { b, ops, c } = ctx;
  const d = c.rotaryDim;
  const factor = (c.ropeScaling as { factor: number }).factor;
  const ratio = b.node('Max', [b.node('Sub', [b.node('Mul', [len, ops.f32(factor / c.maxPositions)]), ops.f32(factor - 1)]), ops.f32(1)]);
  const base = b.node('Mul', [ops.f32(c.ropeTheta), b.node('Pow', [ratio, ops.f32(d / (d - 2))])]);
  const exponents = b.initializer(
    floatTensor(
      'rotary.exponents',
      [d / 2],
      Array.from({ length: d / 2 }, (_, i) => (-2 * i) / d),
    ),
  );
  const invFreq = b.node('Pow', [base, exponents]);
  const angles = b.node('Mul', [b.node('Unsqueeze', [b.node('Cast', [pos], { to: DataType.FLOAT }), ops.i64([-1])]), invFreq]);
  return { cos: b.node('Cos', [angles]), sin: b.node('Sin', [angles]) };
}

/** Dynamic NTK cos/sin at `pos`, the sequence length being the largest position + 1: [B, 1, S, rotaryDim]. */
function dynamicRotary(ctx: ExportContext, pos: string): { cos: string; sin: string } {
  const { b, ops } = ctx;
  const len = b.node('Add', [b.node('Cast', [b.node('ReduceMax', [pos], { keepdims: 0 })], { to: DataType.FLOAT }), ops.f32(1)]);
  const { cos, sin } = dynamicAngles(ctx, pos, len);
  const both = (x: string) => b.node('Unsqueeze', [b.node('Concat', [x, x], { axis: -1 }), ops.i64([1])]);
  return { cos: both(cos), sin: both(sin) };
}
