import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { AlkiError, fsError, showValue } from '@alki/core';
import { READ_NONBLOCK } from '@alki/core/node';
import { bfloat16ToFloat32, float16ToFloat32 } from '@alki/onnx';

/** Safetensors dtypes and their element sizes. */
const DTYPE_SIZE: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
  U16: 2,
  U32: 4,
  U64: 8,
  F8_E4M3: 1,
  F8_E5M2: 1,
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
/** More dimensions than this is not a weight (the reference implementation has no limit; ONNX stops far below). */
const MAX_RANK = 64;

const HINT_CORRUPT = 'the download may be incomplete: delete the file and download or copy it again';

/** Elements of a shape, or Infinity once the product leaves the safe integers. */
function safeNumel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (n > Number.MAX_SAFE_INTEGER) return Infinity;
  }
  return n;
}

/** Reads exactly `length` bytes at `position`; a short file is CORRUPT_SAFETENSORS. */
function readFully(fd: number, buf: Uint8Array, position: number, path: string, what: string): void {
  let done = 0;
  while (done < buf.length) {
    const n = readSync(fd, buf, done, Math.min(buf.length - done, 1 << 30), position + done);
    if (n === 0) throw new AlkiError('CORRUPT_SAFETENSORS', `${path} ended while reading ${what}; the file is truncated`, 'copy or download the file again');
    done += n;
  }
}

/**
 * Reads and strictly validates the header of a safetensors file: a sane header
 * length, JSON that parses, known dtypes, shapes that match the byte ranges,
 * ranges inside the file and no two tensors overlapping.
 */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  let fd: number | undefined;
  try {
    fd = openSync(path, READ_NONBLOCK);
    const stat = fstatSync(fd);
    if (!stat.isFile())
      throw new AlkiError(
        'CORRUPT_SAFETENSORS',
        `${path} is not a regular file (a folder, pipe or device), so not a safetensors file`,
        'point to the .safetensors file itself',
      );
    const size = stat.size;
    const bad = (what: string) => new AlkiError('CORRUPT_SAFETENSORS', `${path} is not a valid safetensors file: ${what}`, HINT_CORRUPT);
    if (size < 8) throw bad(`the file has only ${size} bytes`);
    const lenBuf = Buffer.alloc(8);
    readFully(fd, lenBuf, 0, path, 'the header length');
    const headerLen64 = lenBuf.readBigUInt64LE(0);
    if (headerLen64 < 2n || headerLen64 > BigInt(MAX_HEADER)) throw bad(`header length ${headerLen64} is not plausible`);
    const headerLen = Number(headerLen64);
    if (8 + headerLen > size) throw bad(`the header (${headerLen} bytes) runs past the end of the file (${size} bytes); the file is truncated`);
    const headerBuf = Buffer.alloc(headerLen);
    readFully(fd, headerBuf, 8, path, 'the header');
    let json: unknown;
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
      const tensor = `tensor ${showValue(name)}`;
      if (name === '__metadata__') {
        if (raw === null) continue;
        if (typeof raw !== 'object' || Array.isArray(raw) || !Object.values(raw).every((v) => typeof v === 'string'))
          throw bad('__metadata__ is not a map of strings');
        metadata = raw as Record<string, string>;
        continue;
      }
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
        throw bad(`${tensor} is ${showValue(raw)}, not an object with dtype, shape and data_offsets`);
      const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (typeof e.dtype !== 'string' || !Object.hasOwn(DTYPE_SIZE, e.dtype)) throw bad(`${tensor} has unknown dtype ${showValue(e.dtype)}`);
      if (!Array.isArray(e.shape) || e.shape.length > MAX_RANK || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
        throw bad(`${tensor} has an invalid shape ${showValue(e.shape)}`);
      const off = e.data_offsets;
      if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0) || off[0] > off[1]) {
        throw bad(`${tensor} has invalid data_offsets ${showValue(off)}`);
      }
      const [b, en] = off as [number, number];
      const expected = safeNumel(e.shape) * DTYPE_SIZE[e.dtype];
      if (en - b !== expected) throw bad(`${tensor} holds ${en - b} bytes but its shape and dtype need ${expected}`);
      if (en > dataSize) throw bad(`${tensor} ends at byte ${dataStart + en} but the file has ${size} bytes; the file is truncated`);
      // `+ 0` turns a JSON -0 into 0.
      entries.set(name, { name, dtype: e.dtype, shape: (e.shape as number[]).map((d) => d + 0), begin: dataStart + b, end: dataStart + en });
    }
    const sorted = [...entries.values()].filter((e) => e.end > e.begin).sort((a, b) => a.begin - b.begin);
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i].begin < sorted[i - 1].end) throw bad(`tensors ${showValue(sorted[i - 1].name)} and ${showValue(sorted[i].name)} overlap`);
    }
    return { path, entries, metadata };
  } catch (e) {
    throw fsError(e, `reading ${path}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Checks that an entry is a byte range a file can hold (entries may come from callers, not only from headers). */
function checkEntry(entry: SafetensorsEntry, path: string): void {
  const { begin, end } = entry ?? ({} as SafetensorsEntry);
  if (!Number.isSafeInteger(begin) || !Number.isSafeInteger(end) || begin < 0 || end < begin) {
    throw new AlkiError(
      'CORRUPT_SAFETENSORS',
      `tensor ${showValue(entry?.name)} of ${path} has an invalid byte range [${showValue(begin)}, ${showValue(end)})`,
      'read the entry from readSafetensorsHeader of the same file',
    );
  }
}

/** Reads one tensor's raw bytes. */
export function readSafetensorsBytes(entry: SafetensorsEntry, path: string): Uint8Array {
  checkEntry(entry, path);
  let fd: number | undefined;
  try {
    fd = openSync(path, READ_NONBLOCK);
    const stat = fstatSync(fd);
    if (!stat.isFile())
      throw new AlkiError(
        'CORRUPT_SAFETENSORS',
        `${path} is not a regular file (a folder, pipe or device), so not a safetensors file`,
        'point to the .safetensors file itself',
      );
    // Before allocating: a range past the end means the file changed or was truncated since its header was read.
    if (entry.end > stat.size) {
      throw new AlkiError(
        'CORRUPT_SAFETENSORS',
        `${path} ends at byte ${stat.size}, before the end of tensor ${showValue(entry.name)} (byte ${entry.end}); the file is truncated`,
        'the file changed or is incomplete: copy or download it again',
      );
    }
    const buf = new Uint8Array(entry.end - entry.begin);
    readFully(fd, buf, entry.begin, path, `tensor ${showValue(entry.name)}`);
    return buf;
  } catch (e) {
    throw fsError(e, `reading ${path}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Decodes F32/F16/BF16 bytes to float32 values. */
export function decodeFloat(entry: SafetensorsEntry, bytes: Uint8Array): Float32Array {
  const size = typeof entry?.dtype === 'string' && Object.hasOwn(DTYPE_SIZE, entry.dtype) ? DTYPE_SIZE[entry.dtype] : 0;
  if (size === 0 || !['F32', 'F16', 'BF16', 'F64'].includes(entry.dtype)) {
    throw new AlkiError(
      'UNSUPPORTED_CONFIG',
      `tensor ${showValue(entry?.name)} has dtype ${showValue(entry?.dtype)}, which Alki cannot read as a weight`,
      `supported weight dtypes: ${FLOAT_DTYPES.join(', ')}`,
    );
  }
  const shapeOk = Array.isArray(entry.shape) && entry.shape.every((d) => Number.isSafeInteger(d) && d >= 0);
  const expected = shapeOk ? safeNumel(entry.shape) * size : NaN;
  if (bytes.byteLength !== expected) {
    throw new AlkiError(
      'CORRUPT_SAFETENSORS',
      `tensor ${showValue(entry.name)} has ${bytes.byteLength} bytes but its shape ${showValue(entry.shape)} and dtype ${entry.dtype} need ${expected}`,
      'the checkpoint is damaged: download or copy it again',
    );
  }
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : new Uint8Array(bytes);
  switch (entry.dtype) {
    case 'F32':
      return new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4);
    case 'F16':
      return float16ToFloat32(new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2));
    case 'BF16':
      return bfloat16ToFloat32(new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2));
    default:
      // F64: a copy is 8-byte aligned.
      return Float32Array.from(new Float64Array(new Uint8Array(bytes).buffer));
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
  const w = new SafetensorsWriter(
    path,
    Object.entries(tensors).map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape })),
    metadata,
  );
  try {
    for (const [name, t] of Object.entries(tensors)) w.write(name, t.data);
  } finally {
    w.close();
  }
}

/**
 * Writes a safetensors file whose tensors arrive one at a time, in any order: the header (name order, padded to
 * 8 bytes) is written first from the declared shapes, then each tensor at its offset, so that a checkpoint larger
 * than memory can be generated.
 */
export class SafetensorsWriter {
  private readonly fd: number;
  private readonly at = new Map<string, { offset: number; bytes: number }>();

  constructor(
    readonly path: string,
    entries: { name: string; dtype: SafetensorsTensor['dtype']; shape: number[] }[],
    metadata: Record<string, string> = { format: 'pt' },
  ) {
    const header: Record<string, unknown> = { __metadata__: metadata };
    let offset = 0;
    const layout: [string, number, number][] = [];
    for (const e of [...entries].sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const bytes = e.shape.reduce((a, b) => a * b, 1) * DTYPE_SIZE[e.dtype];
      header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + bytes] };
      layout.push([e.name, offset, bytes]);
      offset += bytes;
    }
    let json = JSON.stringify(header);
    json += ' '.repeat((8 - (json.length % 8)) % 8);
    const headerBytes = Buffer.from(json, 'utf8');
    const base = 8 + headerBytes.length;
    for (const [name, o, bytes] of layout) this.at.set(name, { offset: base + o, bytes });
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(headerBytes.length));
    try {
      this.fd = openSync(path, 'w');
    } catch (e) {
      throw fsError(e, `writing ${path}`);
    }
    this.put(Buffer.concat([len, headerBytes]), 0);
  }

  /** Writes one declared tensor's bytes (Float32Array for F32, Uint16Array bit patterns for F16/BF16). */
  write(name: string, data: Float32Array | Uint16Array): void {
    const slot = this.at.get(name);
    if (!slot || slot.bytes !== data.byteLength)
      throw new AlkiError('BAD_INPUT', `safetensors writer: ${showValue(name)} was not declared with ${data.byteLength} bytes`);
    this.put(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), slot.offset);
  }

  close(): void {
    closeSync(this.fd);
  }

  private put(bytes: Uint8Array, position: number): void {
    try {
      // In pieces: a tensor may exceed the 2 GiB a single write can take.
      for (let done = 0; done < bytes.byteLength;) done += writeSync(this.fd, bytes, done, Math.min(bytes.byteLength - done, 1 << 30), position + done);
    } catch (e) {
      throw fsError(e, `writing ${this.path}`);
    }
  }
}
