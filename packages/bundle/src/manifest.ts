import { createHash } from 'node:crypto';
import { AlkiError } from '@alki/core';

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
    groupSize: number | null;
    symmetric: boolean | null;
    accuracyLevel: number | null;
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
  target: string | null;
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
  if (typeof p !== 'string' || p === '' || p.startsWith('/') || p.includes('\\') || /^[a-zA-Z]:/.test(p)) return false;
  return p.split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..');
}

/** Checks the shape of a parsed alki.json; throws BAD_BUNDLE with what is wrong. */
export function validateManifest(json: unknown, where: string): BundleManifest {
  const bad = (what: string) => new AlkiError('BAD_BUNDLE', `${where}: ${what}`, 'the bundle is damaged or was not written by Alki; build it again');
  if (typeof json !== 'object' || json === null) throw bad('alki.json is not a JSON object');
  const m = json as BundleManifest;
  if (m.schemaVersion !== SCHEMA_VERSION) {
    throw new AlkiError('BAD_BUNDLE', `${where}: alki.json schemaVersion ${JSON.stringify(m.schemaVersion)} is not supported (this Alki reads ${SCHEMA_VERSION})`, 'use the Alki version that built the bundle, or build it again');
  }
  if (!Array.isArray(m.files)) throw bad('alki.json has no file list');
  for (const f of m.files) {
    if (!isSafeRelativePath(f?.path)) throw bad(`file path ${JSON.stringify(f?.path)} is not a relative path inside the bundle`);
    if (!Number.isInteger(f.bytes) || typeof f.sha256 !== 'string') throw bad(`file entry for ${f.path} is incomplete`);
  }
  if (!m.model || !isSafeRelativePath(m.model.path)) throw bad('alki.json names no model file inside the bundle');
  return m;
}
