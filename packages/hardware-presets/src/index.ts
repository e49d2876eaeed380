export { parseCpuInfo, cpuArchOf, w8a8Saturates, describeCpu, RESULT_FEATURES } from './cpu.js';
export type { CpuFacts, CpuArch } from './cpu.js';
export { PRESETS, presetById } from './presets.js';
export type { HardwarePreset, Why, ExecutionProvider } from './presets.js';
export { choosePreset, plannedMemoryBytes } from './detect.js';
export type { DeviceFacts, Detection } from './detect.js';
