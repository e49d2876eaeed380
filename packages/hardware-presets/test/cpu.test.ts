import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeCpu, parseCpuInfo, w8a8Saturates } from '../src/index.js';
import { detectCpu } from '../src/node.js';

const s8 = { type: 'int8', maxCode: 127 } as const;
const s7 = { type: 'int8', maxCode: 63 } as const;
const u8 = { type: 'uint8', maxCode: 127 } as const;
const stored = (name: string) => readFileSync(join(__dirname, 'fixtures', 'cpuinfo', name), 'utf8');

describe('parseCpuInfo on stored /proc/cpuinfo copies', () => {
  it('x86: a Sapphire Rapids KVM guest has AVX-512 VNNI, AVX-VNNI and AMX; a Zen 3 guest only AVX2 and FMA', () => {
    const spr = parseCpuInfo(stored('sapphire-rapids-kvm.txt'), 'x86_64');
    expect(spr).toEqual({
      model: 'Intel(R) Xeon(R) Processor',
      arch: 'x86_64',
      features: ['avx2', 'fma', 'avx512f', 'avx512bw', 'avx512_vnni', 'avx_vnni', 'avx512_bf16', 'amx'],
    });
    const zen3 = parseCpuInfo(stored('amd-epyc-zen3-kvm.txt'), 'x86_64');
    expect(zen3).toEqual({ model: 'AMD EPYC 7B13', arch: 'x86_64', features: ['avx2', 'fma'] });
    expect(describeCpu(zen3)).toBe('AMD EPYC 7B13 (avx2 fma)');
  });

  it('arm64: names the core from its part number; Pi 4 has NEON only, Pi 5 dotprod and fp16', () => {
    expect(parseCpuInfo(stored('raspberry-pi-4.txt'), 'arm64')).toEqual({ model: 'Cortex-A72', arch: 'arm64', features: ['neon'] });
    expect(parseCpuInfo(stored('raspberry-pi-5.txt'), 'arm64')).toEqual({ model: 'Cortex-A76', arch: 'arm64', features: ['neon', 'fp16', 'dotprod'] });
  });

  it('an empty or foreign text gives no features rather than a guess', () => {
    expect(parseCpuInfo('', 'x86_64')).toEqual({ model: '', arch: 'x86_64', features: [] });
    expect(parseCpuInfo('garbage without colons\n\x00\x01', 'arm64').features).toEqual([]);
  });

  it('detectCpu reads this machine (under pnpm test:isa: the emulated CPU)', () => {
    const c = detectCpu();
    expect(['x86_64', 'arm64', 'other']).toContain(c.arch);
    if (process.platform === 'linux') expect(c.model).not.toBe('');
    const tier = process.env.ALKI_ISA_TIER;
    if (tier === 'Haswell') expect(c).toMatchObject({ arch: 'x86_64', features: ['avx2', 'fma'] });
    if (tier === 'cortex-a72') expect(c).toEqual({ model: 'Cortex-A72', arch: 'arm64', features: ['neon'] });
    if (tier === 'cortex-a76') expect(c).toEqual({ model: 'Cortex-A76', arch: 'arm64', features: ['neon', 'fp16', 'dotprod'] });
  });
});

describe('w8a8Saturates: where onnxruntime’s u8×s8 kernel adds pairs of products in 16 bits', () => {
  it('x86 without VNNI saturates full-range int8 codes (2·255·127 > 32767) but not 7-bit ones (2·255·63 < 32767) nor uint8 ones', () => {
    const zen3 = parseCpuInfo(stored('amd-epyc-zen3-kvm.txt'), 'x86_64');
    expect(w8a8Saturates(zen3, s8)).toBe(true);
    expect(w8a8Saturates(zen3, s7)).toBe(false);
    expect(w8a8Saturates(zen3, u8)).toBe(false);
    expect(w8a8Saturates({ arch: 'x86_64', features: ['avx2', 'avx512f', 'avx512bw'] }, s8)).toBe(true);
  });

  it('VNNI, AVX-VNNI or AMX x86 and every arm64 core are exact', () => {
    expect(w8a8Saturates(parseCpuInfo(stored('sapphire-rapids-kvm.txt'), 'x86_64'), s8)).toBe(false);
    expect(w8a8Saturates({ arch: 'x86_64', features: ['avx2', 'avx_vnni'] }, s8)).toBe(false);
    expect(w8a8Saturates(parseCpuInfo(stored('raspberry-pi-4.txt'), 'arm64'), s8)).toBe(false);
    expect(w8a8Saturates({ arch: 'other', features: [] }, s8)).toBeUndefined();
  });
});
