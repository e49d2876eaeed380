import { AlkiError } from '@alki/core';
import type { DecoderConfig } from '@alki/models';
import type { HardwarePreset } from '@alki/hardware-presets';
import type { QuantizeOptions } from '@alki/quantizers';
import { estimateRunMemory, usableMemory } from './plan.js';

/** The settings a preset decides (and a user may override). */
export interface TargetSettings {
  method: 'none' | 'rtn' | 'awq' | 'gptq' | 'smoothquant';
  bits: 4 | 8 | 32;
  blockSize: number;
  accuracyLevel: 0 | 4;
  headBits: 4 | 8 | 32;
  w8a8Format: 's8' | 's7' | 'u8';
  flavour: 'ort' | 'portable';
  threads: number;
  context: number;
}

/** What alki.json records of the target a bundle was built for. */
export interface BundleTarget {
  preset: string;
  name: string;
  arch: string;
  features: string[];
  executionProviders: string[];
  memoryBytes: number;
  usableBytes: number;
  settings: TargetSettings;
  /** The settings the user chose against the preset. */
  overrides: (keyof TargetSettings)[];
  /** Peak memory of `alki run` at `settings.context` (see RUN_MEMORY); `forcedFit` when above the usable memory. */
  estimatedPeakBytes: number;
  forcedFit?: boolean;
}

/**
 * A preset's settings with the user's explicit choices on top: `explicit` holds only what the user set; a choice
 * that differs from the preset is an override, and is reported.
 */
export function targetSettings(preset: HardwarePreset, explicit: Partial<TargetSettings>): { settings: TargetSettings; overrides: (keyof TargetSettings)[] } {
  const r = preset.recommended;
  const base: TargetSettings = {
    method: r.method.value,
    bits: r.bits.value,
    blockSize: r.blockSize.value,
    accuracyLevel: r.accuracyLevel.value,
    headBits: r.headBits.value,
    w8a8Format: r.w8a8Format.value,
    flavour: r.flavour.value,
    threads: r.threads.value,
    context: r.context.value,
  };
  const settings = { ...base };
  const overrides: (keyof TargetSettings)[] = [];
  for (const [k, v] of Object.entries(explicit) as [keyof TargetSettings, never][]) {
    if (v === undefined) continue;
    if (v !== base[k]) overrides.push(k);
    (settings as Record<string, unknown>)[k] = v;
  }
  // A method without widths of its own keeps its natural ones: SmoothQuant is 8-bit, none is fp32.
  if (settings.method === 'smoothquant' && explicit.bits === undefined) settings.bits = 8;
  if (settings.method === 'none') settings.bits = 32;
  return { settings, overrides };
}

/** The quantizer options of target settings. */
export function quantizeOptionsOf(s: TargetSettings): Omit<QuantizeOptions, 'onProgress' | 'signal'> {
  if (s.method === 'none') return { method: 'none' };
  if (s.method === 'smoothquant') return { method: 'smoothquant', w8a8Format: s.w8a8Format, headBits: s.headBits === 4 ? 8 : s.headBits };
  return { method: s.method, bits: s.bits as 4 | 8, blockSize: s.blockSize, accuracyLevel: s.accuracyLevel, headBits: s.headBits };
}

/**
 * Checks that a build fits its target and says what alki.json records: the estimated peak memory of `alki run` at
 * the target's context against the preset's usable memory. Refuses with what would fit unless `forceFit`.
 */
export function checkTargetFit(
  c: DecoderConfig,
  preset: HardwarePreset,
  s: TargetSettings,
  o: { memoryBytes?: number; forceFit?: boolean; overrides: (keyof TargetSettings)[] },
): BundleTarget {
  const memoryBytes = o.memoryBytes ?? preset.memoryGiB * 2 ** 30;
  const usableBytes = usableMemory(preset, memoryBytes);
  const context = Math.min(s.context, c.maxPositions);
  const e = estimateRunMemory(c, { method: s.method, bits: s.bits, blockSize: s.blockSize, headBits: s.headBits }, context);
  const fits = e.peakBytes <= usableBytes;
  if (!fits && !o.forceFit) {
    const gb = (b: number) => `${(b / 1e9).toFixed(2)} GB`;
    throw new AlkiError(
      'TOO_LARGE',
      `this build needs about ${gb(e.peakBytes)} at run time (${context} tokens of context) but ${preset.id} has ${gb(usableBytes)} usable of ${gb(memoryBytes)}`,
      `see what fits with \`alki plan <model> --target ${preset.id}\` (fewer bits, a shorter --context, a smaller model); --force-fit builds it anyway`,
    );
  }
  return {
    preset: preset.id,
    name: preset.name,
    arch: preset.arch,
    features: preset.features,
    executionProviders: preset.executionProviders,
    memoryBytes,
    usableBytes,
    settings: { ...s, context },
    overrides: o.overrides,
    estimatedPeakBytes: e.peakBytes,
    ...(fits ? {} : { forcedFit: true }),
  };
}
