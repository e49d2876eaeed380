import { availableParallelism } from 'node:os';
import { probeInt8Products } from '@alki/runtime';
import { w8a8Codes, type W8A8Format } from '@alki/quantizers';
import type { BundleManifest } from './manifest.js';
import type { BundleTarget } from './target.js';
import type { CpuFacts } from '@alki/hardware-presets';
import { detectCpu } from '@alki/hardware-presets/node';

/**
 * What is known to go wrong when this bundle runs on this machine, as
 * sentences for the user (empty when nothing is). Today: W8A8 weights whose
 * int8 products onnxruntime's kernels add inexactly on this CPU — asked of
 * onnxruntime itself ({@link probeInt8Products}), so it also holds under
 * emulation. Bundles from before the format was recorded stored `s8`.
 */
export async function machineWarnings(m: BundleManifest, cpu: CpuFacts = detectCpu()): Promise<string[]> {
  const warnings: string[] = [];
  // A bundle built for a device runs anywhere, but its settings were chosen for that device's CPU.
  const t = typeof m.target === 'object' && m.target !== null ? (m.target as Partial<BundleTarget>) : undefined;
  if (t?.preset && t.arch && t.arch !== 'wasm') {
    if (t.arch !== cpu.arch) {
      warnings.push(
        `this bundle was built for ${t.preset} (${t.arch}) and runs here on ${cpu.arch} (${cpu.model || 'unknown CPU'}): it works, but its settings were chosen for the other CPU; rebuild with --target auto for this machine`,
      );
    } else {
      const missing = (t.features ?? []).filter((f) => !cpu.features.includes(f));
      if (missing.length)
        warnings.push(
          `this bundle was built for ${t.preset}, whose CPU has ${missing.join(' ')}; this one (${cpu.model || 'unknown CPU'}) does not, so its kernels run slower than planned${missing.some((f) => /vnni|amx/.test(f)) && m.quantization.w8a8Format === 's8' ? ' and its s8 W8A8 weights may saturate' : ''}; rebuild with --target auto for this machine`,
        );
    }
  }
  if (m.quantization.method === 'smoothquant') {
    const format = (m.quantization.w8a8Format ?? 's8') as W8A8Format;
    const probe = await probeInt8Products(w8a8Codes(format));
    if (!probe.exact) {
      warnings.push(
        `this bundle's W8A8 weights are stored as ${format} (int8 codes up to ±127), and onnxruntime's int8 kernel on this CPU (x86 without VNNI) ` +
          `adds their products in saturating 16-bit sums: expect a real loss of accuracy (stories260K: +4.5% perplexity instead of +0.5%). ` +
          'Rebuild it with `--w8a8-format s7` (the default) or `u8`, which cannot saturate.',
      );
    }
  }
  return warnings;
}

/**
 * The onnxruntime threads a bundle built for a target runs with by default: the preset's, at most this machine's
 * cores (undefined: onnxruntime's default, every core).
 */
export function targetThreads(m: BundleManifest): number | undefined {
  const t = typeof m.target === 'object' && m.target !== null ? (m.target as Partial<BundleTarget>) : undefined;
  const threads = t?.settings?.threads;
  return typeof threads === 'number' && Number.isInteger(threads) && threads > 0 ? Math.min(threads, availableParallelism()) : undefined;
}
