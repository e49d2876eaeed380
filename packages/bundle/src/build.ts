import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { AlkiError, throwIfAborted, type ProgressCallback } from '@alki/core';
import { writeModelFile } from '@alki/onnx';
import { countParameters, exportModel, openHfModel, PORTABLE_OPSET } from '@alki/models';
import { quantize, resolveQuantizeOptions, type QuantizeOptions, type QuantizeReport } from '@alki/quantizers';
import { writeDirAtomically } from './atomic-dir.js';
import { hashFile } from './hash.js';
import { SCHEMA_VERSION, serializeManifest, type BundleManifest } from './manifest.js';
import { bundleReadme } from './readme.js';

import { ALKI_VERSION } from './version.js';

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
  /** 'auto' (default) puts weights in onnx/model.onnx.data above 1 GiB. */
  externalData?: 'auto' | 'always' | 'never';
  /** Replace an existing bundle at `out`. */
  overwrite?: boolean;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

export interface BuildBundleResult {
  dir: string;
  manifest: BundleManifest;
  report: QuantizeReport;
}

const yieldToEventLoop = () => new Promise<void>((r) => setImmediate(r));

/**
 * HF model folder → ONNX export → quantization → bundle, written atomically:
 * nothing appears at `out` unless every step succeeded.
 */
export async function buildBundle(o: BuildBundleOptions): Promise<BuildBundleResult> {
  // Bad flags fail before any heavy work starts.
  resolveQuantizeOptions(o.quantize);
  if (existsSync(o.out) && !o.overwrite) {
    throw new AlkiError('BAD_OPTION', `${o.out} already exists`, 'pass --force to replace it, or choose another --out folder');
  }
  const hf = openHfModel(o.modelDir);
  const c = hf.config;
  await yieldToEventLoop();
  throwIfAborted(o.signal);
  const { model } = exportModel(hf, { onProgress: o.onProgress, signal: o.signal, producerVersion: ALKI_VERSION });
  await yieldToEventLoop();
  throwIfAborted(o.signal);
  const { model: qmodel, report } = quantize(model, { ...o.quantize, onProgress: o.onProgress, signal: o.signal });
  await yieldToEventLoop();
  throwIfAborted(o.signal);

  return writeDirAtomically(o.out, o.overwrite ?? false, async (tmp) => {
    o.onProgress?.({ step: 'write', done: 0, total: 3, detail: 'onnx/model.onnx' });
    mkdirSync(join(tmp, 'onnx'));
    const written = writeModelFile(join(tmp, 'onnx', 'model.onnx'), qmodel, { externalData: o.externalData });
    throwIfAborted(o.signal);
    for (const f of hf.sideFiles) copyFileSync(join(hf.dir, f), join(tmp, f));
    o.onProgress?.({ step: 'write', done: 1, total: 3, detail: 'checksums' });
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
        groupSize: quantized ? report.blockSize : null,
        symmetric: quantized ? report.symmetric : null,
        accuracyLevel: quantized ? report.accuracyLevel : null,
        calibration: null,
        excluded: report.excluded,
        quantizedLayers: report.layers.length,
      },
      runtime: {
        onnxruntime: '>=1.18',
        opset: PORTABLE_OPSET,
        domains: quantized ? ['ai.onnx', 'com.microsoft'] : ['ai.onnx'],
        executionProviders: ['cpu', 'wasm'],
        flavour: qmodel.metadata['alki.flavour'] ?? 'portable',
      },
      model: {
        path: 'onnx/model.onnx',
        externalData: written.slice(1).map((p) => relative(tmp, p)),
        numLayers: c.numLayers,
        numKvHeads: c.numKvHeads,
        headDim: c.headDim,
        vocabSize: c.vocabSize,
        maxPositions: c.maxPositions,
        bosTokenId: c.bosTokenId,
        eosTokenIds: c.eosTokenIds,
      },
      target: null,
      files: [],
      metrics: {
        modelBytes: { value: modelBytes, method: 'bytes on disk of onnx/*' },
        sizeBytes: { value: 0, method: 'bytes on disk of every file listed in alki.json' },
        ...(quantized ? { quantizedWeightBytes: { value: { float: report.floatBytes, quantized: report.quantizedBytes }, method: 'float32 weight bytes of the quantized layers vs their packed weights + scales + zero points' } } : {}),
      },
    };
    // README is written before hashing so that it is covered; its size figures exclude itself and alki.json.
    manifest.files = listFiles(tmp).map((rel) => hashFile(join(tmp, rel), rel));
    manifest.metrics.sizeBytes.value = manifest.files.reduce((s, f) => s + f.bytes, 0);
    writeFileSync(join(tmp, 'README.md'), bundleReadme(manifest, basename(o.out)));
    manifest.files.push(hashFile(join(tmp, 'README.md'), 'README.md'));
    manifest.files.sort((a, b) => (a.path < b.path ? -1 : 1));
    o.onProgress?.({ step: 'write', done: 2, total: 3, detail: 'alki.json' });
    writeFileSync(join(tmp, 'alki.json'), serializeManifest(manifest));
    o.onProgress?.({ step: 'write', done: 3, total: 3 });
    return { dir: o.out, manifest, report };
  });
}

/** Relative paths of all files under `dir`, sorted. */
export function listFiles(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...listFiles(dir, rel));
    else if (e.isFile()) out.push(rel);
  }
  return out.sort();
}
