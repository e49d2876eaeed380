/**
 * Fuzz: WeightStore.open on a sharded checkpoint whose model.safetensors.index.json is mutated
 * (hostile weight_map values, paths leaving the folder, missing shards, non-object JSON). Every
 * case opens a store whose files stay in the folder, or throws an AlkiError.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { WeightStore, writeSafetensors } from '../src/index.js';
import {
  applyByteOps,
  applyJsonOps,
  byteOps,
  checkAlkiError,
  fuzzParams,
  fuzzTempDir,
  fuzzTimeout,
  jsonOps,
  outcome,
  stringifyJson,
} from '../../../tools/fixtures/fuzz.js';

const t = fuzzTempDir('alki-fuzz-weights-');
afterAll(() => t.cleanup());

const dir = join(t.dir, 'model');
mkdirSync(join(dir, 'sub'), { recursive: true });
mkdirSync(join(dir, 'folder.safetensors'), { recursive: true });
const f32 = (n: number) => new Float32Array(n).map((_, i) => i * 0.5 - 1);
const SHARD1 = 'model-00001-of-00002.safetensors';
const SHARD2 = 'model-00002-of-00002.safetensors';
writeSafetensors(join(dir, SHARD1), {
  'model.a.weight': { dtype: 'F32', shape: [2, 3], data: f32(6) },
  'model.b.weight': { dtype: 'F32', shape: [4], data: f32(4) },
});
writeSafetensors(join(dir, SHARD2), { 'model.c.weight': { dtype: 'F32', shape: [3], data: f32(3) } });
// Valid files the index must never reach (outside the folder) or may reach (inside a subfolder).
writeSafetensors(join(t.dir, 'outside.safetensors'), { 'model.x.weight': { dtype: 'F32', shape: [1], data: f32(1) } });
writeSafetensors(join(dir, 'sub', 'inner.safetensors'), { 'model.y.weight': { dtype: 'F32', shape: [1], data: f32(1) } });
writeFileSync(join(dir, 'not-safetensors.json'), '{"a": 1}');

const index = {
  metadata: { total_size: 52 },
  weight_map: { 'model.a.weight': SHARD1, 'model.b.weight': SHARD1, 'model.c.weight': SHARD2 },
};
const indexPath = join(dir, 'model.safetensors.index.json');
const validIndexText = JSON.stringify(index, null, 2);

/** Shard names a hostile index might use. */
const shardNames = fc.constantFrom<unknown>(
  SHARD1,
  SHARD2,
  '../outside.safetensors',
  join(t.dir, 'outside.safetensors'),
  `./${SHARD1}`,
  `sub/../${SHARD1}`,
  'sub/inner.safetensors',
  'sub/../../outside.safetensors',
  'sub',
  'folder.safetensors',
  '.',
  './',
  '',
  'missing.safetensors',
  'not-safetensors.json',
  'model.safetensors.index.json',
  `${SHARD1}\u0000`,
  `sub\\..\\..\\outside.safetensors`,
  'a..b.safetensors',
  '/',
  '//etc/passwd',
  'x'.repeat(5000),
);

const insideDir = (p: string) => resolve(p).startsWith(`${resolve(dir)}/`);

/** The contract: a store whose shards are files in the folder and whose weights read, or an AlkiError. */
function checkIndex(text: Uint8Array | string): void {
  writeFileSync(indexPath, text);
  const r = outcome(() => WeightStore.open(dir), [dir, 'shard']);
  if (!r.ok) return;
  for (const f of r.value.files) expect(insideDir(f), f).toBe(true);
  for (const name of r.value.names()) {
    const w = outcome(() => r.value.get(name), dir);
    if (w.ok) expect(w.value.data.length).toBe(w.value.shape.reduce((a, d) => a * d, 1));
  }
}

describe('WeightStore.open fuzz', () => {
  it('opens the valid sharded checkpoint', () => {
    writeFileSync(indexPath, validIndexText);
    const store = WeightStore.open(dir);
    expect(store.names().sort()).toEqual(['model.a.weight', 'model.b.weight', 'model.c.weight']);
    expect(Array.from(store.get('model.c.weight').data)).toEqual([-1, -0.5, 0]);
  });

  it(
    'a mutated index gives a store inside the folder or an AlkiError',
    () => {
      fc.assert(
        fc.property(jsonOps(3, ['weight_map', 'model.a.weight'], shardNames), (ops) => checkIndex(stringifyJson(applyJsonOps(index, ops)))),
        fuzzParams(),
      );
    },
    fuzzTimeout(),
  );

  it(
    'hostile weight_map values give a store inside the folder or an AlkiError',
    () => {
      const map = fc.dictionary(
        fc.constantFrom('model.a.weight', 'model.b.weight', 'model.c.weight', 'model.x.weight', 'model.y.weight', '__proto__', ''),
        shardNames,
        { maxKeys: 4 },
      );
      fc.assert(
        fc.property(map, (m) => checkIndex(stringifyJson({ weight_map: m }))),
        fuzzParams(),
      );
    },
    fuzzTimeout(),
  );

  it(
    'mutated index bytes give a store inside the folder or an AlkiError',
    () => {
      fc.assert(
        fc.property(byteOps(4), (ops) => checkIndex(applyByteOps(Buffer.from(validIndexText), ops))),
        fuzzParams(),
      );
    },
    fuzzTimeout(),
  );

  // Inputs that crashed or escaped before the index reader was hardened.
  it('regressions: non-string shards, non-object JSON, folders named as shards, escapes', () => {
    const cases: [string, unknown][] = [
      ['a number as shard name (TypeError: s.includes is not a function)', { weight_map: { 'model.a.weight': 5 } }],
      ['null (TypeError reading weight_map, reported as invalid JSON)', null],
      ['a folder named as shard (EISDIR from readSync)', { weight_map: { 'model.a.weight': 'folder.safetensors' } }],
      ['the folder itself as shard', { weight_map: { 'model.a.weight': '.' } }],
      ['an absolute path', { weight_map: { 'model.x.weight': join(t.dir, 'outside.safetensors') } }],
      ['a path that leaves the folder', { weight_map: { 'model.x.weight': 'sub/../../outside.safetensors' } }],
      ['an array weight_map', { weight_map: [SHARD1] }],
    ];
    for (const [what, json] of cases) {
      writeFileSync(indexPath, stringifyJson(json));
      let err: unknown;
      try {
        WeightStore.open(dir);
      } catch (e) {
        err = e;
      }
      expect(err, what).toBeDefined();
      checkAlkiError(err, dir);
    }
    writeFileSync(indexPath, validIndexText);
    expect(readFileSync(indexPath, 'utf8')).toBe(validIndexText);
  });
});
