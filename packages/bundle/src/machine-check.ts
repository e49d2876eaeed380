import { probeInt8Products } from '@alki/runtime';
import { w8a8Codes, type W8A8Format } from '@alki/quantizers';
import type { BundleManifest } from './manifest.js';

/**
 * What is known to go wrong when this bundle runs on this machine, as
 * sentences for the user (empty when nothing is). Today: W8A8 weights whose
 * int8 products onnxruntime's kernels add inexactly on this CPU — asked of
 * onnxruntime itself ({@link probeInt8Products}), so it also holds under
 * emulation. Bundles from before the format was recorded stored `s8`.
 */
export async function machineWarnings(m: BundleManifest): Promise<string[]> {
  const warnings: string[] = [];
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
