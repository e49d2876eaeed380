/**
 * Fuzz: decodeModel on mutated ONNX protobufs (bytes and message fields), and readModelFile /
 * resolveExternalData on a model with external data whose references, .onnx bytes and .data
 * file are mutated. Every case returns a well-formed model or throws an AlkiError; no external
 * data is ever read from outside the model's folder.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { afterAll, describe, expect, it } from 'vitest';
import { onnxSchema } from '../src/schema.js';
import {
  DataType,
  GraphBuilder,
  createModel,
  decodeModel,
  elementSize,
  encodeModel,
  floatTensor,
  int64Tensor,
  numel,
  readModelFile,
  resolveExternalData,
  uint8Tensor,
  writeModelFile,
  type ExternalRef,
  type Graph,
  type Model,
  type Tensor,
} from '../src/index.js';
import {
  applyByteOps,
  applyJsonOps,
  byteOps,
  checkAlkiError,
  fuzzParams,
  fuzzTempDir,
  fuzzTimeout,
  jsonOps,
  makeFifo,
  outcome,
} from '../../../tools/fixtures/fuzz.js';

const t = fuzzTempDir('alki-fuzz-onnx-');
afterAll(() => t.cleanup());

/** Every attribute type, a nested graph, inline tensors of several types and two tensors large enough for external data. */
function fuzzModel(): Model {
  const branch = new GraphBuilder('branch');
  const bx = branch.input('bx', DataType.FLOAT, [2]);
  const bk = branch.initializer(floatTensor('bk', [2], new Float32Array([3, 4])));
  branch.output(branch.node('Add', [bx, bk], {}, { outputs: ['by'] }), DataType.FLOAT, [2]);
  const b = new GraphBuilder('fuzz');
  const x = b.input('x', DataType.FLOAT, ['batch', 16]);
  const w = b.initializer(
    floatTensor(
      'w',
      [16, 32],
      new Float32Array(16 * 32).map((_, i) => Math.sin(i)),
    ),
  );
  const w2 = b.initializer(
    floatTensor(
      'w2',
      [32, 8],
      new Float32Array(32 * 8).map((_, i) => Math.cos(i)),
    ),
  );
  b.initializer(int64Tensor('shape', [2], [1, -1]));
  b.initializer(
    uint8Tensor(
      'codes',
      [4, 3],
      new Uint8Array(12).map((_, i) => i * 7),
    ),
  );
  b.initializer({ name: 'half', dataType: DataType.FLOAT16, dims: [3], data: new Uint16Array([0x3c00, 0xc000, 0x7bff]) });
  const h = b.node('MatMul', [x, w]);
  const y = b.node('MatMul', [h, w2], { alpha: 0.5, count: 3, mode: 'fast', axes: [0, -1], scales: [0.25, 2.5], names: ['a', 'b'] });
  const c = b.node('Constant', [], { value: { type: 'tensor', value: floatTensor('cst', [2], new Float32Array([1, 2])) } });
  b.node('If', [c], { then_branch: { type: 'graph', value: branch.build() }, else_branch: { type: 'graph', value: branch.build() } }, { outputs: ['z'] });
  b.output(y, DataType.FLOAT, ['batch', 8]);
  return createModel(b.build(), { opsets: { '': 17, 'com.microsoft': 1 }, metadata: { hello: 'world' } });
}

/** Every tensor of a model (initializers and tensor attributes, nested graphs included; iterative). */
function tensors(model: Model): Tensor[] {
  const out: Tensor[] = [];
  const stack: Graph[] = [model.graph];
  while (stack.length) {
    const g = stack.pop()!;
    out.push(...g.initializers);
    for (const n of g.nodes) {
      for (const a of Object.values(n.attributes)) {
        if (a.type === 'graph') stack.push(a.value);
        if (a.type === 'tensor') out.push(a.value);
      }
    }
  }
  return out;
}

/** A model is well formed: tensors with valid dims, and data matching them unless it is still external. */
function expectWellFormed(model: Model, external?: Map<Tensor, ExternalRef>): void {
  expect(Array.isArray(model.graph.nodes) && Array.isArray(model.graph.initializers)).toBe(true);
  for (const x of tensors(model)) {
    expect(
      x.dims.every((d) => Number.isSafeInteger(d) && d >= 0),
      `dims of ${x.name}`,
    ).toBe(true);
    const ref = external?.get(x);
    if (ref) {
      expect(Number.isSafeInteger(ref.offset) && ref.offset >= 0 && ref.length === numel(x.dims) * elementSize(x.dataType)).toBe(true);
      continue;
    }
    expect(x.data.length, `data of ${x.name}`).toBe(numel(x.dims));
  }
}

const root = protobuf.Root.fromJSON(onnxSchema as unknown as protobuf.INamespace);
const ModelProto = root.lookupType('onnx.ModelProto');

/** The message of ONNX bytes as plain JSON (longs as strings, bytes as arrays), for structural mutation. */
function toJson(bytes: Uint8Array): unknown {
  return ModelProto.toObject(ModelProto.decode(bytes), { longs: String, bytes: Array, enums: Number });
}

/** ONNX bytes of a mutated message, or undefined when protobufjs itself refuses it (the generator's failure, not the reader's). */
function fromJson(json: unknown): Uint8Array | undefined {
  try {
    return ModelProto.encode(ModelProto.fromObject(json as Record<string, unknown>)).finish();
  } catch {
    return undefined;
  }
}

const model = fuzzModel();
const inlineBytes = encodeModel(model);
const dir = join(t.dir, 'model');
mkdirSync(join(dir, 'sub'), { recursive: true });
const modelPath = join(dir, 'model.onnx');
expect(writeModelFile(modelPath, model, { externalData: 'always' })).toEqual([modelPath, `${modelPath}_data`]);
const externalBytes = readFileSync(modelPath);
const dataBytes = readFileSync(`${modelPath}_data`);
// A data file outside the model folder with the same bytes: a reference that escapes would read it successfully.
writeFileSync(join(t.dir, 'outside.data'), dataBytes);
writeFileSync(join(dir, 'sub', 'inner.data'), dataBytes);

/** Locations a hostile external reference might use. */
const locations = fc.constantFrom<unknown>(
  'model.onnx_data',
  './model.onnx_data',
  'sub/../model.onnx_data',
  'sub/inner.data',
  '../outside.data',
  join(t.dir, 'outside.data'),
  'sub/../../outside.data',
  '.',
  '..',
  'sub',
  '',
  'missing.data',
  'model.onnx',
  '/dev/zero',
  '/proc/self/mem',
  'model.onnx_data\u0000',
  '..\\outside.data',
  'x'.repeat(5000),
);
/** Offsets and lengths as the decimal strings ONNX stores. */
const counts = fc.oneof(
  fc.integer({ min: -8, max: dataBytes.length + 8 }).map(String),
  fc.constantFrom(
    '-1',
    '-2048',
    '1.5',
    '1e3',
    'NaN',
    '0x10',
    ' 16',
    '',
    'abc',
    String(2 ** 53),
    String(2 ** 53 + 2),
    '18446744073709551615',
    '2048',
    '1024',
    '4096',
    '0',
  ),
);

describe('ONNX reader fuzz', () => {
  it('reads the valid model, inline and with external data', () => {
    const a = decodeModel(inlineBytes);
    expectWellFormed(a.model);
    expect(a.external.size).toBe(0);
    const b = readModelFile(modelPath);
    expectWellFormed(b);
    expect(Array.from(b.graph.initializers[0].data as Float32Array)).toEqual(Array.from(model.graph.initializers[0].data as Float32Array));
    expect(decodeModel(externalBytes).external.size).toBe(2);
  });

  it(
    'decodeModel: mutated bytes give a well-formed model or an AlkiError',
    () => {
      fc.assert(
        fc.property(fc.constantFrom(inlineBytes, externalBytes), byteOps(5), (base, ops) => {
          const r = outcome(() => decodeModel(applyByteOps(base, ops), 'fuzz.onnx'), 'fuzz.onnx');
          if (r.ok) expectWellFormed(r.value.model, r.value.external);
        }),
        fuzzParams(),
      );
    },
    fuzzTimeout(),
  );

  it(
    'decodeModel: mutated message fields give a well-formed model or an AlkiError',
    () => {
      const base = toJson(externalBytes);
      const values = fc.oneof(
        locations,
        counts,
        fc.constantFrom<unknown>(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 99, 'location', 'offset', 'length', [{ key: 'location', value: '../outside.data' }]),
      );
      fc.assert(
        fc.property(
          jsonOps(3, ['dims', 'dataType', 'rawData', 'externalData', 'dataLocation', 'type', 't', 'g', 'floatData', 'int64Data', 'key', 'value'], values),
          (ops) => {
            const bytes = fromJson(applyJsonOps(base, ops));
            if (!bytes) return;
            const r = outcome(() => decodeModel(bytes, 'fuzz.onnx'), 'fuzz.onnx');
            if (r.ok) expectWellFormed(r.value.model, r.value.external);
          },
        ),
        fuzzParams(),
      );
    },
    fuzzTimeout(),
  );

  const externalJson = toJson(externalBytes);
  /** Paths inside the externalData entries and the dims/dataType of the external tensors: where references break. */
  const refPaths = (p: (string | number)[]) =>
    p.includes('externalData') || (p.includes('initializer') && (p.includes('dims') || p.includes('dataType') || p.includes('dataLocation')));

  it(
    'readModelFile: mutated files and external references give a model read from the folder, or an AlkiError',
    () => {
      const change = fc.oneof(
        {
          weight: 3,
          arbitrary: fc.record({
            kind: fc.constant('refs' as const),
            ops: jsonOps(3, ['location', 'offset', 'length', 'checksum'], fc.oneof(locations, counts)),
          }),
        },
        { weight: 2, arbitrary: fc.record({ kind: fc.constant('onnx' as const), ops: byteOps(4) }) },
        { weight: 2, arbitrary: fc.record({ kind: fc.constant('data' as const), ops: byteOps(2) }) },
      );
      fc.assert(
        fc.property(change, (c) => {
          let onnx: Uint8Array | undefined = externalBytes;
          let data: Uint8Array = dataBytes;
          if (c.kind === 'refs') onnx = fromJson(applyJsonOps(externalJson, c.ops, refPaths));
          if (c.kind === 'onnx') onnx = applyByteOps(externalBytes, c.ops);
          if (c.kind === 'data') data = applyByteOps(dataBytes, c.ops);
          if (!onnx) return;
          writeFileSync(modelPath, onnx);
          writeFileSync(`${modelPath}_data`, data);
          const r = outcome(() => readModelFile(modelPath), [dir, modelPath]);
          if (!r.ok) return;
          expectWellFormed(r.value);
          // Success means every reference resolved inside the folder.
          for (const ref of decodeModel(onnx).external.values()) expect(resolve(dir, ref.location).startsWith(`${dir}/`), ref.location).toBe(true);
        }),
        fuzzParams(),
      );
      writeFileSync(modelPath, externalBytes);
      writeFileSync(`${modelPath}_data`, dataBytes);
    },
    fuzzTimeout(),
  );

  it(
    'resolveExternalData: hostile references give data from the folder or an AlkiError',
    () => {
      const num = fc.oneof(
        fc.integer({ min: -8, max: dataBytes.length + 8 }),
        fc.constantFrom(NaN, Infinity, -1, 1.5, 2 ** 53, 2 ** 53 + 2, -(2 ** 31), 2048, 1024, 4096),
      );
      const dims = fc.oneof(
        fc.constant([16, 32]),
        fc.constant([32, 8]),
        fc.array(fc.oneof(fc.integer({ min: -2, max: 64 }), fc.constantFrom(2 ** 40, NaN)), { maxLength: 3 }),
      );
      fc.assert(
        fc.property(
          locations,
          num,
          num,
          dims,
          fc.constantFrom(DataType.FLOAT, DataType.UINT8, DataType.INT64, DataType.STRING, 0, 99),
          (location, offset, length, d, dataType) => {
            const tensor = { name: 'w', dataType, dims: d, data: new Float32Array(0) } as Tensor;
            const r = outcome(() => resolveExternalData(new Map([[tensor, { location, offset, length } as ExternalRef]]), dir), dir);
            if (!r.ok) return;
            expect(resolve(dir, location as string).startsWith(`${dir}/`)).toBe(true);
            expect(tensor.data.byteLength === length).toBe(true);
          },
        ),
        fuzzParams(),
      );
    },
    fuzzTimeout(),
  );

  // Inputs that crashed the readers before they were hardened, kept as regression cases.
  it('regressions: mutated offsets and lengths, empty files, folders, missing sub-messages', () => {
    const withRef = (edit: (kv: Record<string, string>) => void) => {
      const json = toJson(externalBytes) as { graph: { initializer: { externalData?: { key: string; value: string }[] }[] } };
      const entries = json.graph.initializer.find((x) => x.externalData?.length)!.externalData!;
      const kv = Object.fromEntries(entries.map((e) => [e.key, e.value]));
      edit(kv);
      json.graph.initializer.find((x) => x.externalData?.length)!.externalData = Object.entries(kv).map(([key, value]) => ({ key, value }));
      return fromJson(json)!;
    };
    const cases: [string, Uint8Array | 'empty' | 'folder'][] = [
      [
        'a negative length (RangeError: Invalid typed array length)',
        withRef((kv) => {
          kv.length = '-2048';
        }),
      ],
      [
        'a non-numeric offset (RangeError from readSync)',
        withRef((kv) => {
          kv.offset = 'abc';
        }),
      ],
      [
        'a fractional length (RangeError: Invalid typed array length)',
        withRef((kv) => {
          kv.length = '1.5';
        }),
      ],
      [
        'an offset of 2^53 with a negative length',
        withRef((kv) => {
          kv.offset = String(2 ** 53);
          kv.length = '-9007199254740992';
        }),
      ],
      [
        'the folder itself as location (EISDIR from readSync)',
        withRef((kv) => {
          kv.location = '.';
        }),
      ],
      [
        'a subfolder as location (EISDIR from readSync)',
        withRef((kv) => {
          kv.location = 'sub';
        }),
      ],
      [
        'a location leaving the folder',
        withRef((kv) => {
          kv.location = 'sub/../../outside.data';
        }),
      ],
      [
        'a length that does not match the dims',
        withRef((kv) => {
          kv.length = '1024';
        }),
      ],
      ['a 0-byte file', 'empty'],
      ['a folder named model.onnx', 'folder'],
      ['a graph attribute without its graph (TypeError)', fromJson({ graph: { node: [{ opType: 'If', attribute: [{ name: 'then_branch', type: 5 }] }] } })!],
      ['a tensor attribute without its tensor (TypeError)', fromJson({ graph: { node: [{ opType: 'Constant', attribute: [{ name: 'value', type: 4 }] }] } })!],
      ['dims that do not match the data', fromJson({ graph: { initializer: [{ name: 'w', dataType: 1, dims: ['1000000000000'], floatData: [1] }] } })!],
    ];
    for (const [what, c] of cases) {
      let path = modelPath;
      if (c === 'folder') {
        path = join(dir, 'sub', 'model.onnx');
        mkdirSync(path, { recursive: true });
      } else writeFileSync(modelPath, c === 'empty' ? new Uint8Array(0) : c);
      let err: unknown;
      try {
        readModelFile(path);
      } catch (e) {
        err = e;
      }
      expect(err, what).toBeDefined();
      checkAlkiError(err, [dirname(path)]);
      expect((err as { code: string }).code, what).toMatch(/CORRUPT_ONNX|NOT_FOUND/);
    }
    writeFileSync(modelPath, new Uint8Array(0));
    expect(() => readModelFile(modelPath)).toThrow(/is empty \(0 bytes\)/);
    const fifo = join(dir, 'sub', 'fifo.onnx');
    if (makeFifo(fifo)) expect(() => readModelFile(fifo)).toThrow(/not a regular file/);
    if (makeFifo(join(dir, 'fifo.data'))) {
      writeFileSync(
        modelPath,
        withRef((kv) => {
          kv.location = 'fifo.data';
        }),
      );
      expect(() => readModelFile(modelPath)).toThrow(/not a regular file/);
    }
    expect(() => decodeModel(new Uint8Array(0))).toThrow(expect.objectContaining({ code: 'CORRUPT_ONNX' }));
    writeFileSync(modelPath, externalBytes);
  });
});
