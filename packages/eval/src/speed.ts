import { availableParallelism, platform, arch, totalmem } from 'node:os';
import { detectCpu } from '@alki/hardware-presets/node';
import { SeededRandom } from '@alki/core';
import { argmax, DecoderSession } from '@alki/runtime';
import { spread, type Spread } from './stats.js';

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
  return { cpu: c.model || 'unknown', arch: c.arch, features: c.features, cores: availableParallelism(), memoryBytes: totalmem(), os: `${platform()} ${arch()}`, node: process.version, onnxruntime: onnxruntimeVersion };
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
  const rng = new SeededRandom(o.seed ?? 0);
  const prompt = Array.from({ length: P }, () => 3 + rng.int(Math.max(1, o.vocabSize - 3)));
  const prefill: number[] = [];
  const decode: number[] = [];
  const ttft: number[] = [];
  try {
    for (let r = 0; r < warmupRuns + runs; r++) {
      const a = performance.now();
      const first = await session.forward([prompt], session.emptyCache(1), 0);
      let next = argmax(first.logits, (P - 1) * first.vocabSize, first.vocabSize);
      const b = performance.now();
      let past = first.present;
      for (let i = 0; i < N; i++) {
        const out = await session.forward([[next]], past, P + i);
        next = argmax(out.logits, 0, out.vocabSize);
        past = out.present;
      }
      const c = performance.now();
      if (r < warmupRuns) continue;
      prefill.push((P / (b - a)) * 1000);
      ttft.push(b - a);
      decode.push((N / (c - b)) * 1000);
    }
  } finally {
    await session.release();
  }
  return {
    prefillTokensPerSecond: spread(prefill),
    decodeTokensPerSecond: spread(decode),
    timeToFirstTokenMs: spread(ttft),
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
