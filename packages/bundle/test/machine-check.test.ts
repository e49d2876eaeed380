import { describe, expect, it } from 'vitest';
import { w8a8Saturates } from '@alki/hardware-presets';
import { detectCpu } from '@alki/hardware-presets/node';
import { machineWarnings, type BundleManifest } from '../src/index.js';

// Part of `pnpm test:isa`: whether an s8 bundle draws a warning depends on the CPU.
const manifest = (quantization: Partial<BundleManifest['quantization']>) =>
  ({ quantization: { method: 'smoothquant', bits: 8, ...quantization } }) as BundleManifest;

describe('machineWarnings', () => {
  const cpu = detectCpu();
  const saturates = w8a8Saturates(cpu, { type: 'int8', maxCode: 127 });

  it(`an s8 W8A8 bundle is ${saturates ? '' : 'not '}flagged on this CPU (${cpu.model}: ${cpu.features.join(' ')}), with what to do`, async () => {
    const w = await machineWarnings(manifest({ w8a8Format: 's8' }));
    if (saturates === undefined) return;
    expect(w).toHaveLength(saturates ? 1 : 0);
    if (saturates) expect(w[0]).toMatch(/saturating 16-bit sums[\s\S]*Rebuild it with `--w8a8-format s7`/);
    // Bundles from before the format was recorded stored s8.
    expect(await machineWarnings(manifest({}))).toHaveLength(saturates ? 1 : 0);
  });

  it('s7 and u8 bundles, and weight-only ones, are never flagged', async () => {
    expect(await machineWarnings(manifest({ w8a8Format: 's7' }))).toEqual([]);
    expect(await machineWarnings(manifest({ w8a8Format: 'u8' }))).toEqual([]);
    expect(await machineWarnings(manifest({ method: 'rtn', bits: 4 }))).toEqual([]);
  });
});
