import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, normalize, sep } from 'node:path';
import { AlkiError, fsError, showValue } from '@alki/core';
import { READ_NONBLOCK } from '@alki/core/node';
import { decodeModel, encodeModel, type ExternalRef } from './proto.js';
import { elementSize, numel, typedArrayFromBytes } from './tensor.js';
import { tensorByteLength } from './lazy.js';
import type { Model, Tensor } from './types.js';

/**
 * Weights beyond this go to external data. Protobuf messages must stay below 2 GiB, but memory decides earlier:
 * onnxruntime maps external data instead of reading a copy, so a TinyLlama-shaped int4 model peaks at 1.35 GB with
 * external data against 1.72 GB inline (prompt 128, 32 new tokens; docs/decisions.md).
 */
const AUTO_EXTERNAL_BYTES = 64 * 1024 * 1024;
/** Tensors smaller than this stay inline even in external mode (shapes, norms, scales). */
const MIN_EXTERNAL_TENSOR_BYTES = 1024;
/** Offsets of large tensors are page aligned so that runtimes can mmap them. */
const PAGE = 4096;

export interface WriteModelOptions {
  /**
   * 'auto' (default): external data when the weights exceed 64 MiB; 'always';
   * 'never' (fails above 2 GiB).
   */
  externalData?: 'auto' | 'always' | 'never';
}

/**
 * Writes `model` to `path`, with weights in `<basename>_data` beside it when external (the transformers.js and
 * Optimum name, which the browser loader fetches). Returns the files written. External data is written one tensor
 * at a time, so a model of lazy tensors (lazy.ts) streams through with one tensor's values in memory.
 */
export function writeModelFile(path: string, model: Model, options: WriteModelOptions = {}): string[] {
  const mode = options.externalData ?? 'auto';
  const total = model.graph.initializers.reduce((s, t) => s + tensorByteLength(t), 0);
  const useExternal = mode === 'always' || (mode === 'auto' && total > AUTO_EXTERNAL_BYTES);
  try {
    if (!useExternal) {
      writeFileSync(path, encodeModel(model));
      return [path];
    }
    const dataPath = `${path}_data`;
    const location = basename(dataPath);
    const external = new Map<Tensor, ExternalRef>();
    const fd = openSync(dataPath, 'w');
    try {
      let offset = 0;
      for (const t of model.graph.initializers) {
        if (tensorByteLength(t) < MIN_EXTERNAL_TENSOR_BYTES) continue;
        const d = t.data;
        const bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
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

/** Protobuf messages cannot exceed 2 GiB: a larger .onnx file is not one model. */
const MAX_PROTO_BYTES = 2 ** 31;

/** Reads an ONNX file, resolving external data relative to its folder. */
export function readModelFile(path: string, options: ReadModelOptions = {}): Model {
  if (!existsSync(path)) throw new AlkiError('NOT_FOUND', `ONNX file not found: ${path}`, 'check the path');
  let bytes: Uint8Array;
  let fd: number | undefined;
  try {
    fd = openSync(path, READ_NONBLOCK);
    const stat = fstatSync(fd);
    if (!stat.isFile())
      throw new AlkiError('CORRUPT_ONNX', `${path} is not a regular file (a folder, pipe or device), so not an ONNX model`, 'point to the .onnx file itself');
    if (stat.size === 0)
      throw new AlkiError(
        'CORRUPT_ONNX',
        `${path} is empty (0 bytes), not an ONNX model`,
        'the export or copy was interrupted: export or copy the model again',
      );
    if (stat.size > MAX_PROTO_BYTES) {
      throw new AlkiError(
        'CORRUPT_ONNX',
        `${path} has ${stat.size} bytes, more than the 2 GiB an ONNX protobuf can hold`,
        'weights this large must be stored as external data (.onnx_data); export the model again',
      );
    }
    bytes = readFileSync(fd);
  } catch (e) {
    throw fsError(e, `reading ${path}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  const { model, external } = decodeModel(bytes, path);
  if (options.loadExternalData !== false) resolveExternalData(external, dirname(path));
  return model;
}

/** Reads exactly `buf.length` bytes at `position`. */
function readFully(fd: number, buf: Uint8Array, position: number): boolean {
  let done = 0;
  while (done < buf.length) {
    const n = readSync(fd, buf, done, Math.min(buf.length - done, 1 << 30), position + done);
    if (n === 0) return false;
    done += n;
  }
  return true;
}

/**
 * Reads the bytes of external tensors into memory, checking every reference stays in `baseDir`
 * and inside its file, and that its length matches the tensor's dims, before allocating.
 */
export function resolveExternalData(external: Map<Tensor, ExternalRef>, baseDir: string): void {
  const files = new Map<string, { fd: number; size: number; claimed: number }>();
  const HINT_DATA = 'the external data file is damaged or belongs to another export; copy or export the model again';
  try {
    for (const [tensor, ref] of external) {
      const what = `tensor ${showValue(tensor.name, 80)} of the model in ${baseDir}`;
      const location = ref?.location;
      if (typeof location !== 'string' || location === '' || location.includes('\0')) {
        throw new AlkiError('CORRUPT_ONNX', `${what} names an invalid external data location ${showValue(location, 80)}`, HINT_DATA);
      }
      const rel = normalize(location);
      if (isAbsolute(rel) || rel === '.' || rel === '..' || rel.startsWith(`..${sep}`) || rel.split(sep).includes('..')) {
        throw new AlkiError(
          'CORRUPT_ONNX',
          `${what} points outside the model folder (${showValue(location, 80)})`,
          'external data must sit beside the model file',
        );
      }
      const { offset, length } = ref;
      if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
        throw new AlkiError(
          'CORRUPT_ONNX',
          `${what} has an invalid external data range (offset ${showValue(offset, 80)}, length ${showValue(length, 80)})`,
          HINT_DATA,
        );
      }
      const size = elementSize(tensor.dataType);
      const expected = size * numel(tensor.dims);
      if (size === 0 || !Number.isSafeInteger(expected) || length !== expected) {
        throw new AlkiError(
          'CORRUPT_ONNX',
          `${what} declares ${length} bytes of external data but its type and dims [${tensor.dims.slice(0, 8).join(', ')}] need ${expected}`,
          HINT_DATA,
        );
      }
      const file = join(baseDir, rel);
      const fileName = showValue(file, 200);
      let entry = files.get(file);
      if (!entry) {
        if (!existsSync(file))
          throw new AlkiError(
            'NOT_FOUND',
            `external data file ${fileName} is missing`,
            'copy the external data file (model*.onnx_data) next to the model file',
          );
        let fd: number | undefined;
        try {
          fd = openSync(file, READ_NONBLOCK);
          const stat = fstatSync(fd);
          entry = { fd, size: stat.size, claimed: 0 };
          files.set(file, entry);
          if (!stat.isFile())
            throw new AlkiError('CORRUPT_ONNX', `${what} points to ${fileName}, which is not a regular file (a folder, pipe or device)`, HINT_DATA);
        } catch (e) {
          if (fd !== undefined && !files.has(file)) closeSync(fd);
          throw fsError(e, `opening ${fileName}`);
        }
      }
      // Before allocating: the range must lie in the file, and all tensors together cannot claim more than it holds.
      if (offset + length > entry.size) {
        throw new AlkiError(
          'CORRUPT_ONNX',
          `${what} reads past the end of ${fileName} (bytes ${offset}..${offset + length} of ${entry.size})`,
          'the external data file is truncated; copy or export it again',
        );
      }
      entry.claimed += length;
      if (entry.claimed > entry.size) {
        throw new AlkiError(
          'CORRUPT_ONNX',
          `the tensors of the model in ${baseDir} claim ${entry.claimed} bytes of ${fileName}, which holds ${entry.size}; their ranges overlap`,
          HINT_DATA,
        );
      }
      const buf = new Uint8Array(length);
      let complete: boolean;
      try {
        complete = readFully(entry.fd, buf, offset);
      } catch (e) {
        throw fsError(e, `reading ${fileName}`);
      }
      if (!complete)
        throw new AlkiError('CORRUPT_ONNX', `${fileName} ended while reading ${what}`, 'the external data file is truncated; copy or export it again');
      tensor.data = typedArrayFromBytes(tensor.dataType, buf);
    }
  } finally {
    for (const { fd } of files.values()) closeSync(fd);
  }
}
