/**
 * Fuzz: validateManifest, readBundle and verifyBundle on a real bundle whose alki.json is
 * mutated (wrong types everywhere, paths leaving the bundle, huge numbers, missing fields, file
 * lists of non-objects). Every case gives a manifest the bundle code can use, a verify report,
 * or a BAD_BUNDLE AlkiError, never a TypeError.
 */
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildBundle,
  bundleEvalTarget,
  bundleReadme,
  manifestHash,
  quantizationLabel,
  readBundle,
  validateManifest,
  verifyBundle,
  type BundleManifest,
} from '../src/index.js';
import { tinyLlama } from '../../../tools/fixtures/index.js';
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
  outcome,
  stringifyJson,
} from '../../../tools/fixtures/fuzz.js';

const t = fuzzTempDir('alki-fuzz-bundle-');
const model = tinyLlama({ seed: 5, hiddenSize: 32, intermediateSize: 64, numLayers: 1, numHeads: 2, numKvHeads: 1 });
afterAll(() => {
  t.cleanup();
  model.cleanup();
});

const out = join(t.dir, 'bundle');
let manifest: BundleManifest;
let manifestText: string;
const manifestPath = () => join(out, 'alki.json');

beforeAll(async () => {
  ({ manifest } = await buildBundle({ modelDir: model.dir, out, quantize: { method: 'none' } }));
  manifestText = readFileSync(manifestPath(), 'utf8');
  // Things a hostile file list might point at: a folder, a link out of the bundle, an unlisted file.
  symlinkSync('/etc/hostname', join(out, 'link.txt'));
  mkdirSync(join(out, 'empty-folder'));
}, 120_000);

/** Paths a hostile manifest might list. */
const paths = fc.constantFrom<unknown>(
  'onnx/model.onnx',
  'onnx',
  'onnx/',
  './onnx/model.onnx',
  'onnx/../onnx/model.onnx',
  '../alki.json',
  '../../etc/passwd',
  '/etc/passwd',
  'C:/x',
  'a\\b',
  'link.txt',
  'empty-folder',
  'alki.json',
  'missing.bin',
  'tokenizer.json',
  'a\u0000b',
  'a\nb',
  '',
  '.',
  '..',
  'x'.repeat(5000),
);

/** The contract: a manifest the bundle code can use and a verify report, or BAD_BUNDLE. */
function checkBundle(text: string | Uint8Array): void {
  writeFileSync(manifestPath(), text);
  const r = outcome(() => readBundle(out), out);
  if (!r.ok) expect(r.error.code).toBe('BAD_BUNDLE');
  else {
    const m = r.value.manifest;
    // What the CLI and README do with a manifest must work.
    expect(typeof bundleReadme(m, 'fuzz')).toBe('string');
    expect(typeof quantizationLabel(m.quantization)).toBe('string');
    expect(bundleEvalTarget(r.value).modelPath.startsWith(`${r.value.dir}/`)).toBe(true);
    expect(typeof manifestHash(m)).toBe('string');
    for (const f of m.files) expect(join(out, f.path).startsWith(`${out}/`)).toBe(true);
    // What `alki info` prints of a device target.
    const tg = m.target as unknown as
      { settings: { threads: number; context: number }; overrides: string[]; features: string[]; memoryBytes: number } | string | null;
    if (tg && typeof tg === 'object') {
      expect(Number.isInteger(tg.settings.threads) && Number.isInteger(tg.settings.context) && Number.isInteger(tg.memoryBytes)).toBe(true);
      expect(tg.overrides.join(', ') + tg.features.join(' ')).toBeTypeOf('string');
    }
  }
  const v = outcome(() => verifyBundle(out), out);
  if (v.ok) {
    expect(typeof v.value.ok).toBe('boolean');
    expect(v.value.problems.every((p) => typeof p.path === 'string' && typeof p.detail === 'string')).toBe(true);
    if (!r.ok) expect(v.value.problems[0].problem).toBe('manifest');
  }
}

describe('alki.json fuzz', () => {
  it('reads and verifies the valid bundle', () => {
    expect(readBundle(out).manifest).toMatchObject(JSON.parse(JSON.stringify(manifest)));
    const v = verifyBundle(out);
    expect(v).toMatchObject({ ok: true, problems: [] });
  });

  it(
    'a mutated manifest gives a usable manifest or BAD_BUNDLE',
    () => {
      // Also a bundle built for a device: alki.json then records the target's settings.
      const target = {
        preset: 'raspberry-pi-5',
        name: 'Raspberry Pi 5',
        arch: 'arm64',
        features: ['neon', 'dotprod'],
        executionProviders: ['cpu'],
        memoryBytes: 8e9,
        usableBytes: 6e9,
        settings: { method: 'rtn', bits: 4, blockSize: 32, accuracyLevel: 4, headBits: 8, w8a8Format: 's7', flavour: 'ort', threads: 4, context: 2048 },
        overrides: ['bits'],
        estimatedPeakBytes: 1e9,
      };
      fc.assert(
        fc.property(
          fc.constantFrom<unknown>(manifest, { ...manifest, target }),
          jsonOps(
            3,
            [
              'path',
              'bytes',
              'sha256',
              'files',
              'model',
              'metrics',
              'value',
              'method',
              'numLayers',
              'eosTokenIds',
              'externalData',
              'quantization',
              'target',
              'settings',
            ],
            paths,
          ),
          (base, ops) => {
            checkBundle(stringifyJson(applyJsonOps(base, ops), 2));
          },
        ),
        fuzzParams(),
      );
    },
    fuzzTimeout(),
  );

  it(
    'hostile file lists give a usable manifest or BAD_BUNDLE',
    () => {
      const file = fc.oneof(
        fc.record({ path: paths, bytes: fc.oneof(fc.nat(), hostileValue()), sha256: fc.oneof(fc.constant('0'.repeat(64)), hostileValue()) }),
        hostileValue(),
      );
      const real = manifest.files;
      fc.assert(
        fc.property(fc.array(file, { maxLength: 4 }), fc.boolean(), (extra, keep) => {
          checkBundle(JSON.stringify({ ...manifest, files: keep ? [...real, ...extra] : extra }, (_k, v) => v, 2));
        }),
        fuzzParams(),
      );
    },
    fuzzTimeout(),
  );

  it(
    'mutated manifest bytes give a usable manifest or BAD_BUNDLE',
    () => {
      fc.assert(
        fc.property(byteOps(4), (ops) => checkBundle(applyByteOps(Buffer.from(manifestText), ops))),
        fuzzParams(),
      );
    },
    fuzzTimeout(),
  );

  it(
    'validateManifest: any JSON value gives a manifest or BAD_BUNDLE',
    () => {
      fc.assert(
        fc.property(
          fc.oneof(
            fc.jsonValue({ maxDepth: 4 }),
            hostileValue(),
            fc.record({ schemaVersion: fc.constant(1), files: fc.oneof(hostileValue(), fc.array(hostileValue(), { maxLength: 3 })), model: hostileValue() }),
          ),
          (json) => {
            const parsed = JSON.parse(stringifyJson(json) || 'null');
            const r = outcome(() => validateManifest(parsed, 'fuzz-bundle'), 'fuzz-bundle');
            if (!r.ok) expect(r.error.code).toBe('BAD_BUNDLE');
          },
        ),
        fuzzParams(),
      );
    },
    fuzzTimeout(),
  );

  // Manifests that crashed the bundle code before validateManifest checked every field.
  it('regressions: wrong types, deep nesting, folders and links in the file list, huge numbers', () => {
    const cases: [string, unknown][] = [
      ['files: [null] (TypeError reading f.bytes before)', { ...manifest, files: [null] }],
      ['model.eosTokenIds a string', { ...manifest, model: { ...manifest.model, eosTokenIds: 'x' } }],
      ['model.numLayers 1e300', { ...manifest, model: { ...manifest.model, numLayers: 1e300 } }],
      ['runtime.domains null (TypeError in the README)', { ...manifest, runtime: { ...manifest.runtime, domains: null } }],
      ['source.parameters a string (TypeError in toLocaleString)', { ...manifest, source: { ...manifest.source, parameters: {} } }],
      ['metrics missing (TypeError reading modelBytes)', { ...manifest, metrics: undefined }],
      ['a field nested 100 000 deep (RangeError in the self-hash)', JSON.parse(`{"deep":${'['.repeat(100_000)}${']'.repeat(100_000)}}`)],
      [
        'a folder listed as a file (EISDIR while hashing)',
        { ...manifest, files: [...manifest.files, { path: 'empty-folder', bytes: 0, sha256: '0'.repeat(64) }] },
      ],
      ['a link out of the bundle listed as a file', { ...manifest, files: [...manifest.files, { path: 'link.txt', bytes: 0, sha256: '0'.repeat(64) }] }],
    ];
    for (const [what, json] of cases) {
      const deep = (json as { deep?: unknown }).deep !== undefined;
      writeFileSync(manifestPath(), deep ? `{"schemaVersion":1,"deep":${'['.repeat(100_000)}${']'.repeat(100_000)}}` : JSON.stringify(json));
      const r = outcome(() => readBundle(out), out);
      const v = outcome(() => verifyBundle(out), out);
      if (what.includes('listed as a file')) {
        expect(r.ok, what).toBe(true);
        expect(v.ok && v.value.problems.some((p) => p.problem === 'missing' && /folder holds a (folder|symbolic link)/.test(p.detail)), what).toBe(true);
      } else {
        expect(r.ok, what).toBe(false);
        if (!r.ok) checkAlkiError(r.error, out);
        expect(v.ok && v.value.problems[0].problem === 'manifest', what).toBe(true);
      }
    }
    writeFileSync(manifestPath(), manifestText);
  });
});
