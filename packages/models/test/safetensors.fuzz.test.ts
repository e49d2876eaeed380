/**
 * Fuzz: readSafetensorsHeader, readSafetensorsBytes and decodeFloat on mutated files. Every case
 * returns a well-formed result or throws an AlkiError (see tools/fixtures/fuzz.ts).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { float32ToBfloat16, float32ToFloat16 } from '@alki/onnx';
import { decodeFloat, readSafetensorsBytes, readSafetensorsHeader, writeSafetensors, type SafetensorsEntry } from '../src/index.js';
import {
  applyByteOps,
  applyJsonOps,
  byteOps,
  checkAlkiError,
  fuzzParams,
  fuzzTempDir,
  fuzzTimeout,
  hostileValue,
  jsonOps,
  makeFifo,
  outcome,
  RawJson,
  stringifyJson,
} from '../../../tools/fixtures/fuzz.js';

const t = fuzzTempDir('alki-fuzz-st-');
afterAll(() => t.cleanup());

const SIZE: Record<string, number> = {
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

/** A safetensors file from a header value (may hold RawJson) and data bytes; `headerLen` overrides the length field. */
function rawFile(header: unknown, data: Uint8Array, headerLen?: bigint): Buffer {
  const json = Buffer.from(stringifyJson(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(headerLen ?? BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

// The valid file every case starts from: float tensors the reader decodes, others it refuses to decode, an empty one.
const values = new Float32Array([1, -2, 0.5, 3.25, -0, 65504]);
const validPath = join(t.dir, 'valid.safetensors');
writeSafetensors(
  validPath,
  {
    'model.a.weight': { dtype: 'F32', shape: [2, 3], data: values },
    'model.b.weight': { dtype: 'F16', shape: [6], data: float32ToFloat16(values) },
    'model.c.weight': { dtype: 'BF16', shape: [3, 2], data: float32ToBfloat16(values) },
  },
  { format: 'pt', note: 'fuzz' },
);
const validBytes = readFileSync(validPath);
const validHeaderLen = Number(validBytes.readBigUInt64LE(0));
const validHeader = JSON.parse(validBytes.subarray(8, 8 + validHeaderLen).toString('utf8')) as Record<string, unknown>;
const validData = new Uint8Array(validBytes.subarray(8 + validHeaderLen));
// Hand-written extras: F64, I64 and an empty tensor, appended after the float data.
const extraHeader = {
  ...validHeader,
  'model.d.weight': { dtype: 'F64', shape: [2], data_offsets: [validData.length, validData.length + 16] },
  'model.e.index': { dtype: 'I64', shape: [1], data_offsets: [validData.length + 16, validData.length + 24] },
  'model.f.empty': { dtype: 'F32', shape: [0, 4], data_offsets: [validData.length + 24, validData.length + 24] },
};
const extraData = Buffer.concat([validData, Buffer.from(new Float64Array([1.5, -2.5]).buffer), Buffer.from(new BigInt64Array([7n]).buffer)]);

const casePath = join(t.dir, 'case.safetensors');

/** The contract for one file: a well-formed header whose tensors read and decode, or AlkiErrors naming the file. */
function checkFile(bytes: Uint8Array): void {
  writeFileSync(casePath, bytes);
  const r = outcome(() => readSafetensorsHeader(casePath), casePath);
  if (!r.ok) return;
  const header = r.value;
  expect(header.path).toBe(casePath);
  for (const v of Object.values(header.metadata)) expect(typeof v).toBe('string');
  for (const entry of header.entries.values()) {
    expect(
      Number.isSafeInteger(entry.begin) && Number.isSafeInteger(entry.end) && entry.begin >= 8 && entry.begin <= entry.end && entry.end <= bytes.length,
    ).toBe(true);
    expect(entry.shape.every((d) => Number.isSafeInteger(d) && d >= 0)).toBe(true);
    const numel = entry.shape.reduce((a, d) => a * d, 1);
    expect(entry.end - entry.begin === numel * SIZE[entry.dtype]).toBe(true);
    const raw = outcome(() => readSafetensorsBytes(entry, casePath), casePath);
    if (!raw.ok) continue;
    expect(raw.value.byteLength).toBe(entry.end - entry.begin);
    const f = outcome(() => decodeFloat(entry, raw.value));
    if (f.ok) expect(f.value.length === numel).toBe(true);
    else expect(['F32', 'F16', 'BF16', 'F64']).not.toContain(entry.dtype);
  }
}

describe('safetensors fuzz', () => {
  it('reads the valid files', () => {
    const h = readSafetensorsHeader(validPath);
    expect(Array.from(decodeFloat(h.entries.get('model.a.weight')!, readSafetensorsBytes(h.entries.get('model.a.weight')!, validPath)))).toEqual(
      Array.from(values),
    );
    expect(h.metadata).toEqual({ format: 'pt', note: 'fuzz' });
    writeFileSync(casePath, rawFile(extraHeader, extraData));
    const x = readSafetensorsHeader(casePath);
    expect(Array.from(decodeFloat(x.entries.get('model.d.weight')!, readSafetensorsBytes(x.entries.get('model.d.weight')!, casePath)))).toEqual([1.5, -2.5]);
    checkFile(validBytes);
  });

  it(
    'mutated bytes give a header or an AlkiError',
    () => {
      const base = fc.constantFrom(validBytes, rawFile(extraHeader, extraData));
      fc.assert(
        fc.property(base, byteOps(5), (b, ops) => checkFile(applyByteOps(b, ops))),
        fuzzParams(),
      );
    },
    fuzzTimeout(),
  );

  it(
    'hostile header JSON gives a header or an AlkiError',
    () => {
      const lenDelta = fc.oneof(
        { weight: 8, arbitrary: fc.constant(0n) },
        { weight: 1, arbitrary: fc.bigInt({ min: -16n, max: 16n }) },
        { weight: 1, arbitrary: fc.constantFrom(2n ** 32n, 2n ** 53n, 2n ** 63n, 100n * 1024n * 1024n) },
      );
      const dataCut = fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.integer({ min: -40, max: 40 }) });
      fc.assert(
        fc.property(jsonOps(3, ['dtype', 'shape', 'data_offsets', '__metadata__']), lenDelta, dataCut, (ops, delta, cut) => {
          const header = applyJsonOps(extraHeader, ops);
          const json = Buffer.from(stringifyJson(header), 'utf8');
          let len = BigInt(json.length) + delta;
          if (len < 0n) len = 0n;
          if (len >= 2n ** 64n) len = 2n ** 64n - 1n;
          const data = cut >= 0 ? Buffer.concat([extraData, Buffer.alloc(cut)]) : extraData.subarray(0, extraData.length + cut);
          checkFile(rawFile(header, data, len));
        }),
        fuzzParams(),
      );
    },
    fuzzTimeout(),
  );

  it(
    'hostile offsets and shapes give a header or an AlkiError',
    () => {
      const num = fc.oneof(fc.integer({ min: -8, max: 200 }), fc.constantFrom(2 ** 53, 2 ** 53 + 2, 2 ** 64, -(2 ** 53), 1.5, 1e308), hostileValue());
      const tensor = fc.record({
        dtype: fc.oneof(fc.constantFrom(...Object.keys(SIZE), 'toString', '__proto__', 'F12', 'f32'), hostileValue()),
        shape: fc.oneof(fc.array(num, { maxLength: 4 }), hostileValue(), fc.constant(Array.from({ length: 1000 }, () => 1))),
        data_offsets: fc.oneof(fc.tuple(num, num), fc.array(num, { maxLength: 3 }), hostileValue()),
      });
      fc.assert(
        fc.property(
          fc.dictionary(fc.constantFrom('a', 'b', 'c', '__proto__', '__metadata__', ''), tensor, { minKeys: 1, maxKeys: 4 }),
          fc.integer({ min: 0, max: 256 }),
          (header, dataLen) => {
            checkFile(rawFile(header, new Uint8Array(dataLen)));
          },
        ),
        fuzzParams(),
      );
    },
    fuzzTimeout(),
  );

  it(
    'decodeFloat and readSafetensorsBytes refuse hostile entries with an AlkiError',
    () => {
      const entry = fc.record({
        name: fc.oneof(fc.string({ maxLength: 8 }), hostileValue()),
        dtype: fc.oneof(fc.constantFrom(...Object.keys(SIZE), 'toString'), hostileValue()),
        shape: fc.oneof(fc.array(fc.integer({ min: 0, max: 8 }), { maxLength: 3 }), hostileValue()),
        begin: fc.oneof(fc.integer({ min: 0, max: validBytes.length + 8 }), hostileValue()),
        end: fc.oneof(fc.integer({ min: 0, max: validBytes.length + 8 }), fc.constantFrom(2 ** 40, 2 ** 53), hostileValue()),
      }) as unknown as fc.Arbitrary<SafetensorsEntry>;
      fc.assert(
        fc.property(entry, fc.uint8Array({ maxLength: 80 }), fc.integer({ min: 0, max: 7 }), (e, data, shift) => {
          const bytes = new Uint8Array(data.length + shift).subarray(shift);
          bytes.set(data);
          const f = outcome(() => decodeFloat(e, bytes));
          if (f.ok) expect(f.value).toBeInstanceOf(Float32Array);
          const r = outcome(() => readSafetensorsBytes(e, validPath), validPath);
          if (r.ok) expect(r.value.byteLength === e.end - e.begin).toBe(true);
        }),
        fuzzParams(),
      );
    },
    fuzzTimeout(),
  );

  // Inputs that crashed the readers before they were hardened, kept as regression cases.
  it('regressions: folders, prototype dtypes, deep nesting, bad metadata, hostile entries', () => {
    const dir = join(t.dir, 'a-folder.safetensors');
    mkdirSync(dir, { recursive: true });
    const cases: [string, Buffer | 'dir'][] = [
      ['a folder (EISDIR from readSync)', 'dir'],
      ['dtype "toString" (inherited from Object.prototype)', rawFile({ a: { dtype: 'toString', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4))],
      [
        'a deeply nested dtype (JSON.stringify stack overflow)',
        rawFile({ a: { dtype: new RawJson('['.repeat(200_000) + ']'.repeat(200_000)), shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4)),
      ],
      ['a tensor entry that is null', rawFile({ a: null }, new Uint8Array(4))],
      ['__metadata__ that is a number', rawFile({ __metadata__: 5, a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4))],
      ['offsets beyond 2^53', rawFile({ a: { dtype: 'U8', shape: [2], data_offsets: [2 ** 53, 2 ** 53 + 2] } }, new Uint8Array(4))],
      ['a header length of 2^64-1', rawFile({}, new Uint8Array(4), 2n ** 64n - 1n)],
    ];
    for (const [what, bytes] of cases) {
      const path = bytes === 'dir' ? dir : casePath;
      if (bytes !== 'dir') writeFileSync(casePath, bytes);
      let err: unknown;
      try {
        readSafetensorsHeader(path);
      } catch (e) {
        err = e;
      }
      expect(err, what).toBeDefined();
      checkAlkiError(err, path);
    }
    const h = readSafetensorsHeader(validPath);
    const a = h.entries.get('model.a.weight')!;
    for (const e of [
      { ...a, end: a.begin - 1 },
      { ...a, begin: -5 },
      { ...a, end: 2 ** 53 },
      { ...a, end: NaN },
      { ...a, end: a.end + 1e9 },
    ]) {
      expect(() => readSafetensorsBytes(e, validPath)).toThrow(expect.objectContaining({ code: 'CORRUPT_SAFETENSORS' }));
    }
    expect(() => decodeFloat(a, new Uint8Array(7))).toThrow(expect.objectContaining({ code: 'CORRUPT_SAFETENSORS' }));
    const fifo = join(t.dir, 'fifo.safetensors');
    if (makeFifo(fifo)) expect(() => readSafetensorsHeader(fifo)).toThrow(/not a regular file/);
    expect(() => decodeFloat({ ...a, shape: [2, 1] }, new Uint8Array(24))).toThrow(/has 24 bytes but its shape/);
  });
});
