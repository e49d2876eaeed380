import { cpuArchOf, describeCpu, parseCpuInfo, type CpuFacts } from './cpu.js';
import { PRESETS, presetById, type HardwarePreset } from './presets.js';

/** What a machine says about itself: the texts of the files detection reads, and the OS's counts. */
export interface DeviceFacts {
  /** Node's `process.arch` ('x64', 'arm64', …). */
  nodeArch: string;
  /** `process.platform`. */
  platform: string;
  cores: number;
  /** /proc/cpuinfo. */
  cpuinfo?: string;
  /** /proc/device-tree/model (NUL-terminated on Linux boards). */
  deviceTreeModel?: string;
  /** /proc/device-tree/compatible (NUL-separated strings, most specific first). */
  deviceTreeCompatible?: string;
  /** /etc/nv_tegra_release (Jetson Linux). */
  tegraRelease?: string;
  /** /proc/meminfo, else the OS's totals. */
  meminfo?: string;
  totalMemoryBytes?: number;
  availableMemoryBytes?: number;
  /** The CPU's model when /proc/cpuinfo has none (os.cpus()[0].model). */
  cpuModel?: string;
}

/** The closest preset, and why. */
export interface Detection {
  preset: HardwarePreset;
  cpu: CpuFacts;
  cores: number;
  totalMemoryBytes?: number;
  availableMemoryBytes?: number;
  os: string;
  /** The facts that decided, as "source: value" lines. */
  decidedBy: string[];
  /** What the user should know: an unknown device, a mismatch with the preset. */
  notes: string[];
}

const clean = (s?: string) => s?.replace(/\0+/g, ' ').trim() || undefined;

/** Bytes of a /proc/meminfo field ("MemTotal:  8001234 kB"). */
function meminfoBytes(text: string | undefined, key: string): number | undefined {
  const m = text ? new RegExp(`^${key}:\\s+(\\d+)\\s*kB`, 'm').exec(text) : null;
  return m ? Number(m[1]) * 1024 : undefined;
}

/**
 * Picks the preset a machine is closest to from its facts, naming the facts that
 * decided: a Jetson by /etc/nv_tegra_release and its device-tree module id, a
 * Raspberry Pi by its device-tree model, an Intel NUC by its Core CPU and
 * features; anything else is generic-x86_64 or generic-arm64 with a note —
 * never a silent guess.
 */
export function choosePreset(f: DeviceFacts): Detection {
  const arch = cpuArchOf(f.nodeArch);
  const cpu = parseCpuInfo(f.cpuinfo ?? '', arch === 'other' ? 'x86_64' : arch);
  if (!cpu.model && f.cpuModel) cpu.model = f.cpuModel;
  if (!f.cpuinfo && arch === 'arm64') cpu.features = ['neon'];
  const model = clean(f.deviceTreeModel);
  const compatible = clean(f.deviceTreeCompatible);
  const total = meminfoBytes(f.meminfo, 'MemTotal') ?? f.totalMemoryBytes;
  const available = meminfoBytes(f.meminfo, 'MemAvailable') ?? f.availableMemoryBytes;
  const decidedBy: string[] = [];
  const notes: string[] = [];
  let preset: HardwarePreset | undefined;
  // Each branch below sets `preset`.

  if (f.tegraRelease || /nvidia,tegra234/.test(compatible ?? '')) {
    if (f.tegraRelease) decidedBy.push(`/etc/nv_tegra_release: ${clean(f.tegraRelease.split('\n')[0])}`);
    if (compatible) decidedBy.push(`/proc/device-tree/compatible: ${compatible}`);
    preset = PRESETS.find((p) => p.match?.tegraRelease && p.match.deviceTreeCompatible?.test(compatible ?? ''));
    if (!preset) {
      // An Orin module we do not know by id: the core count tells NX (8) from Nano (6).
      preset = presetById(f.cores >= 8 ? 'jetson-orin-nx' : 'jetson-orin-nano');
      notes.push(`this Jetson's module id is not one Alki knows; chose ${preset.id} by its ${f.cores} cores`);
    }
  } else if (model && PRESETS.some((p) => p.match?.deviceTreeModel?.test(model))) {
    preset = PRESETS.find((p) => p.match?.deviceTreeModel?.test(model))!;
    decidedBy.push(`/proc/device-tree/model: ${model}`);
  } else if (arch === 'x86_64') {
    const nuc = PRESETS.find((p) => p.match?.cpuModel?.test(cpu.model));
    if (nuc) {
      preset = nuc;
      decidedBy.push(`CPU: ${cpu.model}`);
    } else {
      preset = presetById('generic-x86_64');
      notes.push(`"${cpu.model || 'this CPU'}" is not a device Alki has a preset for: using generic-x86_64`);
    }
    decidedBy.push(`CPU features: ${cpu.features.join(' ') || 'none of the listed ones'}`);
    const vnni = ['avx512_vnni', 'avx_vnni', 'amx'].some((x) => cpu.features.includes(x));
    if (preset.id === 'generic-x86_64' && vnni)
      notes.push('this CPU has VNNI: W8A8 bundles built for it alone may use --w8a8-format s8 (exact here, 0.3 points better than s7)');
  } else if (arch === 'arm64') {
    preset = presetById('generic-arm64');
    decidedBy.push(`CPU: ${describeCpu(cpu)}`);
    notes.push(`${model ? `"${model}"` : 'this arm64 board'} is not a device Alki has a preset for: using generic-arm64`);
  } else {
    preset = presetById('generic-x86_64');
    notes.push(`Alki's runtime (onnxruntime-node) ships for x86-64 and arm64 only; this machine is ${f.nodeArch}`);
  }
  const chosen: HardwarePreset = preset!;
  if (f.cores && f.cores !== chosen.cores) notes.push(`this machine has ${f.cores} cores; the preset assumes ${chosen.cores}`);
  const missing = chosen.features.filter((x) => !cpu.features.includes(x) && chosen.arch === cpu.arch);
  if (f.cpuinfo && missing.length) notes.push(`the preset expects CPU features this machine lacks: ${missing.join(' ')}`);
  if (total) decidedBy.push(`memory: ${(total / 2 ** 30).toFixed(1)} GiB total${available ? `, ${(available / 2 ** 30).toFixed(1)} GiB available` : ''}`);
  return { preset: chosen, cpu, cores: f.cores, totalMemoryBytes: total, availableMemoryBytes: available, os: `${f.platform} ${f.nodeArch}`, decidedBy, notes };
}

/** The memory a preset should plan with: `--memory` when given, else the machine's when detected, else the preset's. */
export function plannedMemoryBytes(preset: HardwarePreset, o: { memoryBytes?: number; detected?: Detection } = {}): number {
  if (o.memoryBytes) return o.memoryBytes;
  if (o.detected?.preset.id === preset.id && o.detected.totalMemoryBytes) return o.detected.totalMemoryBytes;
  return preset.memoryGiB * 2 ** 30;
}
