import { AlkiError, throwIfAborted, type ProgressCallback } from '@alki/core';
import {
  ALKI_METADATA_KEYS,
  floatTensor,
  readTiedEmbedding,
  readTransposed,
  tensorByteLength,
  uint8Tensor,
  type Model,
  type Tensor,
  type TensorSpill,
} from '@alki/onnx';
import type { BlockwiseQuantized } from './blockwise.js';
import { matMulNBitsNode, matMulNBitsTensors } from './graph/matmul-nbits.js';
import { halfScales } from './graph/half-scales.js';
import { assertFinite, findHead, findLinears, gemmToMatMul, pruneInitializers, type LinearSite } from './graph/rewrite.js';
import { rtnPacked, type PackedRtn } from './rtn-packed.js';
import { RtnPool } from './rtn-pool.js';
import { findEmbeddings, quantizeEmbedding, shareTiedEmbedding } from './embedding.js';
import type { LayerCheckpoint } from './checkpoint.js';
import { DEFAULT_W8A8_FORMAT, W8A8_FORMATS, type W8A8Format } from './smoothquant.js';

/** Quantization methods. */
export const QUANTIZE_METHODS = ['none', 'rtn', 'awq', 'gptq', 'smoothquant'] as const;
export type QuantizeMethod = (typeof QUANTIZE_METHODS)[number];

/** Options of {@link quantize} and {@link createQuantizer}. */
export interface QuantizeOptions {
  method: QuantizeMethod;
  /** Weight bits: 4 (default) or 8. 2 is accepted for experiments. */
  bits?: 2 | 4 | 8;
  /** Inputs per scale along K: 16, 32 (default), 64, 128 or 256. */
  blockSize?: number;
  /** Default false: per-block zero points (better for skewed blocks). */
  symmetric?: boolean;
  /**
   * MatMulNBits accuracy_level: 4 (default) lets onnxruntime quantize
   * activations to int8 per block inside the kernel, like llama.cpp's
   * Q4_0·Q8_0 dot products — 2.3× faster int4 decode and 1.3× prefill on a
   * TinyLlama-shaped model, +0.1% perplexity on stories260K; 0 keeps float
   * activations (exact, slower; 8-bit has no fast float-activation kernel).
   */
  accuracyLevel?: 0 | 1 | 2 | 3 | 4;
  /** GPTQ: process columns by decreasing Hessian diagonal. */
  actOrder?: boolean;
  /**
   * GPTQ: dampening as a fraction of the mean Hessian diagonal. Default 0.01, and 0.2 for blocks of 64 or more
   * with {@link floatTargets} (see {@link gptqDampening}; by the block asked, as RTN's default range search).
   */
  percDamp?: number;
  /**
   * Each block's range chosen by the least squared error of its own rounding (a shrink grid, see mseBlockParams)
   * instead of min/max. Default: on for GPTQ, and for RTN's weights below 8 bits in blocks of at most 64 — where it
   * puts plain int4 at llama.cpp Q4_0's quality or better (stories260K +8.69% against Q4_0's +9.17%, RTN min/max
   * +9.48%) for ~15 s more on a 1.1B model (docs/performance.md). Off for 8-bit weights (the 8-bit head of an int4
   * build included: 255 levels leave no outlier worth clipping) and for blocks of 128 or 256 (stories260K: +11.58%
   * with it against +10.83%). Given explicitly, it applies to every weight.
   */
  mseClip?: boolean;
  /**
   * GPTQ: AWQ's activation-aware per-channel scales folded into the graph first, then GPTQ's rounding. Default: on
   * below 8 bits in blocks of 16 with {@link floatTargets} (see {@link gptqAwqScales}), off otherwise.
   */
  awqScales?: boolean;
  /**
   * GPTQ: each linear input's statistics collected after the layer's earlier linears are quantized — one pass per
   * input, in the order they run (AutoGPTQ's `true_sequential`) — instead of one pass per layer. Default on, with
   * {@link floatTargets}: together, on stories260K over three seeds, GPTQ int4 block 32 goes from +5.97% to +4.37%
   * perplexity (half of RTN's +8.69% removed), block 128 from +7.25% to +5.27% (docs/quantization.md). Alone it
   * costs little (the passes run parts of the layer) and gains nothing measurable. `quick` calibration in
   * @alki/bundle turns both off unless given.
   */
  trueSequential?: boolean;
  /**
   * GPTQ: fit each linear to the float model's outputs — min ‖X̃Q − XW‖², X̃ the quantized model's inputs, X the
   * float model's own — instead of to its float weights on X̃ (asymmetric calibration, as GPTAQ, Li et al. 2025).
   * The layer also runs on the float model's hidden states (a second set of calibration activations): about twice
   * GPTQ's calibration time (a TinyLlama-shaped layer at 8 × 256 tokens: 8.5 → 16.0 s). Default on.
   */
  floatTargets?: boolean;
  /** SmoothQuant: migration strength α in [0, 1] (default 0.5). */
  alpha?: number;
  /**
   * SmoothQuant: false gives the naive W8A8 baseline — no smoothing at all (s = 1), so no calibration is needed.
   * (α = 0 is not that: by eq. 4 it still divides each channel by max|w|.)
   */
  smooth?: boolean;
  /** SmoothQuant: how the int8 weights are stored (default `s7`, safe on every CPU; see {@link W8A8Format}). */
  w8a8Format?: W8A8Format;
  /** Weight initializer names (exact or RegExp) to leave in float. */
  exclude?: (string | RegExp)[];
  /**
   * Bits of the output projection (lm_head, found by {@link findHead}): 4 or 8 as a MatMulNBits of its own
   * width, 32 to keep it in float (default: {@link DEFAULT_HEAD_BITS}; SmoothQuant: 8 or 32).
   */
  headBits?: 4 | 8 | 32;
  /**
   * Bits of the token embedding table (a Gather from a constant [V, H] table): 4 or 8 in blocks of `blockSize`
   * along H, looked up by a Gather that dequantizes only the rows it reads (embedding.ts), 32 to keep it in float
   * (default: {@link defaultEmbedBits} of `bits`: 4 for int4 models, 8 for int8). A table tied to a quantized head is
   * stored once, at the head's width (after AWQ, whose scales change the head, read through 1/s).
   */
  embedBits?: 4 | 8 | 32;
  /**
   * Where new quantized tensors (and weights a calibrated method rewrote) are kept: default in memory; a
   * {@link TensorSpill} keeps them in a file, read back when the model is written, so that a model larger than
   * memory streams through.
   */
  spill?: TensorSpill;
  /** AWQ, GPTQ: records each finished layer there and resumes after the last one it holds (`alki build --resume`). */
  checkpoint?: LayerCheckpoint;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

/**
 * Per-layer outcome: relative Frobenius error ‖W − Ŵ‖ / ‖W‖, against the
 * checkpoint's weight for RTN and plain GPTQ, against the least-squares weight it rounded for GPTQ with float
 * targets, and against the scaled weight that is rounded for AWQ and SmoothQuant (their scaling is exact and
 * folded away).
 */
export interface LayerReport {
  name: string;
  K: number;
  N: number;
  relativeError: number;
}

export interface QuantizeReport {
  method: QuantizeMethod;
  bits: number;
  /** The output projection and its bits (32: kept in float); undefined when the graph has none or nothing was quantized. */
  head?: { name: string; bits: number };
  blockSize: number;
  symmetric: boolean;
  accuracyLevel: number;
  actOrder?: boolean;
  mseClip?: boolean;
  /** GPTQ ran on AWQ's scaled weights. */
  awqScales?: boolean;
  /** GPTQ: statistics per input after the layer's earlier linears were quantized. */
  trueSequential?: boolean;
  /** GPTQ: linears fitted to the float model's outputs. */
  floatTargets?: boolean;
  alpha?: number;
  /** SmoothQuant: false for the unsmoothed (naive) W8A8 baseline. */
  smooth?: boolean;
  w8a8Format?: W8A8Format;
  layers: LayerReport[];
  excluded: string[];
  /** The token embedding, when it was quantized (see {@link QuantizeOptions.embedBits}). */
  embedding?: { name: string; bits: number; relativeError: number; /** The head whose quantized table it reads (tied models). */ sharedWith?: string };
  /** Bytes of the quantized layers' weights before and after. */
  floatBytes: number;
  quantizedBytes: number;
  calibration?: { source: string; samples: number; sequenceLength: number; sha256?: string };
  seconds?: number;
}

const BLOCK_SIZES = [16, 32, 64, 128, 256];

/** The output projection's bits when not given: see docs/decisions.md ("an 8-bit lm_head"). */
export const DEFAULT_HEAD_BITS = 8;

/**
 * The token embedding's bits when not given: the model's own width, 4 bits below 8 (as llama.cpp's Q4_0 stores its
 * token table), 8 at 8. A 4-bit table costs 0.2–0.3 points of perplexity on stories260K (GPTQ block 128 and RTN
 * block 32, untied; Intel Xeon, AVX-512 VNNI, no AMX) and saves 33 MB of a TinyLlama-shaped bundle: what takes the default int4 bundle under Q4_0's
 * size (docs/decisions.md, "quantized embeddings" and "the default int4 bundle").
 */
export function defaultEmbedBits(bits: number): 4 | 8 {
  return bits < 8 ? 4 : 8;
}

/**
 * Bits of a token table stored on its own (not as the head's codes): `embedBits` when given; a tied table that an
 * AWQ build keeps apart (a caller of quantizeEmbeddings without AWQ's scales, see shareTiedEmbedding) follows its 4-
 * or 8-bit head, `apartHeadBits` — at 4 bits it cost AWQ 0.3–0.4 points on stories260K (Intel Xeon, AVX-512 VNNI, no
 * AMX); else {@link defaultEmbedBits}.
 */
export function tableBits(bits: number, embedBits?: 4 | 8 | 32, apartHeadBits?: number): 4 | 8 | 32 {
  if (embedBits !== undefined) return embedBits;
  return apartHeadBits === 4 || apartHeadBits === 8 ? apartHeadBits : defaultEmbedBits(bits);
}

/**
 * The block a weight with rows of K inputs is quantized and written in: of the powers of two from 16 to `blockSize`,
 * the one that stores a row in the fewest bytes (codes padded to whole blocks, float16 scales, packed zero points
 * unless `symmetric`), the largest on a tie. Where blocks of `blockSize` split K evenly that is `blockSize` itself; a row narrower than a
 * block is written without the padding (stories260K's 64-wide rows at block 128 were half padding), and a ragged row
 * in smaller blocks whose padding costs less than their scales: Qwen2.5-0.5B's 896 inputs at block 256 pad to 1024
 * codes, at 128 to none; stories260K's 172 at 128 or 256 pad to 256 codes, at 64 to 192 (fewer bytes, finer scales).
 */
export function writtenBlockSize(K: number, blockSize: number, bits = 4, symmetric = false): number {
  let best = blockSize;
  let least = Infinity;
  for (let b = blockSize; b >= 16; b /= 2) {
    const blocks = Math.ceil(K / b);
    const bytes = (blocks * b * bits) / 8 + blocks * 2 + (symmetric ? 0 : Math.ceil((blocks * bits) / 8));
    if (bytes < least) [best, least] = [b, bytes];
  }
  return best;
}

/** The block a token table of rows of H values is stored in: `blockSize`, or the largest power of two ≥ 16 dividing H; undefined when none does. */
export function embeddingBlockSize(H: number, blockSize: number): number | undefined {
  let block = blockSize;
  while (block > 16 && H % block !== 0) block /= 2;
  return H % block === 0 ? block : undefined;
}

/**
 * GPTQ's default for {@link QuantizeOptions.trueSequential} and {@link QuantizeOptions.floatTargets}: on (measured
 * on stories260K over three calibration seeds, docs/quantization.md "GPTQ fitted to the float model").
 */
export const DEFAULT_GPTQ_FLOAT_TARGETS = true;

/**
 * GPTQ's default for {@link QuantizeOptions.awqScales}: on below 8 bits in blocks of 16 when fitted to the float
 * model. stories260K int4 block 16 over twelve calibration seeds: +2.86% against +3.41%, lower on every seed (56% of
 * min/max RTN's increase removed instead of 47%); at block 32 within the spread (+4.21% against +4.37% over six
 * seeds), at 64–256 worse (Intel Xeon KVM guest, 2 cores, AVX-512 VNNI, no AMX; docs/quantization.md). A tied table
 * still shares the head's codes (shareTiedEmbedding).
 */
export function gptqAwqScales(bits: number, blockSize: number, floatTargets: boolean): boolean {
  return bits < 8 && blockSize <= 16 && floatTargets;
}

/**
 * GPTQ's default dampening: 0.01 of the mean Hessian diagonal (the paper's), 0.2 for blocks of 64 or more fitted to
 * the float model. There a block's range is fixed before the error spread reaches its later columns, and a stronger
 * dampening spreads less: stories260K over three seeds, block 128 +6.38% → +5.27%, block 256 +6.08% → +5.62%
 * (2026-11-28); block 64 over six seeds +5.80% → +5.21%, lower on every seed (2026-11-29). At block 32 it changes
 * nothing (+4.46% → +4.42% over six seeds), at 16 it was worse (+3.59% against +3.17%), and for plain GPTQ at block 128
 * worse (+7.89% against +7.25%). Intel Xeon KVM guests, 2 cores, AVX-512 VNNI, no AMX; docs/quantization.md.
 */
export function gptqDampening(blockSize: number, floatTargets: boolean): number {
  return floatTargets && blockSize >= 64 ? 0.2 : 0.01;
}

export type ResolvedQuantizeOptions = Required<Pick<QuantizeOptions, 'method' | 'bits' | 'blockSize' | 'symmetric' | 'accuracyLevel'>> & QuantizeOptions;

/** Validates options and fills defaults; throws BAD_OPTION with a hint. */
export function resolveQuantizeOptions(o: QuantizeOptions): ResolvedQuantizeOptions {
  if (!(QUANTIZE_METHODS as readonly string[]).includes(o.method)) {
    throw new AlkiError('BAD_OPTION', `unknown quantization method "${o.method}"`, `choose one of: ${QUANTIZE_METHODS.join(', ')}`);
  }
  if (o.method === 'smoothquant' && o.bits !== undefined && o.bits !== 8) {
    throw new AlkiError(
      'BAD_OPTION',
      `SmoothQuant is W8A8: --bits ${o.bits} is not possible`,
      'drop --bits (or use --bits 8) with smoothquant; for 4-bit weights use --quantize awq or gptq',
    );
  }
  if (o.alpha !== undefined && o.method !== 'smoothquant')
    throw new AlkiError('BAD_OPTION', '--alpha applies to SmoothQuant only', 'use --quantize smoothquant --alpha 0.5');
  if (o.smooth !== undefined && o.method !== 'smoothquant')
    throw new AlkiError('BAD_OPTION', 'smoothing applies to SmoothQuant only', 'use --quantize smoothquant');
  if (o.smooth === false && o.alpha !== undefined)
    throw new AlkiError('BAD_OPTION', '--alpha has no meaning without smoothing', 'drop --alpha, or drop --no-smooth');
  if (o.w8a8Format !== undefined && o.method !== 'smoothquant')
    throw new AlkiError('BAD_OPTION', '--w8a8-format applies to SmoothQuant (W8A8) only', 'use --quantize smoothquant --w8a8-format s7');
  if (o.w8a8Format !== undefined && !W8A8_FORMATS.includes(o.w8a8Format))
    throw new AlkiError(
      'BAD_OPTION',
      `unknown W8A8 format "${o.w8a8Format}"`,
      `choose one of: ${W8A8_FORMATS.join(', ')} (s7: safe on every CPU, the default; s8: VNNI x86, arm64 and wasm only; u8: exact everywhere, slower prefill)`,
    );
  if (o.alpha !== undefined && !(o.alpha >= 0 && o.alpha <= 1))
    throw new AlkiError(
      'BAD_OPTION',
      `--alpha must be in [0, 1], got ${o.alpha}`,
      'SmoothQuant uses 0.5 by default; 0.75–0.85 for models with strong outliers',
    );
  const bits = o.bits ?? (o.method === 'smoothquant' ? 8 : 4);
  // yargs reads `--bits abc` as NaN: say what was wrong, not "NaN".
  const unsupported = (flag: string, v: number) => (Number.isNaN(v) ? `${flag} must be a number` : `${flag} ${v} is not supported`);
  if (![2, 4, 8].includes(bits)) throw new AlkiError('BAD_OPTION', unsupported('--bits', bits), 'use 4 or 8 (2 for experiments)');
  const blockSize = o.blockSize ?? 32;
  if (!BLOCK_SIZES.includes(blockSize)) throw new AlkiError('BAD_OPTION', unsupported('--block-size', blockSize), `use one of ${BLOCK_SIZES.join(', ')}`);
  // int8 activations inside MatMulNBits (level 4) by default: see docs/decisions.md for the measured trade.
  const accuracyLevel = o.accuracyLevel ?? 4;
  if (![0, 1, 2, 3, 4].includes(accuracyLevel))
    throw new AlkiError('BAD_OPTION', unsupported('--accuracy-level', accuracyLevel), 'use 0 (exact float activations) or 4 (int8 activations)');
  if (o.actOrder && o.method !== 'gptq') throw new AlkiError('BAD_OPTION', '--act-order applies to GPTQ only', 'use --quantize gptq --act-order');
  for (const [flag, on] of [
    ['--true-sequential', o.trueSequential],
    ['--float-targets', o.floatTargets],
  ] as const)
    if (on !== undefined && o.method !== 'gptq')
      throw new AlkiError('BAD_OPTION', `${flag} applies to GPTQ only, not ${o.method}`, `use --quantize gptq ${flag}`);
  if (o.awqScales && o.method !== 'gptq')
    throw new AlkiError('BAD_OPTION', `--awq-scales applies to GPTQ only, not ${o.method}`, 'use --quantize gptq --awq-scales');
  if (o.mseClip !== undefined && o.method !== 'gptq' && o.method !== 'rtn')
    throw new AlkiError(
      'BAD_OPTION',
      `--mse-clip applies to RTN and GPTQ, not ${o.method}`,
      o.method === 'awq' ? 'AWQ searches its own clipping: leave --mse-clip out' : 'leave --mse-clip out',
    );
  if (o.headBits !== undefined && ![4, 8, 32].includes(o.headBits))
    throw new AlkiError('BAD_OPTION', unsupported('--head-bits', o.headBits), 'use 4, 8 or 32 (32 keeps the output projection in float)');
  if (o.headBits === 4 && o.method === 'smoothquant')
    throw new AlkiError('BAD_OPTION', 'SmoothQuant is W8A8: --head-bits 4 is not possible', 'use --head-bits 8 or 32 with smoothquant');
  if (o.embedBits !== undefined && ![4, 8, 32].includes(o.embedBits))
    throw new AlkiError('BAD_OPTION', unsupported('--embed-bits', o.embedBits), 'use 4, 8 or 32 (32 keeps the embedding table in float)');
  if (o.embedBits !== undefined && o.embedBits !== 32 && o.method === 'smoothquant')
    throw new AlkiError(
      'BAD_OPTION',
      'SmoothQuant leaves the embedding table in float: --embed-bits does not apply',
      'drop --embed-bits, or use --quantize rtn, awq or gptq',
    );
  if (o.percDamp !== undefined && !(o.percDamp > 0 && o.percDamp < 1)) throw new AlkiError('BAD_OPTION', `dampening must be in (0, 1), got ${o.percDamp}`);
  // Block ranges by least squared error, unless asked otherwise (QuantizeOptions.mseClip): always for GPTQ, for RTN
  // int4 in small blocks (per weight, quantize() keeps an 8-bit head's min/max); other methods do not use it.
  const mseClip = o.method === 'gptq' ? (o.mseClip ?? true) : o.method === 'rtn' ? (o.mseClip ?? (bits < 8 && blockSize <= 64)) : o.mseClip;
  const gptq = o.method === 'gptq';
  const trueSequential = gptq ? (o.trueSequential ?? DEFAULT_GPTQ_FLOAT_TARGETS) : undefined;
  const floatTargets = gptq ? (o.floatTargets ?? DEFAULT_GPTQ_FLOAT_TARGETS) : undefined;
  const percDamp = gptq ? (o.percDamp ?? gptqDampening(blockSize, !!floatTargets)) : o.percDamp;
  const awqScales = gptq ? (o.awqScales ?? gptqAwqScales(bits, blockSize, !!floatTargets)) : o.awqScales;
  return {
    ...o,
    bits: bits as 2 | 4 | 8,
    blockSize,
    symmetric: o.symmetric ?? false,
    accuracyLevel,
    mseClip,
    trueSequential,
    floatTargets,
    percDamp,
    awqScales,
  };
}

/** A fresh report for resolved options. */
export function emptyReport(o: ResolvedQuantizeOptions): QuantizeReport {
  return {
    method: o.method,
    bits: o.method === 'none' ? 32 : o.bits,
    blockSize: o.blockSize,
    symmetric: o.symmetric,
    accuracyLevel: o.accuracyLevel,
    ...(o.method === 'gptq' ? { actOrder: !!o.actOrder } : {}),
    ...(o.method === 'gptq' || o.method === 'rtn' ? { mseClip: !!o.mseClip } : {}),
    ...(o.method === 'gptq' && o.awqScales ? { awqScales: true } : {}),
    ...(o.method === 'gptq' ? { trueSequential: !!o.trueSequential, floatTargets: !!o.floatTargets } : {}),
    ...(o.method === 'smoothquant'
      ? { ...(o.smooth === false ? { smooth: false } : { alpha: o.alpha ?? 0.5 }), w8a8Format: o.w8a8Format ?? DEFAULT_W8A8_FORMAT }
      : {}),
    layers: [],
    excluded: [],
    floatBytes: 0,
    quantizedBytes: 0,
  };
}

/**
 * Linears the options select: exclusions (and a float head, `headBits` 32) are
 * recorded in the report, as is the head's width. Run {@link gemmToMatMul}
 * first to include Gemms.
 */
export function selectLinears(model: Model, o: QuantizeOptions, report: QuantizeReport): LinearSite[] {
  const matches = (p: string | RegExp, name: string) => (typeof p === 'string' ? p === name : p.test(name));
  const isExcluded = (name: string) => (o.exclude ?? []).some((p) => matches(p, name));
  const linears = findLinears(model);
  for (const p of o.exclude ?? []) {
    if (!linears.some((s) => matches(p, s.weight.name))) {
      const examples = linears.slice(0, 2).map((s) => s.weight.name);
      throw new AlkiError(
        'BAD_OPTION',
        `--exclude ${String(p)} matches no linear layer of this model`,
        `give weight names such as ${[...examples, linears.at(-1)?.weight.name].filter(Boolean).join(', ')}, or a /regular expression/ such as /mlp\\.down_proj/`,
      );
    }
  }
  const head = findHead(model);
  const headBits = head && isExcluded(head) ? 32 : (o.headBits ?? (o.method === 'smoothquant' ? 8 : DEFAULT_HEAD_BITS));
  if (head) report.head = { name: head, bits: headBits };
  return linears.filter((s) => {
    if (!isExcluded(s.weight.name) && !(s.weight.name === head && headBits === 32)) return true;
    report.excluded.push(s.weight.name);
    return false;
  });
}

/** The weight bits of each selected linear: the head's own width, the method's for the rest. */
export function bitsOf(o: { bits: 2 | 4 | 8 }, report: QuantizeReport): (name: string) => 2 | 4 | 8 {
  return (name) => (report.head && name === report.head.name && report.head.bits !== 32 ? (report.head.bits as 4 | 8) : o.bits);
}

/**
 * Replaces a MatMul by MatMulNBits holding `qw`, recording the layer in the
 * report with its relative error (see relativeErrorOf in blockwise.ts).
 */
export function writeMatMulNBits(
  model: Model,
  site: LinearSite,
  qw: BlockwiseQuantized,
  relativeError: number,
  accuracyLevel: number,
  report: QuantizeReport,
  spill?: TensorSpill,
): void {
  replaceWithMatMulNBits(model, site, qw, matMulNBitsTensors(qw, site.weight.name), relativeError, accuracyLevel, report, spill);
}

/** {@link writeMatMulNBits} for tensors already packed (the RTN fast path, rtn-packed.ts). */
function replaceWithMatMulNBits(
  model: Model,
  site: LinearSite,
  shape: Pick<BlockwiseQuantized, 'K' | 'N' | 'bits' | 'blockSize'>,
  tensors: { B: Tensor; scales: Tensor; zeroPoints?: Tensor },
  relativeError: number,
  accuracyLevel: number,
  report: QuantizeReport,
  spill?: TensorSpill,
): void {
  const name = site.weight.name;
  const keep = (x: Tensor) => spill?.spill(x) ?? x;
  const scales = halfScales(tensors.scales);
  const t = { B: keep(tensors.B), scales: keep(scales.tensor), zeroPoints: tensors.zeroPoints && keep(tensors.zeroPoints) };
  report.layers.push({ name, K: site.K, N: site.N, relativeError });
  report.floatBytes += tensorByteLength(site.weight);
  report.quantizedBytes += tensorByteLength(t.B) + tensorByteLength(t.scales) + (t.zeroPoints ? tensorByteLength(t.zeroPoints) : 0);
  model.graph.initializers.push(t.B, t.scales, ...(t.zeroPoints ? [t.zeroPoints] : []));
  const idx = model.graph.nodes.indexOf(site.node);
  const node = matMulNBitsNode(
    site.node.inputs[0],
    site.node.outputs[0],
    shape,
    { B: t.B.name, scales: scales.value, zeroPoints: t.zeroPoints?.name },
    accuracyLevel,
    `${site.node.name ?? name}_Q${shape.bits}`,
  );
  model.graph.nodes.splice(idx, 1, ...(scales.cast ? [scales.cast] : []), node);
}

/**
 * Quantizes the token embedding tables (Gathers from constant [V, H] tables) to `embedBits` with RTN, where the
 * hidden size splits into whole blocks (the lookup reshapes a row's blocks back to H): `blockSize`, or the largest
 * power of two ≥ 16 that divides H. A table tied to a quantized head reads the head's codes (shareTiedEmbedding),
 * through the scales AWQ folded into the head where it did (`appliedScales`, by weight name; without the map an AWQ
 * build's tied table is stored apart).
 */
export function quantizeEmbeddings(model: Model, o: ResolvedQuantizeOptions, report: QuantizeReport, appliedScales?: ReadonlyMap<string, Float32Array>): void {
  if (o.method === 'none' || o.embedBits === 32) return;
  for (const site of findEmbeddings(model)) {
    // A tied table is stored once, at the head's width, whatever embedBits says.
    if (shareTiedEmbedding(model, site, report, appliedScales)) continue;
    const awq = report.method === 'awq' || !!report.awqScales;
    const siteBits = tableBits(o.bits, o.embedBits, awq && readTiedEmbedding(model)?.embedding === site.table.name ? report.head?.bits : undefined);
    const block = embeddingBlockSize(site.H, o.blockSize);
    if (block === undefined || siteBits === 32) continue;
    throwIfAborted(o.signal);
    o.onProgress?.({ step: 'quantize', done: report.layers.length, total: report.layers.length + 1, detail: site.table.name });
    quantizeEmbedding(model, site, { bits: siteBits, blockSize: block, symmetric: o.symmetric }, report, o.spill);
  }
}

/** Final touches after layers were rewritten: drop unused floats, declare the domain, record the method. */
export function finishQuantizedModel(model: Model, report: QuantizeReport): void {
  pruneInitializers(model);
  if (!model.opsetImports.some((x) => x.domain === 'com.microsoft')) model.opsetImports.push({ domain: 'com.microsoft', version: 1 });
  model.metadata[ALKI_METADATA_KEYS.quantization] = JSON.stringify({
    method: report.method,
    bits: report.bits,
    blockSize: report.blockSize,
    symmetric: report.symmetric,
    ...(report.head ? { headBits: report.head.bits } : {}),
    ...(report.embedding ? { embedBits: report.embedding.bits } : {}),
  });
}

/**
 * Round-to-nearest quantization of the constant-weight MatMul layers of an
 * ONNX model, in place, written as com.microsoft MatMulNBits. `none` returns
 * the model unchanged. For AWQ/GPTQ (calibration) use {@link createQuantizer}.
 *
 * @example
 * const { model, report } = quantize(onnxModel, { method: 'rtn', bits: 4, blockSize: 32, symmetric: false });
 */
export function quantize(model: Model, options: QuantizeOptions): { model: Model; report: QuantizeReport } {
  const run = rtnRun(model, options);
  if (!run.sites) return run.end();
  for (let i = 0; i < run.sites.length; i++) {
    const { rows, N, K, o } = run.start(i);
    run.finish(i, rtnPacked(rows, N, K, o));
  }
  return run.end();
}

/**
 * {@link quantize} for RTN with each weight's rows rounded on all cores (see {@link RtnPool}): the same bytes, about
 * `cores`× faster rounding. What {@link createQuantizer}'s `quantize()` runs for RTN.
 */
export async function quantizeParallel(model: Model, options: QuantizeOptions, threads?: number): Promise<{ model: Model; report: QuantizeReport }> {
  const run = rtnRun(model, options);
  if (!run.sites) return run.end();
  const pool = new RtnPool(threads);
  try {
    for (let i = 0; i < run.sites.length; i++) {
      const { rows, N, K, o } = run.start(i);
      run.finish(i, await pool.pack(rows, N, K, o));
    }
  } finally {
    await pool.close();
  }
  return run.end();
}

/** RTN's steps around the rounding of each linear, shared by the serial and the parallel path. */
function rtnRun(model: Model, options: QuantizeOptions) {
  const o = resolveQuantizeOptions(options);
  const report = emptyReport(o);
  const end = () => ({ model, report });
  if (o.method === 'none') return { end };
  if (o.method !== 'rtn')
    throw new AlkiError('BAD_OPTION', `${o.method} needs calibration data`, 'use createQuantizer(method, options).quantize(model, { calibration })');
  gemmToMatMul(model);
  const sites = selectLinears(model, o, report);
  const bits = bitsOf(o, report);
  return {
    sites,
    /** Rows [N, K] straight from the checkpoint when the export is lazy: no transpose, contiguous blocks. */
    start(i: number) {
      throwIfAborted(o.signal);
      const site = sites[i];
      const name = site.weight.name;
      o.onProgress?.({ step: 'quantize', done: i, total: sites.length, detail: name });
      const mseClip = !!o.mseClip && (options.mseClip !== undefined || bits(name) < 8);
      const blockSize = writtenBlockSize(site.K, o.blockSize, bits(name), o.symmetric);
      return { rows: readTransposed(site.weight), N: site.N, K: site.K, o: { bits: bits(name), blockSize, symmetric: o.symmetric, mseClip } };
    },
    finish(i: number, p: PackedRtn) {
      const site = sites[i];
      const name = site.weight.name;
      // A NaN error means a NaN or ±Inf weight: find and report it (a pass that costs nothing when all is well).
      if (Number.isNaN(p.relativeError)) assertFinite(name, site.weight.data as Float32Array);
      const tensors = {
        B: uint8Tensor(`${name}.qweight`, [p.N, p.nBlocks, (p.blockSize * p.bits) / 8], p.B),
        scales: floatTensor(`${name}.scales`, [p.N, p.nBlocks], p.scales),
        zeroPoints: p.zeroPoints && uint8Tensor(`${name}.zero_points`, [p.zeroPoints.length], p.zeroPoints),
      };
      replaceWithMatMulNBits(model, site, p, tensors, p.relativeError, o.accuracyLevel, report, o.spill);
    },
    end() {
      quantizeEmbeddings(model, o, report);
      o.onProgress?.({ step: 'quantize', done: sites.length, total: sites.length });
      finishQuantizedModel(model, report);
      return { model, report };
    },
  };
}
