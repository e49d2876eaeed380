import { createHash } from 'node:crypto';
import { AlkiError, showValue } from '@alki/core';
import type { BundleTarget } from './target.js';

/** Version of the alki.json schema this code writes and reads. */
export const SCHEMA_VERSION = 1;

/** One file of the bundle with its size and content hash. */
export interface BundleFile {
  path: string;
  bytes: number;
  sha256: string;
}

/** A measured figure always says how it was measured. */
export interface Measured<T = number> {
  value: T;
  method: string;
}

/** The manifest `alki.json` of a bundle (see docs/bundle-format.md). */
export interface BundleManifest {
  schemaVersion: number;
  alkiVersion: string;
  createdAt: string;
  source: {
    /** Hub id or the local folder's name. */
    id: string;
    revision?: string;
    commitSha?: string;
    architecture: string;
    modelType: string;
    parameters: number;
  };
  quantization: {
    method: string;
    bits: number;
    /** Bits of the output projection (lm_head) when the graph has one: 4, 8, or 32 (kept in float). */
    headBits?: number;
    /** Bits of the token embedding table (32: float); absent in bundles older than the option. */
    embedBits?: number;
    groupSize: number | null;
    symmetric: boolean | null;
    accuracyLevel: number | null;
    /** RTN/GPTQ: block ranges chosen by the least squared error of their rounding (absent in older bundles). */
    mseClip?: boolean;
    /** GPTQ ran on weights scaled by AWQ's search (absent when not). */
    awqScales?: boolean;
    /** GPTQ: each input's statistics after the layer's earlier linears were quantized (absent in older bundles). */
    trueSequential?: boolean;
    /** GPTQ: linears fitted to the float model's outputs (asymmetric calibration; absent in older bundles). */
    floatTargets?: boolean;
    calibration: null | { source: string; samples: number; sequenceLength: number; sha256?: string };
    /** SmoothQuant: the migration strength α, or null for the unsmoothed (naive) W8A8 baseline. */
    alpha?: number | null;
    /**
     * W8A8 (SmoothQuant): activations are uint8 per tensor at run time; weights per output channel as `s8`
     * (int8 ±127), `s7` (int8 ±63, cannot saturate onnxruntime's x86 kernels without VNNI) or `u8` (uint8,
     * zero point 128). See docs/bundle-format.md.
     */
    w8a8Format?: string;
    excluded: string[];
    quantizedLayers: number;
  };
  runtime: {
    onnxruntime: string;
    opset: number;
    domains: string[];
    executionProviders: string[];
    flavour: string;
  };
  model: {
    path: string;
    externalData: string[];
    numLayers: number;
    numKvHeads: number;
    headDim: number;
    vocabSize: number;
    maxPositions: number;
    bosTokenId?: number;
    eosTokenIds: number[];
  };
  /** The device the bundle was built for (`alki build --target`), a preset name in older bundles, or null. */
  target: BundleTarget | string | null;
  files: BundleFile[];
  metrics: {
    /** Bytes on disk of the ONNX files (graph + external data). */
    modelBytes: Measured;
    /** Bytes on disk of every listed file. */
    sizeBytes: Measured;
    /** Bytes of the quantized layers' weights, before and after. */
    quantizedWeightBytes?: Measured<{ float: number; quantized: number }>;
    [name: string]: Measured<unknown> | undefined;
  };
  /** sha256 of this manifest without this field (JSON.stringify), so alki.json itself is verifiable. */
  manifestSha256?: string;
}

/** The hash stored in `manifestSha256`: over the manifest without that field. */
export function manifestHash(m: BundleManifest): string {
  const { manifestSha256: _omit, ...rest } = m;
  return createHash('sha256').update(JSON.stringify(rest)).digest('hex');
}

/** Serializes a manifest with its self-hash. */
export function serializeManifest(m: BundleManifest): string {
  const { manifestSha256: _omit, ...rest } = m;
  return `${JSON.stringify({ ...rest, manifestSha256: manifestHash(m) }, null, 2)}\n`;
}

/** A relative path that stays inside the bundle folder. */
export function isSafeRelativePath(p: string): boolean {
  if (typeof p !== 'string' || p === '' || p.length > 4096 || p.startsWith('/') || p.includes('\\') || /^[a-zA-Z]:/.test(p) || /[\u0000-\u001f]/.test(p))
    return false;
  return p.split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..');
}

/** alki.json nests a few levels (metrics.measuredOn.value); deeper is damage, and would overflow JSON.stringify. */
const MAX_DEPTH = 32;
/** Plausible ceilings of the model's numbers: beyond them a reader would allocate or loop without bound. */
const LIMITS = { numLayers: 65_536, numKvHeads: 65_536, headDim: 65_536, vocabSize: 1 << 26, maxPositions: 1 << 30 } as const;

/** Nesting depth of a JSON value, without recursion (a hostile file nests 100 000 deep). */
function depthOf(root: unknown, stopAt: number): number {
  let max = 0;
  const stack: [unknown, number][] = [[root, 1]];
  while (stack.length) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (d > max) max = d;
    if (max > stopAt) return max;
    for (const x of Array.isArray(v) ? v : Object.values(v)) if (x !== null && typeof x === 'object') stack.push([x, d + 1]);
  }
  return max;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown, max = Number.MAX_SAFE_INTEGER): v is number => Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= max;
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
const optional = (v: unknown, check: (x: unknown) => boolean) => v === undefined || v === null || check(v);

/** Checks the shape of a parsed alki.json; throws BAD_BUNDLE with what is wrong. */
export function validateManifest(json: unknown, where: string): BundleManifest {
  const bad = (what: string) => new AlkiError('BAD_BUNDLE', `${where}: ${what}`, 'the bundle is damaged or was not written by Alki; build it again');
  if (!isObject(json)) throw bad('alki.json is not a JSON object');
  if (depthOf(json, MAX_DEPTH) > MAX_DEPTH) throw bad(`alki.json nests deeper than ${MAX_DEPTH} levels`);
  const m = json as unknown as BundleManifest;
  if (m.schemaVersion !== SCHEMA_VERSION) {
    throw new AlkiError(
      'BAD_BUNDLE',
      `${where}: alki.json schemaVersion ${showValue(m.schemaVersion)} is not supported (this Alki reads ${SCHEMA_VERSION})`,
      'use the Alki version that built the bundle, or build it again',
    );
  }
  if (!Array.isArray(m.files)) throw bad('alki.json has no file list');
  const seen = new Set<string>();
  for (const f of m.files as unknown[]) {
    const path = isObject(f) ? f.path : undefined;
    if (!isSafeRelativePath(path as string)) throw bad(`file path ${showValue(path)} is not a relative path inside the bundle`);
    const entry = f as unknown as BundleFile;
    if (!isCount(entry.bytes) || typeof entry.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(entry.sha256))
      throw bad(`file entry for ${showValue(entry.path)} is incomplete (bytes and a sha256 are needed)`);
    if (seen.has(entry.path)) throw bad(`file ${showValue(entry.path)} is listed twice`);
    seen.add(entry.path);
  }
  const model = m.model as unknown;
  if (!isObject(model) || !isSafeRelativePath(model.path as string)) throw bad('alki.json names no model file inside the bundle');
  if (!Array.isArray(model.externalData) || !model.externalData.every((p) => isSafeRelativePath(p)))
    throw bad('model.externalData is not a list of paths inside the bundle');
  for (const key of Object.keys(LIMITS) as (keyof typeof LIMITS)[]) {
    if (!isCount(model[key], LIMITS[key]) || model[key] === 0)
      throw bad(`model.${key} ${showValue(model[key])} is not a whole number from 1 to ${LIMITS[key]}`);
  }
  if (!optional(model.bosTokenId, (v) => isCount(v))) throw bad(`model.bosTokenId ${showValue(model.bosTokenId)} is not a token id`);
  if (!Array.isArray(model.eosTokenIds) || !model.eosTokenIds.every((v) => isCount(v)))
    throw bad(`model.eosTokenIds ${showValue(model.eosTokenIds)} is not a list of token ids`);
  const source = m.source as unknown;
  if (
    !isObject(source) ||
    typeof source.id !== 'string' ||
    typeof source.architecture !== 'string' ||
    typeof source.modelType !== 'string' ||
    !isCount(source.parameters)
  ) {
    throw bad('alki.json source is incomplete (id, architecture, modelType and parameters are needed)');
  }
  if (!optional(source.revision, (v) => typeof v === 'string') || !optional(source.commitSha, (v) => typeof v === 'string'))
    throw bad('source.revision and source.commitSha must be strings');
  const q = m.quantization as unknown;
  if (!isObject(q) || typeof q.method !== 'string' || !isCount(q.bits, 64) || q.bits === 0) throw bad('alki.json quantization has no method and bits');
  if (!optional(q.headBits, (v) => isCount(v, 64))) throw bad(`quantization.headBits ${showValue(q.headBits)} is not a bit width`);
  if (!optional(q.embedBits, (v) => isCount(v, 64))) throw bad(`quantization.embedBits ${showValue(q.embedBits)} is not a bit width`);
  if (!(q.groupSize === null || (isCount(q.groupSize) && q.groupSize > 0)))
    throw bad(`quantization.groupSize ${showValue(q.groupSize)} is not a block size or null`);
  if (!(q.symmetric === null || typeof q.symmetric === 'boolean')) throw bad(`quantization.symmetric ${showValue(q.symmetric)} is not true, false or null`);
  if (!(q.accuracyLevel === null || isCount(q.accuracyLevel, 64))) throw bad(`quantization.accuracyLevel ${showValue(q.accuracyLevel)} is not a level or null`);
  if (!optional(q.mseClip, (v) => typeof v === 'boolean')) throw bad(`quantization.mseClip ${showValue(q.mseClip)} is not a boolean`);
  if (!optional(q.awqScales, (v) => v === true)) throw bad(`quantization.awqScales ${showValue(q.awqScales)} is not true`);
  for (const key of ['trueSequential', 'floatTargets'] as const)
    if (!optional(q[key], (v) => typeof v === 'boolean')) throw bad(`quantization.${key} ${showValue(q[key])} is not a boolean`);
  const calib = q.calibration;
  if (!(
    calib === null ||
    (isObject(calib) &&
      typeof calib.source === 'string' &&
      isCount(calib.samples) &&
      isCount(calib.sequenceLength) &&
      optional(calib.sha256, (v) => typeof v === 'string'))
  )) {
    throw bad('quantization.calibration is neither null nor { source, samples, sequenceLength }');
  }
  if (!optional(q.alpha, (v) => typeof v === 'number' && Number.isFinite(v))) throw bad(`quantization.alpha ${showValue(q.alpha)} is not a number or null`);
  if (!optional(q.w8a8Format, (v) => typeof v === 'string')) throw bad(`quantization.w8a8Format ${showValue(q.w8a8Format)} is not a string`);
  if (!isStrings(q.excluded) || !isCount(q.quantizedLayers)) throw bad('quantization.excluded or quantization.quantizedLayers is missing or of the wrong type');
  const rt = m.runtime as unknown;
  if (
    !isObject(rt) ||
    typeof rt.onnxruntime !== 'string' ||
    !isCount(rt.opset) ||
    !isStrings(rt.domains) ||
    !isStrings(rt.executionProviders) ||
    typeof rt.flavour !== 'string'
  ) {
    throw bad('alki.json runtime is incomplete (onnxruntime, opset, domains, executionProviders and flavour are needed)');
  }
  if (typeof m.alkiVersion !== 'string' || typeof m.createdAt !== 'string') throw bad('alkiVersion or createdAt is missing');
  // A preset name (older bundles), or what was recorded of the target device: { preset, arch, features, settings, ... }.
  const target = m.target as unknown;
  if (!(target === null || typeof target === 'string' || isObject(target))) throw bad(`target ${showValue(target)} is neither a device target nor null`);
  if (isObject(target)) {
    const settings = target.settings;
    const ok =
      typeof target.preset === 'string' &&
      typeof target.arch === 'string' &&
      isStrings(target.features) &&
      isStrings(target.overrides) &&
      isCount(target.memoryBytes) &&
      isCount(target.estimatedPeakBytes) &&
      optional(target.usableBytes, (v) => isCount(v)) &&
      optional(target.name, (v) => typeof v === 'string') &&
      optional(target.executionProviders, isStrings) &&
      optional(target.forcedFit, (v) => typeof v === 'boolean') &&
      isObject(settings) &&
      isCount(settings.threads, 65_536) &&
      isCount(settings.context, LIMITS.maxPositions);
    if (!ok)
      throw bad(
        'target is incomplete (preset, arch, features, settings.threads and settings.context, memoryBytes, estimatedPeakBytes and overrides are needed)',
      );
  }
  const metrics = m.metrics as unknown;
  if (!isObject(metrics)) throw bad('alki.json has no metrics');
  for (const [name, v] of Object.entries(metrics)) {
    if (v === null) continue;
    if (!isObject(v) || typeof v.method !== 'string' || !('value' in v)) throw bad(`metric ${showValue(name)} is not { value, method }`);
  }
  for (const name of ['modelBytes', 'sizeBytes'] as const) {
    const v = (metrics[name] as { value?: unknown } | null | undefined)?.value;
    if (!isCount(v)) throw bad(`metrics.${name} is not a byte count`);
  }
  const qwb = metrics.quantizedWeightBytes as { value?: unknown } | null | undefined;
  if (qwb && !(isObject(qwb.value) && isCount(qwb.value.float) && isCount(qwb.value.quantized)))
    throw bad('metrics.quantizedWeightBytes is not { float, quantized } byte counts');
  if (!optional(m.manifestSha256, (v) => typeof v === 'string')) throw bad('manifestSha256 is not a string');
  return m;
}
