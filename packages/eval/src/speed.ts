import { availableParallelism, platform, arch, totalmem } from 'node:os';
import { detectCpu } from '@alki/hardware-presets/node';
import { DecoderSession } from '@alki/runtime';
import { spread, type Spread } from './stats.js';
import { timeGeneration, type GenerationTimes } from './speed-loop.js';

/** How to measure speed. */
export interface SpeedOptions {
  /** Prompt tokens for prefill (default 128). */
  promptTokens?: number;
  /** New tokens decoded with the KV cache after the prefill (default 64). */
  newTokens?: number;
  /** Measured runs (default 5); the median and min–max are reported. */
  runs?: number;
  /** Unmeasured runs first (default 1). */
  warmupRuns?: number;
  /** Intra-op threads (default: all available cores). */
  threads?: number;
  /** Vocabulary to draw random prompt ids from. */
  vocabSize: number;
  seed?: number;
}

/** Where a figure was measured. */
export interface MachineInfo {
  cpu: string;
  /** x86_64, arm64, … */
  arch: string;
  /**
   * The CPU features that change onnxruntime's kernels, hence results (int8) or speed: avx2, fma, avx512f,
   * avx512bw, avx512_vnni, avx_vnni, avx512_bf16, amx; neon, fp16, dotprod, i8mm, bf16, sve (see
   * @alki/hardware-presets).
   */
  features: string[];
  cores: number;
  memoryBytes: number;
  os: string;
  node: string;
  onnxruntime: string;
}

export interface SpeedResult {
  prefillTokensPerSecond: Spread;
  decodeTokensPerSecond: Spread;
  timeToFirstTokenMs: Spread;
  /** Load time of the session (model file → ready), ms. */
  loadMs: number;
  promptTokens: number;
  newTokens: number;
  runs: number;
  warmupRuns: number;
  threads: number;
  executionProvider: string;
  machine: MachineInfo;
}

export function machineInfo(onnxruntimeVersion = '1.30.0'): MachineInfo {
  const c = detectCpu();
  return {
    cpu: c.model || 'unknown',
    arch: c.arch,
    features: c.features,
    cores: availableParallelism(),
    memoryBytes: totalmem(),
    os: `${platform()} ${arch()}`,
    node: process.version,
    onnxruntime: onnxruntimeVersion,
  };
}

/**
 * Measures prefill and decode speed of an ONNX decoder in this process. Timing
 * covers the model only (random prompt ids, no tokenizer). Time to first token
 * is the prefill plus choosing the token.
 */
export async function measureSpeed(modelPath: string, o: SpeedOptions): Promise<SpeedResult> {
  const threads = o.threads ?? availableParallelism();
  const t0 = performance.now();
  const session = await DecoderSession.load(modelPath, { threads });
  const loadMs = performance.now() - t0;
  const P = o.promptTokens ?? 128;
  const N = o.newTokens ?? 64;
  const runs = o.runs ?? 5;
  const warmupRuns = o.warmupRuns ?? 1;
  let times: GenerationTimes;
  try {
    times = await timeGeneration(session, { promptTokens: P, newTokens: N, runs, warmupRuns, seed: o.seed, vocabSize: o.vocabSize });
  } finally {
    await session.release();
  }
  return {
    prefillTokensPerSecond: spread(times.prefill),
    decodeTokensPerSecond: spread(times.decode),
    timeToFirstTokenMs: spread(times.ttft),
    loadMs,
    promptTokens: P,
    newTokens: N,
    runs,
    warmupRuns,
    threads,
    executionProvider: 'cpu',
    machine: machineInfo(),
  };
}
