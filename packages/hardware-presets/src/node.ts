import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { cpuArchOf, parseCpuInfo, type CpuFacts } from './cpu.js';

export * from './index.js';

/**
 * The CPU this process runs on: /proc/cpuinfo on Linux, else the OS's model
 * name with the features every CPU of that arch has (x86-64: none assumed;
 * arm64: NEON). Under user-mode emulation (qemu) /proc/cpuinfo describes the
 * host, not the emulated CPU: measure what onnxruntime does instead (the
 * runtime's int8 probe).
 */
export function detectCpu(): CpuFacts {
  const arch = cpuArchOf(process.arch);
  if (process.platform === 'linux') {
    try {
      const facts = parseCpuInfo(readFileSync('/proc/cpuinfo', 'utf8'), arch);
      return { ...facts, model: facts.model || cpus()[0]?.model || '' };
    } catch {
      // fall through: no /proc (containers without it, sandboxes)
    }
  }
  return { model: cpus()[0]?.model ?? '', arch, features: arch === 'arm64' ? ['neon'] : [] };
}
