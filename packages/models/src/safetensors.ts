import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { AlkiError, fsError } from '@alki/core';
import { bfloat16ToFloat32, float16ToFloat32 } from '@alki/onnx';

/** Safetensors dtypes and their element sizes. */
const DTYPE_SIZE: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1, U16: 2, U32: 4, U64: 8,
  F8_E4M3: 1, F8_E5M2: 1,
};

/** The dtypes whose values Alki can read as float32 weights. */
export const FLOAT_DTYPES = ['F32', 'F16', 'BF16'] as const;

/** One tensor's entry in a safetensors header. */
export interface SafetensorsEntry {
  name: string;
  dtype: string;
  shape: number[];
  /** Absolute byte range in the file. */
  begin: number;
  end: number;
}

/** The parsed, validated header of one safetensors file. */
export interface SafetensorsHeader {
  path: string;
  entries: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
}

/** Headers above 100 MB are refused: the reference implementation does the same. */
const MAX_HEADER = 100 * 1024 * 1024;

/**
 * Reads and strictly validates the header of a safetensors file: a sane header
 * length, JSON that parses, known dtypes, shapes that match the byte ranges,
 * ranges inside the file and no two tensors overlapping.
 */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw fsError(e, `opening ${path}`);
  }
  try {
    const size = fstatSync(fd).size;
    const bad = (what: string) =>
      new AlkiError('CORRUPT_SAFETENSORS', `${path} is not a valid safetensors file: ${what}`, 'the download may be incomplete: delete the file and download or copy it again');
    if (size < 8) throw bad(`the file has only ${size} bytes`);
    const lenBuf = Buffer.alloc(8);
    readSync(fd, lenBuf, 0, 8, 0);
    const headerLen = Number(lenBuf.readBigUInt64LE(0));
    if (headerLen < 2 || headerLen > MAX_HEADER) throw bad(`header length ${headerLen} is not plausible`);
    if (8 + headerLen > size) throw bad(`the header (${headerLen} bytes) runs past the end of the file (${size} bytes); the file is truncated`);
    const headerBuf = Buffer.alloc(headerLen);
    readSync(fd, headerBuf, 0, headerLen, 8);
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(headerBuf.toString('utf8'));
    } catch {
      throw bad('the header is not valid JSON');
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad('the header is not a JSON object');
    const dataStart = 8 + headerLen;
    const dataSize = size - dataStart;
    const entries = new Map<string, SafetensorsEntry>();
    let metadata: Record<string, string> = {};
    for (const [name, raw] of Object.entries(json)) {
      if (name === '__metadata__') {
        metadata = (raw ?? {}) as Record<string, string>;
        continue;
      }
      const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (typeof e?.dtype !== 'string' || !(e.dtype in DTYPE_SIZE)) throw bad(`tensor "${name}" has unknown dtype ${JSON.stringify(e?.dtype)}`);
      if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) throw bad(`tensor "${name}" has an invalid shape`);
      const off = e.data_offsets;
      if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isInteger(d) && d >= 0) || off[0] > off[1]) {
        throw bad(`tensor "${name}" has invalid data_offsets`);
      }
      const [b, en] = off as [number, number];
      const expected = (e.shape as number[]).reduce((a, d) => a * d, 1) * DTYPE_SIZE[e.dtype];
      if (en - b !== expected) throw bad(`tensor "${name}" holds ${en - b} bytes but its shape and dtype need ${expected}`);
      if (en > dataSize) throw bad(`tensor "${name}" ends at byte ${dataStart + en} but the file has ${size} bytes; the file is truncated`);
      entries.set(name, { name, dtype: e.dtype, shape: e.shape as number[], begin: dataStart + b, end: dataStart + en });
    }
    const sorted = [...entries.values()].filter((e) => e.end > e.begin).sort((a, b) => a.begin - b.begin);
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i].begin < sorted[i - 1].end) throw bad(`tensors "${sorted[i - 1].name}" and "${sorted[i].name}" overlap`);
    }
    return { path, entries, metadata };
  } finally {
    closeSync(fd);
  }
}

/** Reads one tensor's raw bytes. */
export function readSafetensorsBytes(entry: SafetensorsEntry, path: string): Uint8Array {
  const buf = new Uint8Array(entry.end - entry.begin);
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    let done = 0;
    while (done < buf.length) {
      const n = readSync(fd, buf, done, Math.min(buf.length - done, 1 << 30), entry.begin + done);
      if (n === 0) throw new AlkiError('CORRUPT_SAFETENSORS', `${path} ended while reading "${entry.name}"`, 'the file is truncated: copy or download it again');
      done += n;
    }
  } catch (e) {
    throw fsError(e, `reading ${path}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  return buf;
}

/** Decodes F32/F16/BF16 bytes to float32 values. */
export function decodeFloat(entry: SafetensorsEntry, bytes: Uint8Array): Float32Array {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : new Uint8Array(bytes);
  switch (entry.dtype) {
    case 'F32':
      return new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4);
    case 'F16':
      return float16ToFloat32(new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2));
    case 'BF16':
      return bfloat16ToFloat32(new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2));
    case 'F64':
      return Float32Array.from(new Float64Array(new Uint8Array(aligned).buffer));
    default:
      throw new AlkiError('UNSUPPORTED_CONFIG', `tensor "${entry.name}" has dtype ${entry.dtype}, which Alki cannot read as a weight`, `supported weight dtypes: ${FLOAT_DTYPES.join(', ')}`);
  }
}

/** A tensor to write with {@link writeSafetensors}. */
export interface SafetensorsTensor {
  dtype: 'F32' | 'F16' | 'BF16';
  shape: number[];
  /** Little-endian bytes: Float32Array for F32, Uint16Array bit patterns for F16/BF16. */
  data: Float32Array | Uint16Array;
}

/** Writes a safetensors file (tensors in name order, header padded to 8 bytes). */
export function writeSafetensors(path: string, tensors: Record<string, SafetensorsTensor>, metadata: Record<string, string> = { format: 'pt' }): void {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const name of names) {
    const t = tensors[name];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(headerBytes.length));
  const parts: Uint8Array[] = [len, headerBytes];
  for (const name of names) {
    const d = tensors[name].data;
    parts.push(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  }
  // Tensor by tensor: a checkpoint may exceed the 2 GiB a single Buffer or write can hold.
  let fd: number | undefined;
  try {
    fd = openSync(path, 'w');
    for (const part of parts) {
      for (let at = 0; at < part.byteLength; ) at += writeSync(fd, part, at, Math.min(part.byteLength - at, 1 << 30));
    }
  } catch (e) {
    throw fsError(e, `writing ${path}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
