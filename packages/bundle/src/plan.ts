import { AlkiError } from '@alki/core';
import type { DecoderConfig } from '@alki/models';
import type { HardwarePreset } from '@alki/hardware-presets';
import { estimateModelBytes } from './size-estimate.js';

/** A build a plan considers. */
export interface PlanChoice {
  label: string;
  method: 'none' | 'rtn' | 'gptq' | 'awq' | 'smoothquant';
  bits: 4 | 8 | 32;
  blockSize: number;
  headBits: 4 | 8 | 32;
}

/** One line of a plan: a choice, its bundle size, its peak memory at run time, and whether it fits. */
export interface PlanRow extends PlanChoice {
  bundleBytes: number;
  peakBytes: number;
  /** The parts of the peak: base, resident weights, KV cache, prompt activations. */
  parts: { baseBytes: number; weightBytes: number; kvBytes: number; activationBytes: number };
  fits: boolean;
}

export interface Plan {
  preset: HardwarePreset;
  memoryBytes: number;
  /** What a model may use: memory × the preset's usable fraction, capped by its address-space limit. */
  usableBytes: number;
  context: number;
  rows: PlanRow[];
  /** The preset's recommendation if it fits, else the best choice that does. */
  chosen?: PlanRow;
  /** When nothing fits: what would (a shorter context, a smaller model). */
  suggestion?: string;
}

/**
 * How much memory `alki run` holds at its peak, as measured with onnxruntime-node 1.30 on this project's build
 * machine (Intel Xeon Sapphire Rapids, AVX-512 VNNI + AMX, 2026-11-27; docs/models.md, "Memory at run time"):
 * - a base of Node, onnxruntime and a session with its arena: 130 MB (stories260K at its full 512-token context);
 * - the weights, by format, as a multiple of their bytes on disk (external data; TinyLlama shape): onnxruntime
 *   prepacks MatMulNBits and DynamicQuantizeMatMul weights into its own layout, and maps external data;
 * - the KV cache twice (a step holds its past and its present; with the cache updated in place, the buffer and the
 *   copy onnxruntime-node hands back);
 * - the prompt's logits twice (the output and its copy).
 * Other CPUs pack weights differently; `pnpm bench:memory` measures the model against `alki run` on any machine.
 */
export const RUN_MEMORY = {
  baseBytes: 130e6,
  residency: { fp32: 1.0, int8: 1.22, w8a8: 0.85, int4: 1.35 } as const,
  kvCopies: 2,
  logitCopies: 2,
  promptTokens: 128,
};

/** Bytes of the fp32 KV cache at `context` tokens. */
export function kvCacheBytes(c: DecoderConfig, context: number): number {
  return 2 * c.numLayers * c.numKvHeads * c.headDim * 4 * context;
}

/**
 * Peak resident memory of `alki run` with a bundle of `choice` at `context` tokens: a prompt of
 * min(128, context / 4) tokens, then decoding until the context is full (see {@link RUN_MEMORY}).
 */
export function estimateRunMemory(
  c: DecoderConfig,
  choice: Pick<PlanChoice, 'method' | 'bits' | 'blockSize' | 'headBits'>,
  context: number,
): PlanRow['parts'] & { peakBytes: number; bundleBytes: number } {
  // SmoothQuant leaves the embedding table in float.
  const embedBits = choice.method === 'smoothquant' ? 32 : undefined;
  const awq = choice.method === 'awq';
  const bundleBytes = estimateModelBytes(c, choice.bits, choice.blockSize, choice.headBits, embedBits, 2, awq);
  // The residencies were measured on bundles with float32 scales, which is what a session holds after folding the
  // float16 scales' Cast: the weights in memory are counted with 4-byte scales.
  const loadedBytes = estimateModelBytes(c, choice.bits, choice.blockSize, choice.headBits, embedBits, 4, awq);
  const format = choice.method === 'smoothquant' ? 'w8a8' : choice.bits === 32 ? 'fp32' : choice.bits === 8 ? 'int8' : 'int4';
  const prompt = Math.min(RUN_MEMORY.promptTokens, Math.max(1, Math.floor(context / 4)));
  const parts = {
    baseBytes: RUN_MEMORY.baseBytes,
    weightBytes: Math.round(loadedBytes * RUN_MEMORY.residency[format]),
    kvBytes: RUN_MEMORY.kvCopies * kvCacheBytes(c, context),
    activationBytes: RUN_MEMORY.logitCopies * prompt * c.vocabSize * 4,
  };
  return { ...parts, bundleBytes, peakBytes: parts.baseBytes + parts.weightBytes + parts.kvBytes + parts.activationBytes };
}

/** The choices a plan weighs, best quality first within each width. */
function choices(p: HardwarePreset): PlanChoice[] {
  const r = p.recommended;
  const m = r.method.value === 'none' ? 'rtn' : r.method.value;
  return [
    { label: 'fp32', method: 'none', bits: 32, blockSize: 32, headBits: 32 },
    { label: `${m} int8`, method: m, bits: 8, blockSize: 32, headBits: 8 },
    { label: `smoothquant w8a8 (${r.w8a8Format.value})`, method: 'smoothquant', bits: 8, blockSize: 32, headBits: 8 },
    { label: `${m} int4 b${r.blockSize.value}`, method: m, bits: 4, blockSize: r.blockSize.value, headBits: r.headBits.value },
    ...(r.blockSize.value !== 128 ? [{ label: `${m} int4 b128`, method: m, bits: 4 as const, blockSize: 128, headBits: r.headBits.value }] : []),
    { label: `${m} int4 b128, int4 head`, method: m, bits: 4, blockSize: 128, headBits: 4 },
  ];
}

/**
 * Which builds of a model fit a target: for every method and width, the bundle size and the peak memory at run
 * time against the preset's usable memory (`memoryBytes` overrides the preset's size). Uses the config alone —
 * no weights are needed.
 */
export function planBuilds(c: DecoderConfig, preset: HardwarePreset, o: { memoryBytes?: number; context?: number } = {}): Plan {
  const memoryBytes = o.memoryBytes ?? preset.memoryGiB * 2 ** 30;
  if (!(memoryBytes > 0) || !Number.isFinite(memoryBytes))
    throw new AlkiError('BAD_OPTION', `--memory must be a positive size, got ${memoryBytes}`, 'e.g. --memory 4GB');
  const usableBytes = usableMemory(preset, memoryBytes);
  const context = o.context ?? Math.min(c.maxPositions, preset.recommended.context.value);
  if (!Number.isInteger(context) || context < 2 || context > c.maxPositions) {
    throw new AlkiError(
      'BAD_OPTION',
      `--context must be a whole number from 2 to the model's ${c.maxPositions}, got ${context}`,
      'leave it out to use the preset’s context',
    );
  }
  const rows = choices(preset).map((ch): PlanRow => {
    const e = estimateRunMemory(c, ch, context);
    return {
      ...ch,
      bundleBytes: e.bundleBytes,
      peakBytes: e.peakBytes,
      parts: { baseBytes: e.baseBytes, weightBytes: e.weightBytes, kvBytes: e.kvBytes, activationBytes: e.activationBytes },
      fits: e.peakBytes <= usableBytes,
    };
  });
  const r = preset.recommended;
  const wanted = rows.find(
    (x) => x.method !== 'smoothquant' && x.bits === r.bits.value && x.blockSize === r.blockSize.value && x.headBits === r.headBits.value,
  );
  // The recommendation when it fits; else the first (best) choice of the fewest bits that fits.
  const chosen = wanted?.fits ? wanted : ([...rows].reverse().find((x) => x.fits && x.method !== 'smoothquant') ?? rows.find((x) => x.fits));
  let suggestion: string | undefined;
  if (!rows.some((x) => x.fits)) {
    const smallest = rows[rows.length - 1];
    const fixed = smallest.peakBytes - smallest.parts.kvBytes - smallest.parts.activationBytes;
    const perToken = RUN_MEMORY.kvCopies * kvCacheBytes(c, 1);
    const maxContext = Math.floor((usableBytes - fixed) / perToken);
    suggestion =
      maxContext >= 256
        ? `even ${smallest.label} needs ${gb(smallest.peakBytes)} at ${context} tokens; with --context ${Math.min(maxContext, context - 1)} it fits`
        : `even ${smallest.label}'s weights (${gb(fixed)}) exceed the ${gb(usableBytes)} usable on ${preset.id}: choose a smaller model, or a device with more memory (--memory)`;
  }
  return { preset, memoryBytes, usableBytes, context, rows, chosen, suggestion };
}

const gb = (b: number) => `${(b / 1e9).toFixed(2)} GB`;

/** Whole bytes a model may take on a device with `memoryBytes`: the preset's share, within its address space. */
export function usableMemory(preset: HardwarePreset, memoryBytes: number): number {
  return Math.floor(Math.min(memoryBytes * preset.usableMemoryFraction, (preset.addressSpaceLimitGiB ?? Infinity) * 2 ** 30));
}

/** Parses "4GB", "512MB", "8GiB", "4" (GiB) into whole bytes; memory is sold in binary units, so GB means GiB here. */
export function parseMemory(s: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(k|m|g|t)?i?b?\s*$/i.exec(String(s));
  if (!m) throw new AlkiError('BAD_OPTION', `--memory "${s}" is not a size`, 'write it like 4GB, 512MB or 8GiB');
  const unit = (m[2] ?? 'g').toLowerCase() as 'k' | 'm' | 'g' | 't';
  const bytes = Number(m[1]) * 1024 ** { k: 1, m: 2, g: 3, t: 4 }[unit];
  if (!(bytes >= 1e6)) throw new AlkiError('BAD_OPTION', `--memory "${s}" is smaller than 1 MB`, 'write it like 4GB, 512MB or 8GiB');
  return Math.round(bytes);
}
