import type { CpuArch } from './cpu.js';

/** A recommendation and the one sentence that says why (with the measurement behind it, where there is one). */
export interface Why<T> {
  value: T;
  why: string;
}

/** Execution providers Alki's bundles name (onnxruntime's names, lower case). */
export type ExecutionProvider = 'cpu' | 'cuda' | 'tensorrt' | 'wasm' | 'webgpu';

/**
 * A target device as data: what it is (ISA features, cores, memory it is sold with, execution providers) and
 * what to build for it. Every recommendation carries its reason. See docs/hardware.md for the schema and how to
 * add a device.
 */
export interface HardwarePreset {
  /** Stable id, used by `--target` and recorded in alki.json. */
  id: string;
  name: string;
  /** The instruction set the bundle's CPU kernels run on ('wasm' for a browser tab). */
  arch: CpuArch;
  /** CPU features in @alki/hardware-presets' names (see RESULT_FEATURES); for browsers, the wasm features used. */
  features: string[];
  /** CPU cores (big cores where a board mixes them). */
  cores: number;
  /** Memory the device is sold with, in GiB; `memoryGiB` is the one assumed unless `--memory` says otherwise. */
  memoryVariantsGiB: number[];
  memoryGiB: number;
  /** How much of the memory a model may take; the rest is the OS, other programs, (browser) the page. */
  usableMemoryFraction: number;
  /** Hard limit of one process's (or wasm instance's) memory, in GiB, whatever the device has. */
  addressSpaceLimitGiB?: number;
  executionProviders: ExecutionProvider[];
  /** How to recognise the device (see detect.ts); empty for generic presets and browsers. */
  match?: { deviceTreeModel?: RegExp; deviceTreeCompatible?: RegExp; tegraRelease?: boolean; cpuModel?: RegExp };
  recommended: {
    method: Why<'rtn' | 'awq' | 'gptq' | 'smoothquant' | 'none'>;
    bits: Why<4 | 8 | 32>;
    blockSize: Why<16 | 32 | 64 | 128 | 256>;
    accuracyLevel: Why<0 | 4>;
    headBits: Why<4 | 8 | 32>;
    /** The weight format if W8A8 (SmoothQuant) is chosen instead. */
    w8a8Format: Why<'s8' | 's7' | 'u8'>;
    flavour: Why<'ort' | 'portable'>;
    threads: Why<number>;
    context: Why<number>;
    /** The most memory the KV cache may take, MiB (it is sized by context × layers × kv heads × head dim). */
    kvCacheBudgetMiB: Why<number>;
  };
  /** Caveats a user should read before trusting the recommendation. */
  notes?: string[];
}

// Reasons shared by several presets; each cites the measurement in docs/.
const GPTQ =
  'GPTQ cuts min/max RTN int4’s perplexity increase on stories260K by 42% with text calibration, 38% without (docs/quantization.md), and beats RTN with searched ranges (+6.1% against +8.7%, docs/performance.md), at no cost at run time';
const INT4 = 'int4 weights are 27% of fp32 and decode 6.2× faster than fp32 on a TinyLlama-shaped model (docs/models.md): edge decoding is memory-bound';
const BLOCK32 =
  'block 32 is GPTQ’s better measured quality (+4.65% on stories260K against +5.50% at block 128, seeds 0–2, docs/quantization.md); a plain `alki build` uses block 128, which on an Intel Xeon with AVX-512 VNNI (no AMX) prefills 1.45× and decodes 1.17× faster in 10% fewer bytes (docs/performance.md), not timed on this target';
const ACC4 = 'accuracy level 4 (int8 activations inside MatMulNBits) makes int4 decode 2.3× faster for +0.1% perplexity (docs/decisions.md)';
const HEAD8 = 'an 8-bit lm_head keeps all but 0.02 points of a float head’s quality for 3.6% more bytes (docs/decisions.md)';
const S8_EXACT = 's8 W8A8 weights are exact on this CPU (no 16-bit pair saturation) and 0.3 points better than s7 on stories260K (docs/decisions.md)';
const S7_SAFE = 's7 cannot saturate onnxruntime’s int8 kernels on x86 without VNNI, where s8 lost 4.5% perplexity (docs/decisions.md)';
const ORT = 'the ort flavour (GroupQueryAttention, fused norms) decodes 7% faster than portable at int4 and is what onnxruntime runs best (docs/models.md)';
const KV = (mib: number, ctx: number) =>
  `${mib} MiB holds a ${ctx}-token fp32 KV cache of a TinyLlama-sized model (22 layers × 4 kv heads × 64 dims: 44 KiB per token) with room to spare`;

const cpuRecommendation = (o: {
  threads: number;
  cores: string;
  context: number;
  kvMiB: number;
  w8a8: 's8' | 's7';
  w8a8Why: string;
  ctxWhy: string;
}): HardwarePreset['recommended'] => ({
  method: { value: 'gptq', why: GPTQ },
  bits: { value: 4, why: INT4 },
  blockSize: { value: 32, why: BLOCK32 },
  accuracyLevel: { value: 4, why: ACC4 },
  headBits: { value: 8, why: HEAD8 },
  w8a8Format: { value: o.w8a8, why: o.w8a8Why },
  flavour: { value: 'ort', why: ORT },
  threads: { value: o.threads, why: `one onnxruntime thread per ${o.cores} core: decode is bandwidth-bound and more threads than cores only contend` },
  context: { value: o.context, why: o.ctxWhy },
  kvCacheBudgetMiB: { value: o.kvMiB, why: KV(o.kvMiB, o.context) },
});

/** The presets Alki knows, in the order `alki presets` lists them. */
export const PRESETS: readonly HardwarePreset[] = [
  {
    id: 'raspberry-pi-4',
    name: 'Raspberry Pi 4 Model B (BCM2711, 4 × Cortex-A72)',
    arch: 'arm64',
    features: ['neon'],
    cores: 4,
    memoryVariantsGiB: [1, 2, 4, 8],
    memoryGiB: 4,
    usableMemoryFraction: 0.75,
    executionProviders: ['cpu'],
    match: { deviceTreeModel: /Raspberry Pi 4|Raspberry Pi Compute Module 4|Raspberry Pi 400/ },
    recommended: cpuRecommendation({
      threads: 4,
      cores: 'Cortex-A72',
      context: 1024,
      kvMiB: 64,
      w8a8: 's8',
      w8a8Why: `${S8_EXACT}; the A72 has no dotprod, so int8 runs on 16-bit multiply-accumulate`,
      ctxWhy: 'a 1,024-token context keeps the KV cache small on boards sold with 1–2 GB',
    }),
    notes: [
      'No dotprod: int8 and int4 kernels are slower than on a Pi 5 per clock (measure with `alki bench` on the board).',
      'A 1 GB board fits only the smallest models (stories-sized, Qwen2.5-0.5B does not fit at int4 with a useful context).',
    ],
  },
  {
    id: 'raspberry-pi-5',
    name: 'Raspberry Pi 5 (BCM2712, 4 × Cortex-A76)',
    arch: 'arm64',
    features: ['neon', 'fp16', 'dotprod'],
    cores: 4,
    memoryVariantsGiB: [1, 2, 4, 8, 16],
    memoryGiB: 8,
    usableMemoryFraction: 0.75,
    executionProviders: ['cpu'],
    match: { deviceTreeModel: /Raspberry Pi 5|Raspberry Pi Compute Module 5|Raspberry Pi 500/ },
    recommended: cpuRecommendation({
      threads: 4,
      cores: 'Cortex-A76',
      context: 2048,
      kvMiB: 128,
      w8a8: 's8',
      w8a8Why: `${S8_EXACT}; the A76's dotprod (sdot) accumulates in 32 bits`,
      ctxWhy: 'TinyLlama’s full 2,048-token context fits beside its int4 weights on a 4 GB board',
    }),
  },
  {
    id: 'jetson-orin-nano',
    name: 'NVIDIA Jetson Orin Nano (6 × Cortex-A78AE, Ampere GPU)',
    arch: 'arm64',
    features: ['neon', 'fp16', 'dotprod'],
    cores: 6,
    memoryVariantsGiB: [4, 8],
    memoryGiB: 8,
    usableMemoryFraction: 0.7,
    executionProviders: ['cuda', 'tensorrt', 'cpu'],
    match: { tegraRelease: true, deviceTreeCompatible: /nvidia,p3767-000[345]/ },
    recommended: cpuRecommendation({
      threads: 6,
      cores: 'Cortex-A78AE',
      context: 4096,
      kvMiB: 256,
      w8a8: 's8',
      w8a8Why: `${S8_EXACT}; the A78AE has dotprod`,
      ctxWhy: 'memory is shared with the GPU: 4,096 tokens leave room for both on the 8 GB module',
    }),
    notes: [
      'The recommendation is for the CPU execution provider, which Alki measures. The CUDA EP runs MatMulNBits int4 too, but Alki has not measured it on a Jetson: `alki bench` on the board decides.',
      'CPU and GPU share the same memory: the GPU takes its weights out of the same budget.',
    ],
  },
  {
    id: 'jetson-orin-nx',
    name: 'NVIDIA Jetson Orin NX (8 × Cortex-A78AE, Ampere GPU)',
    arch: 'arm64',
    features: ['neon', 'fp16', 'dotprod'],
    cores: 8,
    memoryVariantsGiB: [8, 16],
    memoryGiB: 16,
    usableMemoryFraction: 0.7,
    executionProviders: ['cuda', 'tensorrt', 'cpu'],
    match: { tegraRelease: true, deviceTreeCompatible: /nvidia,p3767-000[01]/ },
    recommended: cpuRecommendation({
      threads: 8,
      cores: 'Cortex-A78AE',
      context: 4096,
      kvMiB: 512,
      w8a8: 's8',
      w8a8Why: `${S8_EXACT}; the A78AE has dotprod`,
      ctxWhy: 'with 16 GB shared memory a 4,096-token context costs little',
    }),
    notes: ['The 8 GB module has 6 cores: pass --threads 6 there. The CUDA EP is not measured by Alki yet.'],
  },
  {
    id: 'intel-nuc-avx2',
    name: 'Intel NUC with AVX2 only (8th–10th gen Core: Coffee/Comet Lake)',
    arch: 'x86_64',
    features: ['avx2', 'fma'],
    cores: 4,
    memoryVariantsGiB: [8, 16, 32, 64],
    memoryGiB: 16,
    usableMemoryFraction: 0.75,
    executionProviders: ['cpu'],
    match: { cpuModel: /Core\(TM\) i[357]-(8|10)\d{3}U/ },
    recommended: cpuRecommendation({
      threads: 4,
      cores: 'physical',
      context: 4096,
      kvMiB: 512,
      w8a8: 's7',
      w8a8Why: S7_SAFE,
      ctxWhy: 'desktop-class memory: a 4,096-token context is cheap',
    }),
  },
  {
    id: 'intel-nuc-avx512',
    name: 'Intel NUC with AVX-512 and VNNI (11th gen Core: Tiger Lake)',
    arch: 'x86_64',
    features: ['avx2', 'fma', 'avx512f', 'avx512bw', 'avx512_vnni'],
    cores: 4,
    memoryVariantsGiB: [8, 16, 32, 64],
    memoryGiB: 16,
    usableMemoryFraction: 0.75,
    executionProviders: ['cpu'],
    match: { cpuModel: /Core\(TM\) i[357]-11\d{2}G\d/ },
    recommended: cpuRecommendation({
      threads: 4,
      cores: 'physical',
      context: 4096,
      kvMiB: 512,
      w8a8: 's8',
      w8a8Why: `${S8_EXACT}; AVX-512 VNNI accumulates in 32 bits`,
      ctxWhy: 'desktop-class memory: a 4,096-token context is cheap',
    }),
  },
  {
    id: 'intel-nuc-avx-vnni',
    name: 'Intel NUC with AVX-VNNI (12th–13th gen Core: Alder/Raptor Lake)',
    arch: 'x86_64',
    features: ['avx2', 'fma', 'avx_vnni'],
    cores: 4,
    memoryVariantsGiB: [8, 16, 32, 64],
    memoryGiB: 16,
    usableMemoryFraction: 0.75,
    executionProviders: ['cpu'],
    match: { cpuModel: /Core\(TM\) i[357]-1[23]\d{2}P/ },
    recommended: cpuRecommendation({
      threads: 4,
      cores: 'performance',
      context: 4096,
      kvMiB: 512,
      w8a8: 's8',
      w8a8Why: `${S8_EXACT}; AVX-VNNI accumulates in 32 bits`,
      ctxWhy: 'desktop-class memory: a 4,096-token context is cheap',
    }),
    notes: ['Hybrid CPUs: threads on efficiency cores slow the performance cores down; the recommendation counts P-cores only.'],
  },
  {
    id: 'generic-x86_64',
    name: 'Any x86-64 CPU (features unknown)',
    arch: 'x86_64',
    features: ['avx2', 'fma'],
    cores: 4,
    memoryVariantsGiB: [4, 8, 16, 32],
    memoryGiB: 8,
    usableMemoryFraction: 0.7,
    executionProviders: ['cpu'],
    recommended: cpuRecommendation({
      threads: 4,
      cores: 'physical',
      context: 2048,
      kvMiB: 256,
      w8a8: 's7',
      w8a8Why: S7_SAFE,
      ctxWhy: 'a 2,048-token context is the common size of small models',
    }),
  },
  {
    id: 'generic-arm64',
    name: 'Any arm64 CPU (features unknown)',
    arch: 'arm64',
    features: ['neon'],
    cores: 4,
    memoryVariantsGiB: [2, 4, 8, 16],
    memoryGiB: 4,
    usableMemoryFraction: 0.7,
    executionProviders: ['cpu'],
    recommended: cpuRecommendation({
      threads: 4,
      cores: 'big',
      context: 2048,
      kvMiB: 128,
      w8a8: 's8',
      w8a8Why: `${S8_EXACT}; every arm64 int8 kernel accumulates without 16-bit pair saturation`,
      ctxWhy: 'a 2,048-token context is the common size of small models',
    }),
  },
  {
    id: 'browser-wasm',
    name: 'A browser tab, onnxruntime-web WASM (SIMD, threads when cross-origin isolated)',
    arch: 'wasm',
    features: ['simd128', 'threads'],
    cores: 4,
    memoryVariantsGiB: [4],
    memoryGiB: 4,
    usableMemoryFraction: 0.6,
    addressSpaceLimitGiB: 4,
    executionProviders: ['wasm'],
    recommended: {
      method: {
        value: 'smoothquant',
        why: 'W8A8 is the fastest format in WASM: an 8-layer, 1024-wide Llama decodes 33.4 tok/s with 2 threads as W8A8, 30.2 as fp32, 4.3 as int8 and 3.8 as int4 MatMulNBits, whose WASM kernel has no fast path (AVX-512 VNNI Xeon, docs/web.md)',
      },
      bits: {
        value: 8,
        why: 'W8A8 is 8-bit; a 1B model is then ~1.5 GB, inside the 4 GB a wasm32 memory addresses (int4 would be smaller to download but ~9× slower to run)',
      },
      blockSize: { value: 32, why: BLOCK32 },
      accuracyLevel: { value: 4, why: 'onnxruntime-web ignores the accuracy level (TOOLCHAIN), so level 4 costs nothing there and helps the bundle elsewhere' },
      headBits: { value: 8, why: HEAD8 },
      w8a8Format: { value: 's8', why: 'wasm’s integer products widen to 16 bits per product before adding, so s8 cannot saturate' },
      flavour: { value: 'ort', why: 'onnxruntime-web runs the ort flavour’s fused ops; portable adds nothing a browser needs' },
      threads: { value: 4, why: 'multithreaded wasm needs COOP/COEP headers (alki bench --browser serves them); without them it is 1 thread' },
      context: { value: 1024, why: 'the wasm heap is shared by weights, KV cache and activations within 4 GB' },
      kvCacheBudgetMiB: { value: 64, why: KV(64, 1024) },
    },
    notes: [
      'onnxruntime-web 1.30’s WASM MatMulNBits (int4 and int8 weight-only) decodes ~8× slower than fp32 (docs/web.md): if the download size matters more than speed, `--quantize gptq --bits 4` still runs; measure with `alki bench --browser`.',
    ],
  },
  {
    id: 'browser-webgpu',
    name: 'A browser tab with WebGPU (onnxruntime-web webgpu EP)',
    arch: 'wasm',
    features: ['webgpu'],
    cores: 4,
    memoryVariantsGiB: [4, 8, 16],
    memoryGiB: 8,
    usableMemoryFraction: 0.5,
    addressSpaceLimitGiB: 4,
    executionProviders: ['webgpu', 'wasm'],
    recommended: {
      method: { value: 'gptq', why: GPTQ },
      bits: { value: 4, why: 'the bundle is downloaded and the wasm side still holds the graph: int4 keeps both small' },
      blockSize: { value: 32, why: BLOCK32 },
      accuracyLevel: { value: 4, why: 'ignored by the WebGPU kernels; level 4 helps the same bundle on CPUs' },
      headBits: {
        value: 4,
        why: 'onnxruntime-web 1.30’s WebGPU MatMulNBits runs only 2- and 4-bit weights: an 8-bit head does not load there (measured with `alki bench --browser --backend webgpu`, docs/web.md)',
      },
      w8a8Format: { value: 's8', why: 'W8A8 (DynamicQuantizeMatMul) runs on the wasm side in a browser, where s8 is exact' },
      flavour: { value: 'ort', why: 'onnxruntime-web’s WebGPU EP has GroupQueryAttention, MatMulNBits and the fused norms' },
      threads: { value: 4, why: 'CPU threads only run what the GPU does not' },
      context: { value: 2048, why: 'GPU memory, not the wasm heap, holds the KV cache' },
      kvCacheBudgetMiB: { value: 128, why: KV(128, 2048) },
    },
    notes: ['Chromium’s software WebGPU adapter runs in CI; real GPUs vary: measure with `alki bench --browser --backend webgpu`.'],
  },
];

/** A preset by id; throws with the list when there is none. */
export function presetById(id: string): HardwarePreset {
  const p = PRESETS.find((x) => x.id === id);
  if (!p) throw new Error(`unknown hardware preset "${id}"; known: ${PRESETS.map((x) => x.id).join(', ')}`);
  return p;
}
