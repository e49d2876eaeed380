import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { choosePreset, PRESETS, presetById, type DeviceFacts } from '../src/index.js';
import { detectDevice, readDeviceFacts } from '../src/node.js';

/** The stored files of one device, as readDeviceFacts would return them there. */
function facts(device: string): DeviceFacts {
  const dir = join(__dirname, 'fixtures', 'devices', device);
  const read = (f: string) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8') : undefined);
  const { nodeArch, cores } = JSON.parse(read('facts.json')!);
  return {
    nodeArch,
    platform: 'linux',
    cores,
    cpuinfo: read('cpuinfo'),
    deviceTreeModel: read('device-tree-model'),
    deviceTreeCompatible: read('device-tree-compatible'),
    tegraRelease: read('nv_tegra_release'),
    meminfo: read('meminfo'),
  };
}

describe('choosePreset on stored copies of each device’s files', () => {
  const cases: [string, string, RegExp][] = [
    ['raspberry-pi-4-4gb', 'raspberry-pi-4', /device-tree\/model: Raspberry Pi 4 Model B Rev 1\.4/],
    ['raspberry-pi-5-8gb', 'raspberry-pi-5', /device-tree\/model: Raspberry Pi 5 Model B/],
    ['jetson-orin-nano-8gb', 'jetson-orin-nano', /nv_tegra_release: # R36 \(release\)/],
    ['jetson-orin-nx-16gb', 'jetson-orin-nx', /compatible: nvidia,p3768-0000\+p3767-0000 nvidia,p3767-0000/],
    ['intel-nuc10-i5-10210u', 'intel-nuc-avx2', /CPU: Intel\(R\) Core\(TM\) i5-10210U/],
    ['intel-nuc11-i5-1135g7', 'intel-nuc-avx512', /CPU features: .*avx512_vnni/],
    ['intel-nuc12-i5-1240p', 'intel-nuc-avx-vnni', /CPU features: avx2 fma avx_vnni/],
  ];
  for (const [device, preset, decided] of cases) {
    it(`${device} → ${preset}, saying which facts decided`, () => {
      const d = choosePreset(facts(device));
      expect(d.preset.id).toBe(preset);
      expect(d.decidedBy.join('\n')).toMatch(decided);
      expect(d.decidedBy.join('\n')).toMatch(/memory: \d+\.\d GiB total, \d+\.\d GiB available/);
      expect(d.notes.filter((n) => /not a device Alki has a preset for/.test(n))).toEqual([]);
    });
  }

  it('the Pi 4 has NEON only and the Pi 5 dotprod; memory comes from /proc/meminfo', () => {
    const pi4 = choosePreset(facts('raspberry-pi-4-4gb'));
    expect(pi4.cpu).toMatchObject({ model: 'Cortex-A72', features: ['neon'] });
    expect(pi4.totalMemoryBytes).toBe(3884380 * 1024);
    expect(choosePreset(facts('raspberry-pi-5-8gb')).cpu.features).toContain('dotprod');
    expect(choosePreset(facts('jetson-orin-nano-8gb')).cpu.model).toBe('Cortex-A78AE');
  });

  it('unknown devices fall back to generic-* with a note, never silently', () => {
    const epyc = choosePreset(facts('amd-epyc-zen3-kvm'));
    expect(epyc.preset.id).toBe('generic-x86_64');
    expect(epyc.notes.join('\n')).toMatch(/"AMD EPYC 7B13" is not a device Alki has a preset for/);
    const graviton = choosePreset(facts('aws-graviton2'));
    expect(graviton.preset.id).toBe('generic-arm64');
    expect(graviton.notes.join('\n')).toMatch(/not a device Alki has a preset for: using generic-arm64/);
    expect(graviton.decidedBy.join('\n')).toMatch(/Neoverse-N1 \(neon fp16 dotprod\)/);
    // A Jetson with an unknown module id: chosen by cores, with a note.
    const odd = choosePreset({ ...facts('jetson-orin-nx-16gb'), deviceTreeCompatible: 'nvidia,p9999-0000\0nvidia,tegra234\0' });
    expect(odd.preset.id).toBe('jetson-orin-nx');
    expect(odd.notes.join('\n')).toMatch(/module id is not one Alki knows/);
    const riscv = choosePreset({ nodeArch: 'riscv64', platform: 'linux', cores: 4 });
    expect(riscv.notes.join('\n')).toMatch(/x86-64 and arm64 only/);
  });

  it('notes a machine that differs from its preset (cores, missing features)', () => {
    const nuc = choosePreset(facts('intel-nuc10-i5-10210u'));
    expect(nuc.notes.join('\n')).toMatch(/this machine has 8 cores; the preset assumes 4/);
    const stripped = choosePreset({ ...facts('intel-nuc11-i5-1135g7'), cpuinfo: facts('intel-nuc11-i5-1135g7').cpuinfo!.replace(/ avx512_vnni/g, '') });
    expect(stripped.notes.join('\n')).toMatch(/expects CPU features this machine lacks: avx512_vnni/);
  });

  it('detectDevice runs on this machine', () => {
    const d = detectDevice();
    expect(PRESETS.map((p) => p.id)).toContain(d.preset.id);
    expect(readDeviceFacts().cores).toBeGreaterThan(0);
  });
});

describe('presets as data', () => {
  it('every preset has every recommendation with its reason, and the sold memory variants', () => {
    const ids = PRESETS.map((p) => p.id);
    for (const id of [
      'raspberry-pi-4',
      'raspberry-pi-5',
      'jetson-orin-nano',
      'jetson-orin-nx',
      'intel-nuc-avx2',
      'intel-nuc-avx512',
      'generic-x86_64',
      'generic-arm64',
      'browser-wasm',
      'browser-webgpu',
    ])
      expect(ids).toContain(id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of PRESETS) {
      for (const [k, r] of Object.entries(p.recommended)) {
        expect(r.why.length, `${p.id}.${k}`).toBeGreaterThan(20);
        expect(r.value, `${p.id}.${k}`).toBeDefined();
      }
      expect(p.memoryVariantsGiB).toContain(p.memoryGiB);
      expect(p.usableMemoryFraction).toBeGreaterThan(0);
      expect(p.usableMemoryFraction).toBeLessThan(1);
    }
    expect(presetById('raspberry-pi-4').memoryVariantsGiB).toEqual([1, 2, 4, 8]);
    expect(() => presetById('pi-9')).toThrow(/unknown hardware preset "pi-9"/);
  });

  it('W8A8 formats follow the int8 kernels: s7 where x86 lacks VNNI, s8 on arm64, VNNI x86 and wasm', () => {
    for (const p of PRESETS) {
      const vnni = p.features.some((f) => ['avx512_vnni', 'avx_vnni', 'amx'].includes(f));
      expect(p.recommended.w8a8Format.value, p.id).toBe(p.arch === 'x86_64' && !vnni ? 's7' : 's8');
    }
  });
});
