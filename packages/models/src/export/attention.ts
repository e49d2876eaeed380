import { DataType, floatTensor, lazyTensor, transpose } from '@alki/onnx';
import type { DecoderConfig } from '../config.js';
import { MS_DOMAIN, bias, linearWeight, type ExportContext } from './context.js';
import type { LayerNames } from './names.js';
import { qkNorm } from './norm.js';
import { dynamicAngles, rotaryAtPositions, rotaryCaches } from './rotary-graph.js';

/**
 * Self-attention with KV cache, in two forms: the ort flavour's, one GroupQueryAttention node (onnxruntime's
 * com.microsoft op: rotary, cache append, grouped heads and masking inside), and the portable one, from standard
 * ONNX ops. Each has a part built once per graph (from the attention mask) and a part per layer.
 */
export type Attention = OrtAttention | PortableAttention;

/** What every layer's GroupQueryAttention shares. */
interface OrtAttention {
  kind: 'ort';
  /** Per sequence, the number of keys minus one (int32), from the attention mask. */
  seqlensK: string;
  /** Total sequence length (int32 scalar). */
  total32: string;
  /** cos/sin caches [positions, rotaryDim/2] when GroupQueryAttention applies rotary itself. */
  caches?: { cos: string; sin: string };
  /** Rotary inside GroupQueryAttention (rotaryDim/2 a multiple of 8), else applied before it. */
  fusedRotary: boolean;
  /** q, k and v from one MatMul (fused rotary and no q/k norm: nothing between projection and attention). */
  packedQkv: boolean;
}

/** What every layer's portable attention shares. */
interface PortableAttention {
  kind: 'portable';
  /** Additive bias [B, 1, 1, S, T]: 0 where a query may see a key, -1e30 elsewhere (causal, padding, window). */
  attnBias: string;
  /** 1/√head_dim (float scalar). */
  scale: string;
}

/** One layer's attention: its output [B, S, heads·hd] (before o_proj), and the projections that read the input. */
export interface AttentionOutput {
  output: string;
  /** The MatMul weights that read the normed input: q, k and v, or the packed qkv (v's last). */
  qkv: string[];
  /** Per weight, how many leading outputs are queries and keys, which AWQ does not clip. */
  unclipped: Record<string, number>;
}

/** Builds what the layers' attention shares, choosing GroupQueryAttention where the ort flavour can use it. */
export function prepareAttention(ctx: ExportContext): Attention {
  const { b, ops, c } = ctx;
  const totalLen = b.node('Slice', [b.node('Shape', [ctx.mask]), ops.i64([1]), ops.i64([2])]);
  // onnxruntime's GroupQueryAttention needs head_dim a multiple of 16: elsewhere (stories260K's 8, phi with 20) the
  // ort flavour keeps the portable attention, with its fused norms.
  return ctx.ort && c.headDim % 16 === 0 ? prepareOrt(ctx, totalLen) : preparePortable(ctx, totalLen);
}

/** Layer `i`'s self-attention on the normed input `x`, appending to its KV cache (outputs present.{i}.key|value). */
export function attention(ctx: ExportContext, a: Attention, i: number, x: string, n: LayerNames): AttentionOutput {
  const out = a.kind === 'ort' ? ortAttention(ctx, a, i, x, n) : portableAttention(ctx, a, i, x, n);
  for (const kv of ['key', 'value'])
    ctx.b.output(`present.${i}.${kv}`, DataType.FLOAT, ['batch_size', ctx.c.numKvHeads, 'total_sequence_length', ctx.c.headDim]);
  return out;
}

/** [1-element tensor] → scalar. */
function scalar(ctx: ExportContext, x: string): string {
  return ctx.b.node('Squeeze', [x, ctx.ops.i64([0])]);
}

// --- ort flavour: GroupQueryAttention ---

function prepareOrt(ctx: ExportContext, totalLen: string): OrtAttention {
  const { b, ops, c } = ctx;
  // GroupQueryAttention fuses rotary only when rotaryDim/2 is a multiple of 8 (e.g. not stablelm-3b's 20 rotary
  // dims of 80); otherwise rotary is applied before it.
  const fusedRotary = (c.rotaryDim / 2) % 8 === 0;
  // Per-sequence key counts from the mask (right padding only, as GQA assumes); with fused rotary, GQA derives the
  // positions from those counts and reads cos/sin caches [positions, rotaryDim/2].
  const seqlensK = b.node('Cast', [b.node('Sub', [b.node('ReduceSum', [ctx.mask, ops.i64([1])], { keepdims: 0 }), ops.i64([1], true)])], {
    to: DataType.INT32,
  });
  const total32 = b.node('Cast', [scalar(ctx, totalLen)], { to: DataType.INT32 });
  let caches: { cos: string; sin: string } | undefined;
  if (fusedRotary && c.ropeScaling?.type === 'dynamic') {
    const positions = b.node('Range', [ops.i64([0], true), scalar(ctx, totalLen), ops.i64([1], true)]);
    caches = dynamicAngles(ctx, positions, b.node('Cast', [scalar(ctx, totalLen)], { to: DataType.FLOAT }));
  } else if (fusedRotary) caches = rotaryCaches(ctx);
  return { kind: 'ort', seqlensK, total32, caches, fusedRotary, packedQkv: fusedRotary && !c.qkNorm };
}

function ortAttention(ctx: ExportContext, a: OrtAttention, i: number, x: string, n: LayerNames): AttentionOutput {
  const { b, ops, c, weights } = ctx;
  const H = c.hiddenSize;
  const nq = c.numHeads * c.headDim;
  const nkv = c.numKvHeads * c.headDim;
  let qkvInputs: string[];
  if (a.packedQkv) {
    // One MatMul for q, k and v: GroupQueryAttention takes the packed projection as it is.
    const rows = nq + 2 * nkv;
    /** The q, k and v tensors stacked along their output rows. */
    const qkvParts = [
      [n.q, nq],
      [n.k, nkv],
      [n.v, nkv],
    ] as const;
    for (const [name, out] of qkvParts) weights.checkShape(`${name}.weight`, [out, H]);
    const stacked = (suffix: 'weight' | 'bias') => {
      const parts = qkvParts.map(([name, out]) => weights.get(`${name}.${suffix}`, suffix === 'weight' ? [out, H] : [out]).data);
      const all = new Float32Array(parts.reduce((sum, p) => sum + p.length, 0));
      let at = 0;
      for (const p of parts) {
        all.set(p, at);
        at += p.length;
      }
      return all;
    };
    const wqkv = b.initializer(
      lazyTensor(
        `${n.qkv}.weight`,
        DataType.FLOAT,
        [H, rows],
        () => transpose(stacked('weight'), rows, H),
        () => stacked('weight'),
      ),
    );
    const bqkv = c.qkvBias ? b.initializer(floatTensor(`${n.qkv}.bias`, [rows], stacked('bias'))) : undefined;
    qkvInputs = [ops.linear(x, wqkv, bqkv), '', ''];
  } else {
    const q = ops.linear(x, linearWeight(ctx, n.q, nq, H), bias(ctx, c.qkvBias, n.q, nq));
    const k = ops.linear(x, linearWeight(ctx, n.k, nkv, H), bias(ctx, c.qkvBias, n.k, nkv));
    const v = ops.linear(x, linearWeight(ctx, n.v, nkv, H), bias(ctx, c.qkvBias, n.v, nkv));
    const qn = n.qNorm ? qkNorm(ctx, q, n.qNorm, c.numHeads, 'bshd') : q;
    const kn = n.kNorm ? qkNorm(ctx, k, n.kNorm, c.numKvHeads, 'bshd') : k;
    qkvInputs = [ropeFlat(ctx, a, qn, c.numHeads), ropeFlat(ctx, a, kn, c.numKvHeads), v];
  }
  const past = ctx.past[i];
  const [output] = b.nodeN(
    'GroupQueryAttention',
    [...qkvInputs, past.key, past.value, a.seqlensK, a.total32, ...(a.caches ? [a.caches.cos, a.caches.sin] : [])],
    {
      num_heads: c.numHeads,
      kv_num_heads: c.numKvHeads,
      do_rotary: a.caches ? 1 : 0,
      // HF admits keys at distance < window; onnxruntime's CPU kernel reads local_window_size as that same
      // count (checked against the float64 reference: window − 1 differs).
      ...(c.slidingWindow ? { local_window_size: c.slidingWindow } : {}),
    },
    { ...MS_DOMAIN, outputs: [b.fresh('attn'), `present.${i}.key`, `present.${i}.value`] },
  );
  return { output, ...projections(c, n, a.packedQkv) };
}

/** Rotary outside GroupQueryAttention (when it cannot fuse it), on [B, S, heads·hd]. */
function ropeFlat(ctx: ExportContext, a: OrtAttention, x: string, count: number): string {
  if (a.fusedRotary) return x;
  const { b, ops, c } = ctx;
  const hd = c.headDim;
  const { cos, sin } = rotaryAtPositions(ctx);
  const bhsd = ops.splitHeads(x, count, hd);
  const r = ops.rope(bhsd, cos, sin, hd, c.rotaryDim);
  return b.node('Reshape', [b.node('Transpose', [r], { perm: [0, 2, 1, 3] }), ops.i64([0, 0, count * hd])]);
}

// --- portable flavour: standard ONNX ops ---

function preparePortable(ctx: ExportContext, totalLen: string): PortableAttention {
  const { b, ops, c } = ctx;
  // Additive attention bias [B, 1, 1, S, T]: causal (query at absolute p sees keys ≤ p) and padding.
  const seqLen = b.node('Slice', [b.node('Shape', [ctx.ids]), ops.i64([1]), ops.i64([2])]);
  const pastLen = b.node('Sub', [totalLen, seqLen]);
  const keyIdx = b.node('Range', [ops.i64([0], true), scalar(ctx, totalLen), ops.i64([1], true)]);
  const queryIdx = b.node('Range', [scalar(ctx, pastLen), scalar(ctx, totalLen), ops.i64([1], true)]);
  const causal = b.node('LessOrEqual', [b.node('Unsqueeze', [keyIdx, ops.i64([0])]), b.node('Unsqueeze', [queryIdx, ops.i64([1])])]);
  const notPad = b.node('Unsqueeze', [b.node('Cast', [ctx.mask], { to: DataType.BOOL }), ops.i64([1, 2])]);
  let visible = causal;
  if (c.slidingWindow) {
    // Mistral: a query at p sees keys k with p − k < window.
    const distance = b.node('Sub', [b.node('Unsqueeze', [queryIdx, ops.i64([1])]), b.node('Unsqueeze', [keyIdx, ops.i64([0])])]);
    visible = b.node('And', [causal, b.node('Less', [distance, ops.i64([c.slidingWindow], true)])]);
  }
  const allowed = b.node('And', [visible, notPad]);
  // -1e30 rather than -inf: a fully padded row then softmaxes to uniform instead of NaN.
  const attnBias = b.node('Unsqueeze', [b.node('Where', [allowed, ops.f32(0), ops.f32(-1e30)]), ops.i64([2])]);
  return { kind: 'portable', attnBias, scale: ops.f32(1 / Math.sqrt(c.headDim)) };
}

function portableAttention(ctx: ExportContext, a: PortableAttention, i: number, x: string, n: LayerNames): AttentionOutput {
  const { b, ops, c } = ctx;
  const hd = c.headDim;
  const nRep = c.numHeads / c.numKvHeads;
  /** A projection split into heads [B, count, S, hd], q/k-normed when the model has those norms. */
  const heads = (name: string, count: number, normName?: string) => {
    const y = ops.splitHeads(ops.linear(x, linearWeight(ctx, name, count * hd, c.hiddenSize), bias(ctx, c.qkvBias, name, count * hd)), count, hd);
    return normName ? qkNorm(ctx, y, normName, count, 'bhsd') : y;
  };
  const { cos, sin } = rotaryAtPositions(ctx);
  const q = ops.rope(heads(n.q, c.numHeads, n.qNorm), cos, sin, hd, c.rotaryDim);
  const k = ops.rope(heads(n.k, c.numKvHeads, n.kNorm), cos, sin, hd, c.rotaryDim);
  const v = heads(n.v, c.numKvHeads);
  const presentK = b.node('Concat', [ctx.past[i].key, k], { axis: 2 }, { outputs: [`present.${i}.key`] });
  const presentV = b.node('Concat', [ctx.past[i].value, v], { axis: 2 }, { outputs: [`present.${i}.value`] });
  // Grouped-query attention without copying K/V: queries are grouped as
  // [B, kvHeads, nRep, S, hd] and broadcast against K/V [B, kvHeads, 1, T, hd].
  const q5 = b.node('Mul', [b.node('Reshape', [q, ops.i64([0, c.numKvHeads, nRep, -1, hd])]), a.scale]);
  const k5 = b.node('Unsqueeze', [presentK, ops.i64([2])]);
  const v5 = b.node('Unsqueeze', [presentV, ops.i64([2])]);
  const scores = b.node('Add', [b.node('MatMul', [q5, b.node('Transpose', [k5], { perm: [0, 1, 2, 4, 3] })]), a.attnBias]);
  const ctx5 = b.node('MatMul', [b.node('Softmax', [scores], { axis: -1 }), v5]);
  const output = b.node('Reshape', [
    b.node('Transpose', [b.node('Reshape', [ctx5, ops.i64([0, c.numHeads, -1, hd])])], { perm: [0, 2, 1, 3] }),
    ops.i64([0, 0, c.numHeads * hd]),
  ]);
  return { output, ...projections(c, n, false) };
}

/** The q/k/v weight names of a layer (or its packed qkv), and how many of their outputs are queries and keys. */
function projections(c: DecoderConfig, n: LayerNames, packed: boolean): Pick<AttentionOutput, 'qkv' | 'unclipped'> {
  const nq = c.numHeads * c.headDim;
  const nkv = c.numKvHeads * c.headDim;
  if (packed) return { qkv: [`${n.qkv}.weight`], unclipped: { [`${n.qkv}.weight`]: nq + nkv } };
  return { qkv: [`${n.q}.weight`, `${n.k}.weight`, `${n.v}.weight`], unclipped: { [`${n.q}.weight`]: nq, [`${n.k}.weight`]: nkv } };
}
