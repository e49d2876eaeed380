/** Instruction-set families Alki tells apart. */
export type CpuArch = 'x86_64' | 'arm64' | 'wasm' | 'other';

/**
 * What a CPU is, as far as onnxruntime's kernels care: MLAS picks its integer
 * and float kernels by these features, so they change both speed and — for
 * int8 — results (see {@link w8a8Saturates}).
 */
export interface CpuFacts {
  /** Marketing name ("AMD EPYC 7B13", "Cortex-A76"), or "" when the system does not say. */
  model: string;
  arch: CpuArch;
  /** Normalised names from {@link RESULT_FEATURES} that this CPU has, in that order. */
  features: string[];
}

/**
 * The features that change what onnxruntime computes or how fast, per arch, under Alki's names (the issue
 * tracker's and llama.cpp's): x86 `amx` is AMX-INT8; arm64 `neon` is ASIMD, `dotprod` the SDOT/UDOT
 * instructions (asimddp), `i8mm` the int8 matrix multiply (SMMLA).
 */
export const RESULT_FEATURES: Record<'x86_64' | 'arm64', readonly string[]> = {
  x86_64: ['avx2', 'fma', 'avx512f', 'avx512bw', 'avx512_vnni', 'avx_vnni', 'avx512_bf16', 'amx'],
  arm64: ['neon', 'fp16', 'dotprod', 'i8mm', 'bf16', 'sve'],
};

/** /proc/cpuinfo flag → Alki's name. */
const X86_FLAGS: Record<string, string> = {
  avx2: 'avx2',
  fma: 'fma',
  avx512f: 'avx512f',
  avx512bw: 'avx512bw',
  avx512_vnni: 'avx512_vnni',
  avx_vnni: 'avx_vnni',
  avx512_bf16: 'avx512_bf16',
  amx_int8: 'amx',
};
const ARM_FLAGS: Record<string, string> = { asimd: 'neon', asimdhp: 'fp16', asimddp: 'dotprod', i8mm: 'i8mm', bf16: 'bf16', sve: 'sve' };

/** Arm's "CPU part" numbers (implementer 0x41) of the cores edge boards ship with. */
const ARM_PARTS: Record<string, string> = {
  '0xd03': 'Cortex-A53',
  '0xd04': 'Cortex-A35',
  '0xd05': 'Cortex-A55',
  '0xd07': 'Cortex-A57',
  '0xd08': 'Cortex-A72',
  '0xd09': 'Cortex-A73',
  '0xd0a': 'Cortex-A75',
  '0xd0b': 'Cortex-A76',
  '0xd0c': 'Neoverse-N1',
  '0xd0d': 'Cortex-A77',
  '0xd40': 'Neoverse-V1',
  '0xd41': 'Cortex-A78',
  '0xd42': 'Cortex-A78AE',
  '0xd44': 'Cortex-X1',
  '0xd46': 'Cortex-A510',
  '0xd47': 'Cortex-A710',
  '0xd49': 'Neoverse-N2',
  '0xd4f': 'Neoverse-V2',
};

/** Node's `process.arch` → {@link CpuArch}. */
export function cpuArchOf(nodeArch: string): CpuArch {
  return nodeArch === 'x64' ? 'x86_64' : nodeArch === 'arm64' ? 'arm64' : 'other';
}

/**
 * Reads the text of Linux's /proc/cpuinfo: the model (x86 "model name"; arm64
 * the core named by "CPU part", as arm64 kernels print no model name) and the
 * features of the first processor (the kernel lists the ones all cores share
 * on every entry; big.LITTLE boards name their cores in their own entries).
 */
export function parseCpuInfo(text: string, arch: CpuArch): CpuFacts {
  const first = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i < 0) continue;
    const key = line.slice(0, i).trim().toLowerCase();
    if (key && !first.has(key)) first.set(key, line.slice(i + 1).trim());
  }
  const flags = new Set((first.get(arch === 'arm64' ? 'features' : 'flags') ?? first.get('flags') ?? first.get('features') ?? '').split(/\s+/).filter(Boolean));
  const names = arch === 'arm64' ? ARM_FLAGS : X86_FLAGS;
  const have = new Set(
    Object.entries(names)
      .filter(([flag]) => flags.has(flag))
      .map(([, name]) => name),
  );
  const order = arch === 'arm64' ? RESULT_FEATURES.arm64 : arch === 'x86_64' ? RESULT_FEATURES.x86_64 : [];
  let model = first.get('model name') ?? '';
  if (!model && arch === 'arm64') {
    const part = first.get('cpu part')?.toLowerCase();
    model = (first.get('cpu implementer')?.toLowerCase() === '0x41' && part && ARM_PARTS[part]) || (part ? `Arm core ${part}` : '');
  }
  return { model, arch, features: order.filter((f) => have.has(f)) };
}

/**
 * Whether onnxruntime's integer GEMM for dynamically quantized (uint8)
 * activations (DynamicQuantizeMatMul, MatMulInteger) can saturate on this CPU
 * for weights stored as `w`. On x86 without VNNI, MLAS multiplies uint8
 * activations by int8 weights with vpmaddubsw, which adds each pair of
 * products into a saturating int16: 2 · 255 · 127 overflows, 2 · 255 · 63
 * does not. uint8 weights take the u8×u8 kernel, which widens to 16 bits
 * first; VNNI (vpdpbusd) and AMX add into int32; arm64 (umull/sdot/smmla) and
 * wasm (widening i16 products) are exact. Returns undefined where Alki does
 * not know the CPU's kernels.
 */
export function w8a8Saturates(cpu: Pick<CpuFacts, 'arch' | 'features'>, w: { type: 'int8' | 'uint8'; maxCode: number }): boolean | undefined {
  if (cpu.arch === 'arm64' || cpu.arch === 'wasm') return false;
  if (cpu.arch !== 'x86_64') return undefined;
  if (w.type === 'uint8') return false;
  const exact = ['avx512_vnni', 'avx_vnni', 'amx'].some((f) => cpu.features.includes(f));
  return !exact && 2 * 255 * w.maxCode > 32767;
}

/** "Intel Xeon (avx2 avx512f avx512_vnni amx)" — a CPU as every report and alki.json names it. */
export function describeCpu(cpu: CpuFacts): string {
  return `${cpu.model || cpu.arch} (${cpu.features.length ? cpu.features.join(' ') : 'none of the listed features'})`;
}
