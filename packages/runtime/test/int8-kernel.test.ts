import { describe, expect, it } from 'vitest';
import { w8a8Saturates } from '@alki/hardware-presets';
import { detectCpu } from '@alki/hardware-presets/node';
import { probeInt8Products } from '../src/index.js';

// Part of `pnpm test:isa`: the answer depends on the CPU onnxruntime runs on.
describe('probeInt8Products: what onnxruntime’s int8 kernel does on this CPU', () => {
  // Under `pnpm test:isa`, /proc/cpuinfo is the emulated CPU's (tools/test-isa.mjs).
  const cpu = detectCpu();

  it('7-bit int8 codes and uint8 codes come out exact on every CPU', async () => {
    expect(await probeInt8Products({ type: 'int8', maxCode: 63 })).toMatchObject({ exact: true });
    expect(await probeInt8Products({ type: 'uint8', maxCode: 127 })).toMatchObject({ exact: true });
  });

  it(`full-range int8 codes saturate exactly where the CPU's features say (${cpu.model}: ${cpu.features.join(' ')})`, async () => {
    const expected = w8a8Saturates(cpu, { type: 'int8', maxCode: 127 });
    const probe = await probeInt8Products({ type: 'int8', maxCode: 127 });
    if (expected === undefined) return; // an arch whose kernels Alki does not know: nothing to compare with
    expect(probe.exact).toBe(!expected);
    if (expected) expect(probe.relativeError).toBeGreaterThan(0.1);
  });
});
