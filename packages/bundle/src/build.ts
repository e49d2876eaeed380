import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { AlkiError, throwIfAborted, type ProgressCallback } from '@alki/core';
import { runWorker } from '@alki/core/node';
import { readExportFlavour, readModelFile, TensorSpill, writeModelFile, type Model } from '@alki/onnx';
import {
  countParameters,
  defaultCacheDir,
  exportModel,
  isOnnxModelFolder,
  openHfModel,
  openOnnxModelFolder,
  PORTABLE_OPSET,
  type GraphFlavour,
  type HfModel,
  type OnnxModelFolder,
} from '@alki/models';
import {
  calibrationFromText,
  createQuantizer,
  FolderCheckpoint,
  quantizeParallel,
  readCalibrationFile,
  resolveQuantizeOptions,
  tableBits,
  type CalibrationData,
  type QuantizeOptions,
  type QuantizeReport,
} from '@alki/quantizers';
import { loadTokenizer } from '@alki/runtime';
import { evaluateTargets, formatMarkdown, type EvalTarget, type EvaluateOptions, type EvaluationReport } from '@alki/eval';
import { assertWritableBundleDir, tempSibling, writeDirAtomically } from './atomic-dir.js';
import { bundleEvalTarget } from './eval-target.js';
import { manifestMetrics } from './metrics.js';
import { hashFile } from './hash.js';
import { SCHEMA_VERSION, serializeManifest, type BundleManifest } from './manifest.js';
import { bundleReadme } from './readme.js';
import { checkTokenizer, smokeTest, workerPath } from './preflight.js';
import { checkTargetFit, type BundleTarget, type TargetSettings } from './target.js';
import type { HardwarePreset } from '@alki/hardware-presets';

import { ALKI_VERSION } from './version.js';
import { listFiles } from './list-files.js';
import { graphFileName, transformersJsDtype, withTransformersJsConfig } from './transformers-js.js';

export interface BuildBundleOptions {
  /** A local HF model folder. */
  modelDir: string;
  /** Where the bundle goes. */
  out: string;
  /** Name recorded as the source id (default: the folder's name). */
  sourceId?: string;
  revision?: string;
  commitSha?: string;
  quantize: Omit<QuantizeOptions, 'onProgress' | 'signal'>;
  /** Graph flavour: 'ort' (default, onnxruntime's fused ops) or 'portable' (the float graph in standard ONNX ops; quantized layers stay com.microsoft ops). */
  flavour?: GraphFlavour;
  /** 'auto' (default) puts weights in onnx/model<suffix>.onnx_data above 64 MiB. */
  externalData?: 'auto' | 'always' | 'never';
  /** Replace an existing bundle at `out`. */
  overwrite?: boolean;
  /**
   * AWQ, GPTQ: continue an interrupted build of the same model, options and calibration after its last finished
   * layer (recorded in Alki's cache under checkpoints/), with identical output. Without it, a recorded checkpoint
   * is replaced. The checkpoint is deleted when the build succeeds.
   */
  resume?: boolean;
  /** Alki's cache folder (checkpoints; default {@link defaultCacheDir}). */
  cacheDir?: string;
  /**
   * Run the written model on a few tokens before committing it (default true; see smokeTest). It runs in its own
   * process and needs what running the model needs (6.65 GB for a 7B int4 bundle, against 1.05 GB for the rest of
   * its build): turn it off to build on a machine that cannot run the model.
   */
  testRun?: boolean;
  /** Calibration for AWQ/GPTQ: a text/JSONL file, or (default) text sampled from the model (an int4 copy of it). */
  calibration?: CalibrationOptions;
  /** Measure the bundle (against an fp32 baseline) before it is committed. */
  benchmark?: BenchmarkOptions;
  /**
   * The device the bundle is for: its settings (see {@link targetSettings}; `quantize` and `flavour` should be the
   * same settings) are checked to fit its memory and recorded in alki.json, which `alki run` / `bench` read.
   */
  target?: { preset: HardwarePreset; settings: TargetSettings; overrides: (keyof TargetSettings)[]; memoryBytes?: number; forceFit?: boolean };
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

/** Calibration samples by default and with `quick` (see {@link CalibrationOptions.samples}). */
export const CALIBRATION_SAMPLES = { default: 32, quick: 8 } as const;

/**
 * Models from this many parameters up are calibrated with the quick recipe unless the options choose (`quick`,
 * `samples` or `seqLen` given), so that an AWQ/GPTQ build stays within minutes: the full recipe (32 × 512 sampled
 * tokens, GPTQ fitted to the float model's outputs) projects to ~15 minutes of calibrating a 1.1B model, sampling
 * aside, and scales with the parameters (~5 minutes projected at this size); the quick one built the 1.1B shape in
 * 251.9–335.8 s end to end (2 cores of an Intel Xeon KVM guest, AVX-512 VNNI, no AMX; docs/quantization.md,
 * "Default calibration by model size").
 */
export const AUTO_QUICK_PARAMETERS = 250e6;

/** Where calibration data comes from and how much of it. */
export interface CalibrationOptions {
  /** Plain text or JSONL with a "text" field; default: sampled from the model (see `sampler`). */
  path?: string;
  /**
   * Samples (default 32; 8 with `quick`). On stories260K, GPTQ int4 with 32 × 512 sampled tokens is as good as
   * with 128 × 512 (+5.8% perplexity against +6.1%, two seeds each; 16 × 256 and more all land in 5.4–6.5%) and
   * samples a quarter of the tokens, which is most of the time (docs/quantization.md, "Calibration size").
   */
  samples?: number;
  /** Tokens per sample (default min(512, max_position_embeddings); min(256, …) with `quick`). */
  seqLen?: number;
  seed?: number;
  /**
   * What default calibration text is sampled from: 'int4' (default), an RTN int4 copy of the model written for the
   * purpose — on stories260K GPTQ and AWQ calibrated on its text are as good as on the int8 copy's or the fp32
   * model's (docs/quantization.md), and it is the cheapest to write, to hold and to run: a TinyLlama-shaped copy
   * samples 8 sequences at 108 ms per step against 130 ms for int8 (Intel Xeon Sapphire Rapids, 2 cores, AVX-512
   * VNNI) —; 'int8', an RTN int8 copy; or 'fp32', the model itself.
   */
  sampler?: 'int8' | 'int4' | 'fp32';
  /**
   * A small calibration set for large models on small machines: 8 samples × min(256, context) tokens unless
   * `samples` / `seqLen` say otherwise, and plain GPTQ (no true-sequential passes, no float targets) unless the
   * quantize options ask for them (see {@link withQuickDefaults} and docs/quantization.md for measured times).
   * Unset, it is chosen by the model's size ({@link resolveCalibration}); `false` asks for the full recipe.
   */
  quick?: boolean;
}

/**
 * The calibration options with `quick` decided for `method` on a model of `parameters` parameters: as given, else, for
 * AWQ and GPTQ, on from {@link AUTO_QUICK_PARAMETERS} up unless a size (`samples`, `seqLen`) was asked for (SmoothQuant
 * only measures activations: its full recipe costs little). `auto` says that the size decided.
 */
export function resolveCalibration(
  calibration: CalibrationOptions | undefined,
  parameters: number,
  method: QuantizeOptions['method'],
): CalibrationOptions & { quick: boolean; auto: boolean } {
  const c = calibration ?? {};
  if (c.quick !== undefined) return { ...c, quick: c.quick, auto: false };
  const auto = c.samples === undefined && c.seqLen === undefined && (method === 'awq' || method === 'gptq');
  return { ...c, quick: auto && parameters >= AUTO_QUICK_PARAMETERS, auto };
}

/** The samples and tokens per sample that `calibration` (resolved) gives a model of `maxPositions` context. */
export function calibrationSize(calibration: CalibrationOptions, maxPositions: number): { samples: number; seqLen: number } {
  const quick = !!calibration.quick;
  return {
    samples: calibration.samples ?? (quick ? CALIBRATION_SAMPLES.quick : CALIBRATION_SAMPLES.default),
    seqLen: calibration.seqLen ?? Math.min(quick ? 256 : 512, maxPositions),
  };
}

/** `build --benchmark`: what to measure and the quality guard. */
export interface BenchmarkOptions extends Pick<EvaluateOptions, 'metrics' | 'textPath' | 'context' | 'maxWindows' | 'sampledWindowCount' | 'speed'> {
  /** Fail the build when perplexity rises more than this over fp32 (default 0.1 = 10%). */
  maxPerplexityIncrease?: number;
  /** Keep the bundle even when the guard trips. */
  allowDegraded?: boolean;
}

export interface BuildBundleResult {
  dir: string;
  manifest: BundleManifest;
  report: QuantizeReport;
  evaluation?: EvaluationReport;
  /** Peak resident memory of the process that test-ran the written model (onnxruntime; the build's own is apart); 0 without a test run. */
  testRunPeakRssBytes: number;
  /** What the build chose for the user that they may want to change (e.g. the quick calibration of a large model). */
  notes: string[];
}

const yieldToEventLoop = () => new Promise<void>((r) => setImmediate(r));

/**
 * `quick` is the fast path: GPTQ without true-sequential passes and float targets unless asked for (fitting the float
 * model's outputs doubles GPTQ's calibration time: a TinyLlama-shaped layer 8.5 → 16.0 s at 8 × 256).
 */
export function withQuickDefaults(quantize: BuildBundleOptions['quantize'], calibration?: CalibrationOptions): BuildBundleOptions['quantize'] {
  if (!calibration?.quick || quantize.method !== 'gptq') return quantize;
  // Float targets asked for bring true-sequential statistics with them unless refused: alone they gain little.
  return { ...quantize, trueSequential: quantize.trueSequential ?? quantize.floatTargets ?? false, floatTargets: quantize.floatTargets ?? false };
}

/**
 * HF model folder → ONNX export → quantization → bundle, written atomically:
 * nothing appears at `out` unless every step succeeded.
 */
export async function buildBundle(options: BuildBundleOptions): Promise<BuildBundleResult> {
  const o = { ...options };
  // Bad flags fail before any heavy work starts.
  const quantizer = createQuantizer(o.quantize.method, { ...o.quantize, onProgress: o.onProgress, signal: o.signal });
  if (o.calibration?.path && !existsSync(o.calibration.path)) {
    throw new AlkiError(
      'NOT_FOUND',
      `calibration file not found: ${o.calibration.path}`,
      'pass --calib with an existing text or JSONL file, or leave it out to calibrate on text sampled from the model',
    );
  }
  // Before any work: --out may not be the source, the current folder or a folder that is not a bundle.
  assertWritableBundleDir(o.out, o.overwrite ?? false, { protect: [o.modelDir] });
  if (o.benchmark?.textPath && !existsSync(o.benchmark.textPath)) {
    throw new AlkiError('NOT_FOUND', `evaluation text not found: ${o.benchmark.textPath}`, 'pass --text with an existing UTF-8 text file');
  }
  // An ONNX-only folder (onnx/model.onnx, no safetensors: onnx-community, Optimum) is quantized as it is.
  const hf: SourceFolder = isOnnxModelFolder(o.modelDir) ? openOnnxModelFolder(o.modelDir) : openHfModel(o.modelDir);
  checkTokenizer(hf);
  // The calibration recipe by the model's size, where the options leave it open; the quantize defaults follow it.
  const notes: string[] = [];
  const parameters = countParameters(hf.config);
  const { auto, ...calibration } = resolveCalibration(o.calibration, parameters, o.quantize.method);
  o.calibration = calibration;
  o.quantize = withQuickDefaults(o.quantize, o.calibration);
  const target = o.target ? checkTargetFit(hf.config, o.target.preset, o.target.settings, o.target) : null;
  if (auto && calibration.quick) notes.push(quickNote(o, parameters, calibrationSize(calibration, hf.config.maxPositions).seqLen));
  for (const message of notes) o.onProgress?.({ step: 'note', done: 0, total: 0, message });
  await yieldToEventLoop();
  throwIfAborted(o.signal);
  // The export is lazy (weights are read from the checkpoint when a step needs them) and quantized tensors are
  // spilled to a scratch file until they are written: one layer's floats at a time are in memory (onnx lazy.ts).
  const { model } =
    'graphPath' in hf
      ? { model: readModelFile(hf.graphPath) }
      : exportModel(hf, { flavour: o.flavour, onProgress: o.onProgress, signal: o.signal, producerVersion: ALKI_VERSION });
  await yieldToEventLoop();
  throwIfAborted(o.signal);
  // The fp32 model is written aside before quantization rewrites the graph: it is the benchmark's baseline (and,
  // with `calibration.sampler: 'fp32'`, what default calibration text is sampled from).
  const quantizing = o.quantize.method !== 'none';
  const needFp32File = quantizing && (!!o.benchmark || (quantizer.needsCalibration && !o.calibration?.path && o.calibration?.sampler === 'fp32'));
  // Beside the output, named so that an interrupt removes it and a later build sweeps it if this process died.
  const work = quantizing ? tempSibling(o.out, 'work') : undefined;
  // Its own folder: the benchmark counts the bytes of every file in it.
  const baselineDir = needFp32File && work ? join(work.dir, 'baseline') : undefined;
  if (baselineDir) mkdirSync(baselineDir);
  const spill = work ? new TensorSpill(join(work.dir, 'quantized.spill')) : undefined;
  // AWQ and GPTQ record each finished layer in the cache, so that an interrupted build can --resume.
  const checkpoint = o.quantize.method === 'awq' || o.quantize.method === 'gptq' ? new FolderCheckpoint(checkpointDir(o, hf)) : undefined;
  if (checkpoint && !o.resume) checkpoint.remove();
  try {
    // A resumed build calibrates on the recorded data (sampling it again could take minutes).
    const recorded = quantizer.needsCalibration && o.resume ? checkpoint?.loadCalibration() : undefined;
    if (baselineDir && (!recorded || o.benchmark)) {
      writeModelFile(join(baselineDir, 'model.onnx'), model, { externalData: o.externalData });
    }
    let calibration = recorded;
    if (quantizer.needsCalibration && !calibration) {
      calibration = await prepareCalibration(o, hf, work!.dir, spill!, baselineDir);
      checkpoint?.saveCalibration(calibration);
    }
    const streaming = createQuantizer(o.quantize.method, { ...o.quantize, spill, checkpoint, onProgress: o.onProgress, signal: o.signal });
    const { model: qmodel, report } = await streaming.quantize(model, { calibration });
    await yieldToEventLoop();
    throwIfAborted(o.signal);
    const tableNote = embeddingNote(o.quantize, report, hf.config.hiddenSize);
    if (tableNote) {
      notes.push(tableNote);
      o.onProgress?.({ step: 'note', done: 0, total: 0, message: tableNote });
    }
    const result = await writeBundle(o, hf, qmodel, report, target, o.benchmark ? baselineDir : undefined);
    checkpoint?.remove();
    return { ...result, notes };
  } finally {
    spill?.remove();
    work?.remove();
  }
}

/** Tells the user that a large model got the quick calibration recipe, and how to ask for the full one. */
function quickNote(o: BuildBundleOptions, parameters: number, seqLen: number): string {
  const size = parameters >= 1e9 ? `${(parameters / 1e9).toFixed(1)}B` : `${Math.round(parameters / 1e6)}M`;
  const plain = o.quantize.method === 'gptq' && !o.quantize.floatTargets && !o.quantize.trueSequential ? ', plain GPTQ' : '';
  return (
    `calibration: the quick recipe (${CALIBRATION_SAMPLES.quick} × ${seqLen} tokens${plain}) for this ${size}-parameter model, ` +
    `to build in minutes; --no-quick for the full recipe (${CALIBRATION_SAMPLES.default} × 512 tokens${o.quantize.method === 'gptq' ? ', fitted to the float model' : ''}: ` +
    'several times the build time, usually lower perplexity)'
  );
}

/** What a build reads: a HuggingFace folder (exported) or an ONNX-only folder (its graph quantized as it is). */
type SourceFolder = HfModel | OnnxModelFolder;

/**
 * The checkpoint folder of a build: keyed by Alki's version, the source files (names, sizes, modification times),
 * the graph flavour, the quantization options and where calibration comes from, so that --resume never continues
 * another build's work.
 */
function checkpointDir(o: BuildBundleOptions, hf: SourceFolder): string {
  const files = readdirSync(hf.dir)
    .sort()
    .map((f) => {
      const st = statSync(join(hf.dir, f));
      return [f, st.size, st.mtimeMs];
    });
  const calib = o.calibration ?? {};
  // The calibration file by size and time, not content: it is validated (and may be a FIFO) only later.
  const calibStat = calib.path && existsSync(calib.path) ? statSync(calib.path) : undefined;
  const calibSource = calib.path ? { file: resolve(calib.path), size: calibStat?.size, mtime: calibStat?.mtimeMs } : { sampled: true };
  // Resolved defaults too: a checkpoint of a build whose defaults differed is not this build's.
  const r = resolveQuantizeOptions(o.quantize);
  const quantize = {
    ...o.quantize,
    mseClip: r.mseClip,
    trueSequential: r.trueSequential,
    floatTargets: r.floatTargets,
    percDamp: r.percDamp,
    awqScales: r.awqScales,
    exclude: o.quantize.exclude?.map(String),
  };
  const key = JSON.stringify({
    alki: ALKI_VERSION,
    dir: hf.dir,
    files,
    flavour: o.flavour ?? 'ort',
    quantize,
    calibration: { ...calib, path: undefined, ...calibSource },
    samplerBlockSize: calib.path ? undefined : SAMPLER_BLOCK_SIZE,
  });
  return join(o.cacheDir ?? defaultCacheDir(), 'checkpoints', createHash('sha256').update(key).digest('hex').slice(0, 32));
}

/**
 * Inputs per scale of the RTN copy that default calibration text is sampled from: 128 (not RTN's default 32) — faster
 * to write and to run, and lighter after onnxruntime re-packs it (the 7B shape's sampling process peaks at 5.42 GB
 * while loading it, against 6.49 GB for block 32); GPTQ and AWQ calibrated on its text did as well on stories260K
 * within the seed-to-seed spread
 * (docs/quantization.md).
 */
const SAMPLER_BLOCK_SIZE = 128;

/** Models from this many parameters up are sampled with the lean allocator settings below. */
const LEAN_SAMPLER_PARAMETERS = 3e9;

/**
 * The sampling process's allocators for large models: onnxruntime without its arena, and glibc's malloc with a
 * fixed mmap threshold. The key/value tensors grow a little every step; the arena keeps each step's buffers, and
 * glibc's threshold, which rises to the size of each freed mapped block, soon puts them on the heap, whose freed
 * blocks neither fit the next step's nor go back to the system. On the 7B shape's int4 copy (8 sequences, 48 steps;
 * Xeon Sapphire Rapids, 2 cores) the process grew 7 MB per step by default, 3.4 MB with both settings (the cache
 * itself grows 2.1 MB per step, and a step holds its past and its present), and no less with either alone. They cost time where the weights are small: the
 * TinyLlama shape's sampling took 39.5 s with them against 32 s without, hence only for large models. Other C
 * libraries ignore the variable.
 */
const LEAN_SAMPLER_ENV = { MALLOC_MMAP_THRESHOLD_: process.env.MALLOC_MMAP_THRESHOLD_ ?? '131072' };

async function prepareCalibration(o: BuildBundleOptions, hf: SourceFolder, workDir: string, spill: TensorSpill, fp32Dir?: string): Promise<CalibrationData> {
  const c = o.calibration ?? {};
  const { samples, seqLen } = calibrationSize(c, hf.config.maxPositions);
  if (!Number.isInteger(samples) || samples < 1) throw new AlkiError('BAD_OPTION', `--calib-samples must be a positive whole number, got ${samples}`);
  if (!Number.isInteger(seqLen) || seqLen < 2) throw new AlkiError('BAD_OPTION', `--calib-seqlen must be at least 2, got ${seqLen}`);
  o.onProgress?.({ step: 'calibration data', done: 0, total: samples * seqLen, unit: 'tokens' });
  let data: CalibrationData;
  if (c.path) {
    data = calibrationFromText(loadTokenizer(hf.dir), readCalibrationFile(c.path), { samples, seqLen, name: basename(c.path) });
  } else {
    const bos = hf.config.bosTokenId ?? loadTokenizer(hf.dir).bosTokenId;
    if (bos === undefined) throw new AlkiError('BAD_INPUT', 'the model has no BOS token to start sampled calibration text from', 'pass --calib FILE');
    let sampler = fp32Dir && join(fp32Dir, 'model.onnx');
    const bits = (c.sampler ?? 'int4') === 'int8' ? 8 : 4;
    let label = c.sampler === 'fp32' ? 'the fp32 model' : `an int${bits} copy of the model`;
    if ('graphPath' in hf) {
      // An ONNX source is sampled as it is: it is the user's own model, and there is no checkpoint to copy from.
      sampler = hf.graphPath;
      label = 'the source ONNX graph';
    } else if (c.sampler !== 'fp32') {
      // An RTN int8 or int4 copy, streamed like the build itself (see CalibrationOptions.sampler).
      o.onProgress?.({ step: 'calibration data', done: 0, total: samples * seqLen, unit: 'tokens', detail: `writing an int${bits} copy to sample from` });
      const { model } = await quantizeParallel(exportModel(hf, { flavour: o.flavour, producerVersion: ALKI_VERSION }).model, {
        method: 'rtn',
        bits,
        blockSize: SAMPLER_BLOCK_SIZE,
        // min/max ranges: the copy only has to write text the model would (the range search would cost ~15 s on 1.1B).
        mseClip: false,
        headBits: 8,
        embedBits: 32,
        spill,
        signal: o.signal,
      });
      mkdirSync(join(workDir, 'sampler'));
      sampler = writeModelFile(join(workDir, 'sampler', 'model.onnx'), model, { externalData: o.externalData })[0];
    }
    const lean = countParameters(hf.config) >= LEAN_SAMPLER_PARAMETERS;
    const args = JSON.stringify({ bos, samples, seqLen, seed: c.seed, label, memoryArena: !lean });
    ({ data } = await runWorker<{ data: CalibrationData }>(
      workerPath('sample-worker.js'),
      [sampler!, args],
      `sampling calibration text from ${label}`,
      o.signal,
      o.onProgress,
      lean ? LEAN_SAMPLER_ENV : undefined,
    ));
  }
  o.onProgress?.({ step: 'calibration data', done: samples * seqLen, total: samples * seqLen, unit: 'tokens' });
  return data;
}

async function writeBundle(
  o: BuildBundleOptions,
  hf: SourceFolder,
  qmodel: Model,
  report: QuantizeReport,
  target: BundleTarget | null,
  baselineDir?: string,
): Promise<Omit<BuildBundleResult, 'notes'>> {
  const c = hf.config;
  return writeDirAtomically(
    o.out,
    o.overwrite ?? false,
    async (tmp) => {
      // Named as transformers.js looks for it, so that the bundle opens there unchanged (transformers-js.ts).
      const dtype = transformersJsDtype(report);
      const graphFile = graphFileName(dtype);
      o.onProgress?.({ step: 'write', done: 0, total: 4, detail: `onnx/${graphFile}` });
      mkdirSync(join(tmp, 'onnx'));
      const written = writeModelFile(join(tmp, 'onnx', graphFile), qmodel, { externalData: o.externalData });
      throwIfAborted(o.signal);
      o.onProgress?.({ step: 'write', done: 1, total: 4, detail: 'test run' });
      const testRun = o.testRun === false ? { peakRssBytes: 0 } : await smokeTest(written[0], smokeIds(c), o.signal);
      for (const f of hf.sideFiles) {
        if (f === 'config.json') {
          const config = withTransformersJsConfig(hf.rawConfig, dtype, graphFile, written.length > 1);
          writeFileSync(join(tmp, f), `${JSON.stringify(config, null, 2)}\n`);
        } else copyFileSync(join(hf.dir, f), join(tmp, f));
      }
      o.onProgress?.({ step: 'write', done: 2, total: 4, detail: 'checksums' });
      await yieldToEventLoop();
      const modelBytes = written.reduce((s, p) => s + statSync(p).size, 0);
      const quantized = report.method !== 'none';
      const manifest: BundleManifest = {
        schemaVersion: SCHEMA_VERSION,
        alkiVersion: ALKI_VERSION,
        createdAt: new Date().toISOString(),
        source: {
          id: o.sourceId ?? basename(hf.dir),
          revision: o.revision,
          commitSha: o.commitSha,
          architecture: String((hf.rawConfig.architectures as string[] | undefined)?.[0] ?? c.modelType),
          modelType: c.modelType,
          parameters: countParameters(c),
        },
        quantization: {
          method: report.method,
          bits: report.bits,
          ...(quantized && report.head ? { headBits: report.head.bits } : {}),
          ...(quantized ? { embedBits: report.embedding?.bits ?? 32 } : {}),
          // SmoothQuant is per output channel (no blocks), symmetric, and has no MatMulNBits accuracy level.
          groupSize: quantized && report.method !== 'smoothquant' ? report.blockSize : null,
          symmetric: quantized ? report.method === 'smoothquant' || report.symmetric : null,
          accuracyLevel: quantized && report.method !== 'smoothquant' ? report.accuracyLevel : null,
          ...(report.mseClip !== undefined ? { mseClip: report.mseClip } : {}),
          ...(report.awqScales ? { awqScales: true } : {}),
          ...(report.trueSequential !== undefined ? { trueSequential: report.trueSequential } : {}),
          ...(report.floatTargets !== undefined ? { floatTargets: report.floatTargets } : {}),
          calibration: report.calibration ?? null,
          ...(report.method === 'smoothquant' ? { alpha: report.smooth === false ? null : (report.alpha ?? 0.5), w8a8Format: report.w8a8Format } : {}),
          excluded: report.excluded,
          quantizedLayers: report.layers.length,
        },
        runtime: {
          onnxruntime: '>=1.18',
          opset: PORTABLE_OPSET,
          domains: quantized || qmodel.opsetImports.some((o) => o.domain === 'com.microsoft') ? ['ai.onnx', 'com.microsoft'] : ['ai.onnx'],
          executionProviders: ['cpu', 'wasm'],
          flavour: readExportFlavour(qmodel) ?? 'portable',
        },
        model: {
          path: `onnx/${graphFile}`,
          externalData: written.slice(1).map((p) => relative(tmp, p)),
          numLayers: c.numLayers,
          numKvHeads: c.numKvHeads,
          headDim: c.headDim,
          vocabSize: c.vocabSize,
          maxPositions: c.maxPositions,
          bosTokenId: c.bosTokenId,
          eosTokenIds: c.eosTokenIds,
        },
        target,
        files: [],
        metrics: {
          modelBytes: { value: modelBytes, method: 'bytes on disk of onnx/*' },
          sizeBytes: { value: 0, method: 'bytes on disk of every file listed in alki.json' },
          ...(quantized
            ? {
                quantizedWeightBytes: {
                  value: { float: report.floatBytes, quantized: report.quantizedBytes },
                  method: 'float32 weight bytes of the quantized layers vs their packed weights + scales + zero points',
                },
              }
            : {}),
        },
      };
      manifest.files = listFiles(tmp).map((rel) => hashFile(join(tmp, rel), rel));
      manifest.metrics.sizeBytes.value = manifest.files.reduce((s, f) => s + f.bytes, 0);
      let evaluation: EvaluationReport | undefined;
      if (o.benchmark) {
        evaluation = await benchmarkBundle(o, tmp, manifest, baselineDir);
        Object.assign(manifest.metrics, manifestMetrics(evaluation));
      }
      // README is written before hashing so that it is covered; its size figures exclude itself and alki.json.
      writeFileSync(join(tmp, 'README.md'), bundleReadme(manifest, basename(o.out), evaluation ? formatMarkdown(evaluation) : undefined));
      manifest.files.push(hashFile(join(tmp, 'README.md'), 'README.md'));
      manifest.files.sort((a, b) => (a.path < b.path ? -1 : 1));
      o.onProgress?.({ step: 'write', done: 3, total: 4, detail: 'alki.json' });
      writeFileSync(join(tmp, 'alki.json'), serializeManifest(manifest));
      o.onProgress?.({ step: 'write', done: 4, total: 4 });
      return { dir: o.out, manifest, report, evaluation, testRunPeakRssBytes: testRun.peakRssBytes };
    },
    { protect: [o.modelDir] },
  );
}

/**
 * Measures the bundle being written against its fp32 baseline and applies the
 * quality guard: a rise in perplexity over the budget aborts the build (the
 * temporary folder is removed) unless degraded bundles are allowed.
 */
async function benchmarkBundle(o: BuildBundleOptions, tmp: string, manifest: BundleManifest, baselineDir?: string): Promise<EvaluationReport> {
  const b = o.benchmark!;
  // The bundle being written, measured in its temporary folder.
  const target = bundleEvalTarget({ dir: tmp, modelPath: join(tmp, manifest.model.path), manifest });
  const baseline: EvalTarget | undefined = baselineDir
    ? {
        name: 'fp32',
        dir: tmp,
        modelPath: join(baselineDir, 'model.onnx'),
        method: 'none',
        bits: 32,
        modelBytes: listFiles(baselineDir).reduce((s, f) => s + statSync(join(baselineDir, f)).size, 0),
        bundleBytes: 0,
      }
    : undefined;
  const max = b.maxPerplexityIncrease ?? 0.1;
  const evaluation = await evaluateTargets([target], {
    ...b,
    baseline,
    maxPositions: manifest.model.maxPositions,
    vocabSize: manifest.model.vocabSize,
    maxPerplexityIncrease: max,
    onProgress: o.onProgress,
    signal: o.signal,
  });
  const q = evaluation.evaluations[0].quality;
  const bq = evaluation.baseline?.quality;
  if (q && bq && !b.allowDegraded) {
    const rise = q.perplexity / bq.perplexity - 1;
    if (rise > max) {
      throw new AlkiError(
        'DEGRADED',
        `the ${target.name} bundle's perplexity is ${q.perplexity.toFixed(4)}, +${(rise * 100).toFixed(1)}% over fp32 (${bq.perplexity.toFixed(4)}), above the ${(max * 100).toFixed(1)}% budget (measured on ${q.scoredTokens} tokens of ${q.textSource}); no bundle was written`,
        'use more bits (--bits 8), a smaller block (--block-size 16), or another method; raise the budget with --max-ppl-increase, or keep it anyway with --allow-degraded',
      );
    }
  }
  return evaluation;
}

/** Why the token table was not stored at the bits asked for (--embed-bits, or the default of int4 bundles), if it was not. */
function embeddingNote(q: BuildBundleOptions['quantize'], report: QuantizeReport, hiddenSize: number): string | undefined {
  if (q.method === 'none' || q.method === 'smoothquant') return undefined;
  const stored = report.embedding?.bits ?? 32;
  if (q.embedBits !== undefined && stored !== q.embedBits && report.embedding?.sharedWith)
    return `token table: int${stored}, not the --embed-bits ${q.embedBits} asked for: it is tied to the output projection and shares its codes (--head-bits sets both)`;
  const asked = tableBits(report.bits, q.embedBits);
  if (stored === 32 && asked !== 32 && hiddenSize % 16 !== 0)
    return `token table: float32, not int${asked}: its rows of ${hiddenSize} values do not split into blocks of 16 or more`;
  return undefined;
}

/** A short test input for {@link smokeTest}: BOS (when the model has one) and a few ordinary ids, within the context. */
function smokeIds(c: { vocabSize: number; bosTokenId?: number; maxPositions: number }): number[] {
  const ids = [0.31, 0.57, 0.73, 0.91].map((f) => Math.floor(f * c.vocabSize));
  return (c.bosTokenId !== undefined ? [c.bosTokenId, ...ids] : ids).slice(0, Math.max(1, c.maxPositions));
}
