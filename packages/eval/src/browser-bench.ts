import { AlkiError, isAlkiError, type ProgressCallback } from '@alki/core';
import { Decoder, ortMessage, tokenizerFromJson, type TensorConstructor, type TextTokenizer } from '@alki/runtime/web';
import type { InferenceSession } from 'onnxruntime-common';
import type { BundleSource } from './bundle-source.js';
import { validateEvaluateOptions, type MeasureNumbers } from './options.js';
import { evaluateQuality } from './quality.js';
import { makeReport, type EvalTarget, type Evaluation, type EvaluationReport } from './report.js';
import type { MachineInfo, SpeedResult } from './speed.js';
import { timeGeneration } from './speed-loop.js';
import { spread } from './stats.js';
import { assertComparable, chooseWindows } from './windows.js';

/** The parts of onnxruntime-web a benchmark uses (pass the module: `import * as ort from 'onnxruntime-web'`). */
export interface OrtWeb {
  InferenceSession: { create(model: Uint8Array, options?: InferenceSession.SessionOptions): Promise<InferenceSession> };
  Tensor: TensorConstructor;
  env: { versions?: { web?: string }; wasm: { numThreads?: number } };
}

export type BrowserBackend = 'wasm' | 'webgpu';

export interface BrowserBenchOptions extends MeasureNumbers {
  ort: OrtWeb;
  backend: BrowserBackend;
  /** WASM threads (default: navigator.hardwareConcurrency; 1 without cross-origin isolation). */
  threads?: number;
  bundle: BundleSource;
  /** The reference for ratios, KL and top-1 (usually the fp32 bundle). */
  baseline?: BundleSource;
  /** Evaluation text for alki-ppl-v1 perplexity; without it, windows are sampled from the baseline. */
  text?: { name: string; content: string };
  maxPerplexityIncrease?: number;
  onProgress?: ProgressCallback;
}

/** How the browser run went, beside the figures. */
export interface BrowserRunInfo {
  userAgent: string;
  backend: BrowserBackend;
  threads: number;
  crossOriginIsolated: boolean;
  onnxruntimeWeb: string;
  /** The WebGPU adapter (vendor, architecture) when the backend is webgpu: SwiftShader is Chromium's software one. */
  gpu?: string;
  /** Where the memory figures come from (the page's memory, not a process's RSS). */
  memoryMethod?: string;
}

export type BrowserReport = EvaluationReport & { browser: BrowserRunInfo };

/** WASM memory is addressed with 32 bits: a model whose files pass this cannot be loaded. */
export const WASM_MAX_BYTES = 4 * 1024 ** 3;

interface LoadedBundle {
  target: EvalTarget;
  decoder: Decoder;
  tokenizer: TextTokenizer;
  /** tokenizer.json's text: a baseline must have the same. */
  tokenizerKey: string;
  loadMs: number;
  maxPositions?: number;
}

/**
 * Measures a bundle in the browser with onnxruntime-web, as `alki bench` does in Node: alki-ppl-v1 perplexity,
 * KL and top-1 against a baseline, prefill and decode tokens/s, time to first token, session creation time and
 * the page's memory. Browser-safe: everything is read through {@link BundleSource}.
 */
export async function benchmarkInBrowser(o: BrowserBenchOptions): Promise<BrowserReport> {
  validateEvaluateOptions(o);
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
  const cores = globalThis.navigator?.hardwareConcurrency ?? 1;
  // Without cross-origin isolation there is no SharedArrayBuffer, so onnxruntime-web runs one thread.
  const threads = o.backend === 'wasm' ? (isolated ? (o.threads ?? cores) : 1) : 1;
  if (o.backend === 'wasm') {
    // onnxruntime-web reads numThreads once, when its WASM starts: a later run of the same page cannot change it.
    if (wasmThreads !== undefined && wasmThreads !== threads) {
      throw new AlkiError(
        'BAD_OPTION',
        `this page already started onnxruntime-web with ${wasmThreads} thread${wasmThreads === 1 ? '' : 's'}; it cannot switch to ${threads}`,
        'reload the page to measure with another thread count',
      );
    }
    o.ort.env.wasm.numThreads = wasmThreads = threads;
  }
  const gpu = o.backend === 'webgpu' ? await checkWebGpu() : undefined;
  trackWasmMemory();
  const progress = (detail: string) => o.onProgress?.({ step: 'browser', done: 0, total: 1, detail });
  progress(`loading ${o.bundle.label}`);
  const target = await loadBundle(o.ort, o.bundle, o.backend);
  let baseline: LoadedBundle | undefined;
  try {
    if (o.baseline) {
      progress(`loading ${o.baseline.label}`);
      baseline = await loadBundle(o.ort, o.baseline, o.backend);
    }
    if (baseline)
      assertComparable(
        { name: target.target.dir, vocabSize: target.decoder.vocabSize, tokenizer: target.tokenizerKey },
        { name: baseline.target.dir, vocabSize: baseline.decoder.vocabSize, tokenizer: baseline.tokenizerKey },
      );
    const evaluation: Evaluation = { target: target.target };
    const base: Evaluation | undefined = baseline ? { target: baseline.target } : undefined;
    const machine = browserMachine(o.ort);
    await explainRunErrors(o.bundle.label, async () => {
      if (o.metrics.includes('perplexity')) {
        const text = o.text && { name: `${o.text.name} (sha256 ${(await sha256Hex(o.text.content)).slice(0, 12)}…)`, content: o.text.content };
        const windows = await chooseWindows({ ...o, maxPositions: target.maxPositions }, target.tokenizer, text, baseline?.decoder);
        const q = await evaluateQuality([target.decoder], windows, { baseline: baseline?.decoder, onProgress: o.onProgress });
        evaluation.quality = q.results[0];
        if (base && q.baseline) base.quality = q.baseline;
      }
      if (o.metrics.includes('speed')) {
        for (const [e, b] of [[evaluation, target], ...(base && baseline ? [[base, baseline] as const] : [])] as const) {
          progress(`speed of ${e.target.name}`);
          e.speed = await browserSpeed(b, o, threads, machine);
        }
      }
    });
    const memory = o.metrics.includes('memory') ? wasmHeapBytes() : undefined;
    if (memory !== undefined) evaluation.memory = { peakRssBytes: memory, startRssBytes: 0 };
    const report = makeReport([evaluation], base, machine, o.maxPerplexityIncrease);
    return {
      ...report,
      browser: {
        userAgent: globalThis.navigator?.userAgent ?? 'unknown',
        backend: o.backend,
        threads,
        crossOriginIsolated: isolated,
        onnxruntimeWeb: o.ort.env.versions?.web ?? 'unknown',
        ...(gpu ? { gpu } : {}),
        ...(evaluation.memory
          ? {
              memoryMethod: `the size of onnxruntime-web's WebAssembly memory after the run (it only grows, so this is its peak; every model loaded${baseline ? ', the baseline too' : ''}${o.backend === 'webgpu' ? '; GPU buffers are not in it' : ''}), not a process's RSS`,
            }
          : {}),
      },
    };
  } finally {
    await target.decoder.session.release();
    await baseline?.decoder.session.release();
  }
}

let wasmThreads: number | undefined;

/** The WebGPU adapter's vendor and architecture, or a clear error when there is none. */
async function checkWebGpu(): Promise<string> {
  const gpu = (globalThis.navigator as { gpu?: { requestAdapter(): Promise<{ info?: { vendor?: string; architecture?: string } } | null> } } | undefined)?.gpu;
  const hint = 'use --backend wasm, or a browser with WebGPU (Chrome or Edge 113+; headless Chromium needs --enable-unsafe-webgpu)';
  if (!gpu) throw new AlkiError('RUNTIME', 'this browser has no WebGPU (navigator.gpu is missing)', hint);
  const adapter = await gpu.requestAdapter();
  if (!adapter) throw new AlkiError('RUNTIME', 'this browser has WebGPU but no adapter (no usable GPU or driver)', hint);
  return [adapter.info?.vendor, adapter.info?.architecture].filter(Boolean).join(' ') || 'unknown adapter';
}

/** Failures while running, as a person reads them: 2-D zero points are what Alki wrote before 1-D. */
async function explainRunErrors(label: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    if (/MatMulNBits.*cannot convert shape/i.test(String((e as Error)?.message))) {
      throw new AlkiError(
        'RUNTIME',
        `onnxruntime-web's WebGPU MatMulNBits cannot run ${label}: its zero points are 2-D, as Alki wrote them before version 0.2`,
        'rebuild the bundle with this Alki (zero points are 1-D now), or measure it with --backend wasm',
      );
    }
    throw e;
  }
}

const wasmMemories = new Set<WebAssembly.Memory>();
let tracking = false;

/**
 * Remembers every WebAssembly memory the page creates from now on (onnxruntime-web creates its heap at the first
 * session, in JavaScript for the threaded build, exported by the module otherwise). A memory only grows, so its
 * size at the end is its peak. performance.measureUserAgentSpecificMemory() was the other way: it waited about a
 * minute for a garbage collection here, for a figure of the whole page.
 */
function trackWasmMemory(): void {
  if (tracking || typeof WebAssembly === 'undefined') return;
  tracking = true;
  const W = WebAssembly as unknown as Record<string, unknown>;
  W.Memory = new Proxy(WebAssembly.Memory, {
    construct(target, args) {
      const m = Reflect.construct(target, args) as WebAssembly.Memory;
      wasmMemories.add(m);
      return m;
    },
  });
  const keep = (r: unknown) => {
    const exports = ((r as { instance?: WebAssembly.Instance }).instance ?? (r as WebAssembly.Instance)).exports;
    for (const v of Object.values(exports ?? {})) if (v instanceof WebAssembly.Memory) wasmMemories.add(v);
    return r;
  };
  for (const name of ['instantiate', 'instantiateStreaming'] as const) {
    const original = WebAssembly[name] as (...a: unknown[]) => Promise<unknown>;
    if (typeof original === 'function') W[name] = (...a: unknown[]) => original.apply(WebAssembly, a).then(keep);
  }
}

/** Bytes of the largest WebAssembly memory seen (onnxruntime-web's heap), or undefined. */
function wasmHeapBytes(): number | undefined {
  let max = 0;
  for (const m of wasmMemories) max = Math.max(max, m.buffer.byteLength);
  return max || undefined;
}

function browserMachine(ort: OrtWeb): MachineInfo {
  const nav = globalThis.navigator as (Navigator & { deviceMemory?: number; userAgentData?: { platform?: string } }) | undefined;
  return {
    cpu: 'browser (the CPU is not visible to a page)',
    arch: 'wasm',
    features: [],
    cores: nav?.hardwareConcurrency ?? 1,
    memoryBytes: (nav?.deviceMemory ?? 0) * 1024 ** 3,
    os: nav?.userAgentData?.platform ?? nav?.platform ?? 'unknown',
    node: nav?.userAgent ?? 'unknown',
    onnxruntime: `web ${ort.env.versions?.web ?? 'unknown'}`,
  };
}

/** A bundle-relative path from alki.json: relative, `/`-separated, no `..`. */
function safePath(p: unknown): p is string {
  return (
    typeof p === 'string' &&
    p.length > 0 &&
    p.length < 4096 &&
    !p.startsWith('/') &&
    !p.includes('\\') &&
    p.split('/').every((s) => s !== '' && s !== '.' && s !== '..')
  );
}

interface ManifestView {
  name: string;
  method: string;
  bits: number;
  blockSize: number | null;
  modelPath: string;
  externalData: string[];
  fileBytes: Map<string, number>;
  maxPositions?: number;
}

/** The few fields of alki.json a browser run needs, checked (nothing read is trusted). */
function readManifest(bytes: Uint8Array, label: string): ManifestView {
  const bad = (what: string) => new AlkiError('BAD_BUNDLE', `${label}/alki.json ${what}`, 'the bundle is damaged or not an Alki bundle: build it again');
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
  } catch {
    throw bad('is not valid JSON');
  }
  if (!m || typeof m !== 'object' || m.schemaVersion !== 1)
    throw bad(`has schema version ${JSON.stringify((m as { schemaVersion?: unknown })?.schemaVersion)}, not 1`);
  const model = m.model as Record<string, unknown> | undefined;
  const q = (m.quantization ?? {}) as Record<string, unknown>;
  if (!model || !safePath(model.path)) throw bad('names no model file inside the bundle');
  const ext = model.externalData;
  if (!Array.isArray(ext) || !ext.every(safePath)) throw bad('has a model.externalData that is not a list of paths inside the bundle');
  const files = Array.isArray(m.files) ? (m.files as { path?: unknown; bytes?: unknown }[]) : [];
  const fileBytes = new Map<string, number>();
  for (const f of files) if (safePath(f?.path) && Number.isSafeInteger(f.bytes) && (f.bytes as number) >= 0) fileBytes.set(f.path, f.bytes as number);
  const method = typeof q.method === 'string' ? q.method : 'unknown';
  const bits = typeof q.bits === 'number' ? q.bits : 32;
  const blockSize = typeof q.groupSize === 'number' ? q.groupSize : null;
  const maxPositions = typeof model.maxPositions === 'number' && Number.isSafeInteger(model.maxPositions) ? model.maxPositions : undefined;
  const name = method === 'none' ? 'fp32' : `${method} int${bits}${blockSize ? ` g${blockSize}` : ''}`;
  return { name, method, bits, blockSize, modelPath: model.path as string, externalData: ext as string[], fileBytes, maxPositions };
}

async function loadBundle(ort: OrtWeb, source: BundleSource, backend: BrowserBackend): Promise<LoadedBundle> {
  const m = readManifest(await source.read('alki.json', 64 * 2 ** 20), source.label);
  const modelFiles = [m.modelPath, ...m.externalData];
  const declared = modelFiles.reduce((s, p) => s + (m.fileBytes.get(p) ?? 0), 0);
  if (declared > WASM_MAX_BYTES) {
    throw new AlkiError(
      'TOO_LARGE',
      `${source.label} has ${(declared / 1e9).toFixed(2)} GB of model files, more than the 4 GB a WebAssembly memory can address`,
      'build a smaller bundle for the browser: fewer bits (--bits 4), a smaller model, or `--target browser-wasm`',
    );
  }
  // Each file no larger than alki.json says (nothing read is trusted), all of them within what WASM addresses.
  const cap = (p: string) => Math.min(m.fileBytes.get(p) ?? WASM_MAX_BYTES, WASM_MAX_BYTES);
  const model = await source.read(m.modelPath, cap(m.modelPath));
  const externalData = [];
  for (const p of m.externalData) externalData.push({ path: p.split('/').pop()!, data: await source.read(p, cap(p)) });
  const loaded = model.byteLength + externalData.reduce((s, e) => s + e.data.byteLength, 0);
  if (loaded > WASM_MAX_BYTES)
    throw new AlkiError(
      'TOO_LARGE',
      `${source.label}'s model files hold ${(loaded / 1e9).toFixed(2)} GB, more than the 4 GB a WebAssembly memory can address`,
      'build a smaller bundle for the browser (fewer bits, a smaller model)',
    );
  const t0 = performance.now();
  let session: InferenceSession;
  try {
    session = await ort.InferenceSession.create(model, {
      executionProviders: [backend],
      graphOptimizationLevel: 'all',
      ...(externalData.length ? { externalData } : {}),
    });
  } catch (e) {
    throw webLoadError(e, source.label, backend, loaded);
  }
  const loadMs = performance.now() - t0;
  const parse = (path: string, text: string): Record<string, unknown> => {
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new AlkiError('TOKENIZER', `${source.label}/${path} is not valid JSON`, 'the bundle is damaged: build or copy it again');
    }
  };
  const side = async (path: string) => (m.fileBytes.has(path) ? parse(path, new TextDecoder().decode(await source.read(path, 64 * 2 ** 20))) : undefined);
  // tokenizer.json's text is also what a baseline is compared by (the same tokenizer, byte for byte).
  const tokenizerText = new TextDecoder().decode(await source.read('tokenizer.json', 512 * 2 ** 20));
  const tokenizer = tokenizerFromJson(
    {
      tokenizer: parse('tokenizer.json', tokenizerText),
      tokenizerConfig: await side('tokenizer_config.json'),
      generationConfig: await side('generation_config.json'),
      config: await side('config.json'),
    },
    source.label,
  );
  const decoder = new Decoder(session, ort.Tensor);
  const modelBytes = modelFiles.reduce((s, p) => s + (m.fileBytes.get(p) ?? 0), 0) || loaded;
  const bundleBytes = [...m.fileBytes.values()].reduce((s, b) => s + b, 0) || modelBytes;
  const target: EvalTarget = {
    name: m.name,
    dir: source.label,
    modelPath: `${source.label.replace(/\/+$/, '')}/${m.modelPath}`,
    method: m.method,
    bits: m.bits,
    blockSize: m.blockSize,
    modelBytes,
    bundleBytes,
  };
  return { target, decoder, tokenizer, tokenizerKey: tokenizerText, loadMs, maxPositions: m.maxPositions };
}

/** onnxruntime-web's load failures as a person reads them: a missing kernel names the op and what to do. */
function webLoadError(e: unknown, label: string, backend: BrowserBackend, bytes: number): AlkiError {
  if (isAlkiError(e)) return e;
  const msg = ortMessage(e);
  if (/out of memory|memory access out of bounds|Aborted\(|RangeError: Array buffer allocation/i.test(msg)) {
    return new AlkiError(
      'TOO_LARGE',
      `onnxruntime-web ran out of memory loading ${label} (${(bytes / 1e9).toFixed(2)} GB of model files; a WebAssembly memory holds at most 4 GB, and the browser may allow less)`,
      'build a smaller bundle for the browser (fewer bits, a smaller model, `--target browser-wasm`), or close other tabs',
    );
  }
  if (/Only 2b and 4b quantization is supported for MatMulNBits/i.test(msg)) {
    return new AlkiError(
      'RUNTIME',
      `onnxruntime-web's ${backend} MatMulNBits runs only 2- and 4-bit weights, and ${label} has 8-bit layers (an 8-bit lm_head is the default: --head-bits 8)`,
      `rebuild it with --head-bits 4 (or --target browser-${backend}), or measure it with --backend wasm`,
    );
  }
  const op =
    /(?:implementation for|kernel for|not supported[^:]*:?)\s*'?([A-Za-z0-9_]+)\(?/i.exec(msg)?.[1] ?? /op(?:erator)? type:? '?([A-Za-z0-9_]+)/i.exec(msg)?.[1];
  if (op && /implementation|kernel|not supported|unsupported|unrecognized/i.test(msg)) {
    return new AlkiError(
      'RUNTIME',
      `onnxruntime-web (${backend}) cannot run ${label}: it has no ${op} kernel (${msg})`,
      `build the bundle for the browser (\`alki build … --target browser-${backend === 'webgpu' ? 'webgpu' : 'wasm'}\`), or try --backend ${backend === 'webgpu' ? 'wasm' : 'webgpu'}`,
    );
  }
  return new AlkiError(
    'RUNTIME',
    `onnxruntime-web (${backend}) could not load ${label}: ${msg}`,
    'check the bundle with `alki info --verify`; if it verifies, the browser runtime may lack an op the graph uses (try another --backend or --target browser-wasm)',
  );
}

/** The text's sha256 as Node's evaluateTargets names it (crypto.subtle: browsers and Node alike). */
async function sha256Hex(text: string): Promise<string> {
  const digest = await globalThis.crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

async function browserSpeed(b: LoadedBundle, o: BrowserBenchOptions, threads: number, machine: MachineInfo): Promise<SpeedResult> {
  const P = o.speed?.promptTokens ?? 128;
  const N = o.speed?.newTokens ?? 64;
  const runs = o.speed?.runs ?? 5;
  const warmupRuns = o.speed?.warmupRuns ?? 1;
  const vocabSize = b.decoder.vocabSize ?? b.tokenizer.vocabSize;
  const times = await timeGeneration(b.decoder, { promptTokens: P, newTokens: N, runs, warmupRuns, vocabSize });
  return {
    prefillTokensPerSecond: spread(times.prefill),
    decodeTokensPerSecond: spread(times.decode),
    timeToFirstTokenMs: spread(times.ttft),
    loadMs: b.loadMs,
    promptTokens: P,
    newTokens: N,
    runs,
    warmupRuns,
    threads,
    executionProvider: o.backend,
    machine,
  };
}
