import { openSync, readSync, closeSync, statSync } from 'node:fs';
import { availableParallelism, cpus, freemem, totalmem } from 'node:os';
import { cpuArchOf, parseCpuInfo, type CpuFacts } from './cpu.js';
import { choosePreset, type DeviceFacts, type Detection } from './detect.js';

export * from './index.js';

/** The start of a small system file (at most `max` bytes), or undefined when it is absent or not a regular file. */
function readSmall(path: string, max = 256 * 1024): string | undefined {
  try {
    // /proc files report size 0 but are regular; FIFOs and devices are not read.
    if (!statSync(path).isFile()) return undefined;
    const fd = openSync(path, 'r');
    try {
      const buf = Buffer.alloc(max);
      let n = 0;
      for (let r = 1; r > 0 && n < max; n += r) r = readSync(fd, buf, n, max - n, null);
      return buf.subarray(0, n).toString('utf8');
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
}

/**
 * The CPU this process runs on: /proc/cpuinfo on Linux, else the OS's model
 * name with the features every CPU of that arch has (x86-64: none assumed;
 * arm64: NEON). Under user-mode emulation (qemu) /proc/cpuinfo describes the
 * host unless the emulator is given another (tools/test-isa.mjs does): the
 * runtime's int8 probe asks onnxruntime itself.
 */
export function detectCpu(): CpuFacts {
  const arch = cpuArchOf(process.arch);
  const text = process.platform === 'linux' ? readSmall('/proc/cpuinfo', 4 * 1024 * 1024) : undefined;
  if (text) {
    const facts = parseCpuInfo(text, arch);
    return { ...facts, model: facts.model || cpus()[0]?.model || '' };
  }
  return { model: cpus()[0]?.model ?? '', arch, features: arch === 'arm64' ? ['neon'] : [] };
}

/** What this machine says about itself (the files {@link choosePreset} reads; absent ones stay undefined). */
export function readDeviceFacts(root = '/'): DeviceFacts {
  const at = (p: string) => readSmall(`${root.replace(/\/$/, '')}${p}`);
  return {
    nodeArch: process.arch,
    platform: process.platform,
    cores: availableParallelism(),
    cpuinfo: process.platform === 'linux' ? readSmall(`${root.replace(/\/$/, '')}/proc/cpuinfo`, 4 * 1024 * 1024) : undefined,
    deviceTreeModel: at('/proc/device-tree/model'),
    deviceTreeCompatible: at('/proc/device-tree/compatible'),
    tegraRelease: at('/etc/nv_tegra_release'),
    meminfo: at('/proc/meminfo'),
    totalMemoryBytes: totalmem(),
    availableMemoryBytes: freemem(),
    cpuModel: cpus()[0]?.model,
  };
}

/** Detects the machine this process runs on and the closest preset (see {@link choosePreset}). */
export function detectDevice(): Detection {
  return choosePreset(readDeviceFacts());
}
