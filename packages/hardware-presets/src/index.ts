export { parseCpuInfo, cpuArchOf, w8a8Saturates, describeCpu, RESULT_FEATURES } from './cpu.js';
export type { CpuFacts, CpuArch } from './cpu.js';
