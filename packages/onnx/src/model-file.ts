import { closeSync, existsSync, openSync, readFileSync, readSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, normalize } from 'node:path';
import { AlkiError, fsError } from '@alki/core';
import { decodeModel, encodeModel, type ExternalRef } from './proto.js';
import { typedArrayFromBytes } from './tensor.js';
import type { Model, Tensor } from './types.js';

/** Protobuf messages must stay below 2 GiB; Alki moves weights out well before that. */
const AUTO_EXTERNAL_BYTES = 1024 * 1024 * 1024;
/** Tensors smaller than this stay inline even in external mode (shapes, norms, scales). */
const MIN_EXTERNAL_TENSOR_BYTES = 1024;
/** Offsets of large tensors are page aligned so that runtimes can mmap them. */
const PAGE = 4096;

export interface WriteModelOptions {
  /**
   * 'auto' (default): external data when the weights exceed 1 GiB; 'always';
   * 'never' (fails above 2 GiB).
   */
  externalData?: 'auto' | 'always' | 'never';
}

/** Writes `model` to `path`, with weights in `<basename>.data` beside it when external. Returns the files written. */
export function writeModelFile(path: string, model: Model, options: WriteModelOptions = {}): string[] {
  const mode = options.externalData ?? 'auto';
  const total = model.graph.initializers.reduce((s, t) => s + t.data.byteLength, 0);
  const useExternal = mode === 'always' || (mode === 'auto' && total > AUTO_EXTERNAL_BYTES);
  try {
    if (!useExternal) {
      writeFileSync(path, encodeModel(model));
      return [path];
    }
    const dataPath = `${path}.data`;
    const location = basename(dataPath);
    const external = new Map<Tensor, ExternalRef>();
    const fd = openSync(dataPath, 'w');
    try {
      let offset = 0;
      for (const t of model.graph.initializers) {
        const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
        if (bytes.byteLength < MIN_EXTERNAL_TENSOR_BYTES) continue;
        const aligned = bytes.byteLength >= 64 * 1024 ? Math.ceil(offset / PAGE) * PAGE : Math.ceil(offset / 16) * 16;
        if (aligned > offset) writeSync(fd, new Uint8Array(aligned - offset));
        writeSync(fd, bytes);
        external.set(t, { location, offset: aligned, length: bytes.byteLength });
        offset = aligned + bytes.byteLength;
      }
    } finally {
      closeSync(fd);
    }
    writeFileSync(path, encodeModel(model, { external }));
    return [path, dataPath];
  } catch (e) {
    throw fsError(e, `writing ${path}`);
  }
}

export interface ReadModelOptions {
  /** Load external weights into memory (default true). */
  loadExternalData?: boolean;
}

/** Reads an ONNX file, resolving external data relative to its folder. */
export function readModelFile(path: string, options: ReadModelOptions = {}): Model {
  if (!existsSync(path)) throw new AlkiError('NOT_FOUND', `ONNX file not found: ${path}`, 'check the path');
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw fsError(e, `reading ${path}`);
  }
  const { model, external } = decodeModel(bytes);
  if (options.loadExternalData !== false) resolveExternalData(external, dirname(path));
  return model;
}

/** Reads the bytes of external tensors into memory, checking every reference stays in `baseDir` and inside its file. */
export function resolveExternalData(external: Map<Tensor, ExternalRef>, baseDir: string): void {
  const fds = new Map<string, { fd: number; size: number }>();
  try {
    for (const [tensor, ref] of external) {
      const rel = normalize(ref.location);
      if (isAbsolute(rel) || rel.startsWith('..')) {
        throw new AlkiError('CORRUPT_ONNX', `tensor "${tensor.name}" points outside the model folder (${ref.location})`, 'external data must sit beside the model file');
      }
      const file = join(baseDir, rel);
      let entry = fds.get(file);
      if (!entry) {
        if (!existsSync(file)) throw new AlkiError('NOT_FOUND', `external data file ${ref.location} is missing`, 'copy the .data file next to model.onnx');
        entry = { fd: openSync(file, 'r'), size: statSync(file).size };
        fds.set(file, entry);
      }
      if (ref.offset < 0 || ref.offset + ref.length > entry.size) {
        throw new AlkiError('CORRUPT_ONNX', `tensor "${tensor.name}" reads past the end of ${ref.location}`, 'the external data file is truncated; copy or export it again');
      }
      const buf = new Uint8Array(ref.length);
      readSync(entry.fd, buf, 0, ref.length, ref.offset);
      tensor.data = typedArrayFromBytes(tensor.dataType, buf);
    }
  } finally {
    for (const { fd } of fds.values()) closeSync(fd);
  }
}
