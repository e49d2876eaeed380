/**
 * Fuzz: loadTokenizer on a folder whose tokenizer.json (and side files) are mutated: bytes,
 * JSON structure, hostile ids. Every case loads a tokenizer that encodes and decodes, or throws
 * an AlkiError; none hangs.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { tinyTokenizer } from '@alki/models';
import { loadTokenizer, type TextTokenizer } from '../src/index.js';
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
  RawJson,
  stringifyJson,
} from '../../../tools/fixtures/fuzz.js';

const t = fuzzTempDir('alki-fuzz-tok-');
afterAll(() => t.cleanup());

const tok = tinyTokenizer();
const dir = join(t.dir, 'model');
mkdirSync(dir, { recursive: true });
const files = {
  'tokenizer.json': tok.tokenizerJson,
  'tokenizer_config.json': tok.tokenizerConfig,
  'generation_config.json': { bos_token_id: 1, eos_token_id: 2 },
  'config.json': { model_type: 'llama', bos_token_id: 1, eos_token_id: 2, vocab_size: tok.vocabSize },
} as Record<string, unknown>;
const validText = Object.fromEntries(Object.entries(files).map(([name, json]) => [name, JSON.stringify(json, null, 2)]));
const writeAll = (overrides: Record<string, string | Uint8Array> = {}) => {
  for (const name of Object.keys(files)) writeFileSync(join(dir, name), overrides[name] ?? validText[name]);
};

const TEXTS = ['Once upon a time, the little cat played.', '', ' ', 'héllo wörld ✓ 🐱', '\u0000\ud800<s></s><unk>', 'a'.repeat(300)];

/** The contract: a tokenizer whose encode/decode work or throw AlkiErrors, or an AlkiError naming the folder. */
function checkLoad(): void {
  const r = outcome<TextTokenizer>(() => loadTokenizer(dir), dir);
  if (!r.ok) {
    expect(r.error.code === 'TOKENIZER' || r.error.code === 'IO', r.error.message).toBe(true);
    return;
  }
  const tk = r.value;
  expect(Number.isInteger(tk.vocabSize) && tk.vocabSize >= 0).toBe(true);
  expect(tk.eosTokenIds.every((id) => Number.isInteger(id) && id >= 0)).toBe(true);
  if (tk.bosTokenId !== undefined) expect(Number.isInteger(tk.bosTokenId) && tk.bosTokenId >= 0).toBe(true);
  for (const text of TEXTS) {
    const e = outcome(() => tk.encode(text), dir);
    if (!e.ok) continue;
    expect(e.value.every((id) => Number.isInteger(id) && id >= 0)).toBe(true);
    const d = outcome(() => tk.decode(e.value), dir);
    if (d.ok) expect(typeof d.value).toBe('string');
  }
  const d = outcome(() => tk.decode([0, 1, 2, 5, 300, tk.vocabSize + 5]), dir);
  if (d.ok) expect(typeof d.value).toBe('string');
}

/** Paths outside the long vocab and merges lists, so that mutations reach the pipeline's settings too. */
const notVocab = (p: (string | number)[]) => !(p[0] === 'model' && (p[1] === 'vocab' || p[1] === 'merges') && p.length > 2);

describe('loadTokenizer fuzz', () => {
  it('loads the valid tokenizer', () => {
    writeAll();
    const tk = loadTokenizer(dir);
    expect(tk.decode(tk.encode('the cat'))).toBe('the cat');
    expect(tk.bosTokenId).toBe(1);
    expect(tk.eosTokenIds).toEqual([2]);
  });

  it(
    'mutated tokenizer.json bytes give a working tokenizer or an AlkiError',
    () => {
      fc.assert(
        fc.property(byteOps(4), (ops) => {
          writeAll({ 'tokenizer.json': applyByteOps(Buffer.from(validText['tokenizer.json']), ops) });
          checkLoad();
        }),
        fuzzParams(300),
      );
    },
    fuzzTimeout(),
  );

  it(
    'hostile tokenizer.json structure gives a working tokenizer or an AlkiError',
    () => {
      const values = fc.constantFrom<unknown>(
        'BPE',
        'WordPiece',
        'Unigram',
        'FixedLength',
        'Sequence',
        'Replace',
        'Split',
        'ByteLevel',
        'Metaspace',
        'TemplateProcessing',
        'ByteFallback',
        'Fuse',
        'Strip',
        'NFKC',
        '<unk>',
        '<s>',
        { type: 'Split', pattern: { Regex: '(' }, behavior: 'Isolated' },
        { type: 'Split', pattern: { Regex: '\\s+' }, behavior: 'Removed' },
        { type: 'Sequence', normalizers: null },
        { type: 'Sequence', pretokenizers: [null] },
        { String: 5 },
        { Regex: '[' },
        4294967294,
        1e9,
        new RawJson('{"type":"Sequence","normalizers":' + '[{"type":"Sequence","normalizers":'.repeat(3000) + '[]' + '}]'.repeat(3000) + '}'),
      );
      fc.assert(
        fc.property(
          jsonOps(
            3,
            [
              'type',
              'model',
              'vocab',
              'merges',
              'added_tokens',
              'normalizer',
              'pre_tokenizer',
              'post_processor',
              'decoder',
              'id',
              'content',
              'unk_token',
              'byte_fallback',
              'pattern',
            ],
            values,
          ),
          fc.boolean(),
          (ops, anywhere) => {
            writeAll({ 'tokenizer.json': stringifyJson(applyJsonOps(files['tokenizer.json'], ops, anywhere ? undefined : notVocab)) });
            checkLoad();
          },
        ),
        fuzzParams(300),
      );
    },
    fuzzTimeout(),
  );

  it(
    'hostile side files (tokenizer_config, generation_config, config) give a working tokenizer or an AlkiError',
    () => {
      const side = fc.constantFrom('tokenizer_config.json', 'generation_config.json', 'config.json');
      fc.assert(
        fc.property(
          side,
          jsonOps(3, ['bos_token', 'eos_token', 'bos_token_id', 'eos_token_id', 'additional_special_tokens', 'remove_space', 'unk_token']),
          byteOps(2),
          fc.boolean(),
          (name, ops, bops, bytes) => {
            const text = bytes ? applyByteOps(Buffer.from(validText[name]), bops) : stringifyJson(applyJsonOps(files[name], ops));
            writeAll({ [name]: text });
            checkLoad();
          },
        ),
        fuzzParams(300),
      );
    },
    fuzzTimeout(),
  );

  // Inputs that crashed or hung loadTokenizer before it was hardened.
  it('regressions: huge ids, null and non-object JSON, folders, broken pipelines', () => {
    const tj = tok.tokenizerJson as { model: { vocab: Record<string, number> }; added_tokens: object[] };
    const cases: [string, Record<string, string>][] = [
      [
        'an added token id of 2^32-2 (get_vocab walks a 4-billion-slot array)',
        { 'tokenizer.json': JSON.stringify({ ...tj, added_tokens: [...tj.added_tokens, { id: 2 ** 32 - 2, content: '<big>', special: true }] }) },
      ],
      ['a vocab id of 1e9', { 'tokenizer.json': JSON.stringify({ ...tj, model: { ...tj.model, vocab: { ...tj.model.vocab, big: 1e9 } } }) }],
      [
        'a BPE vocab that is the list [1e9] (its ids array grew to 1e9 slots: 34 s to load)',
        { 'tokenizer.json': JSON.stringify({ ...tj, model: { ...tj.model, vocab: [1e9] } }) },
      ],
      ['a fractional vocab id', { 'tokenizer.json': JSON.stringify({ ...tj, model: { ...tj.model, vocab: { ...tj.model.vocab, half: 1.5 } } }) }],
      ['tokenizer.json that is null (reported as missing)', { 'tokenizer.json': 'null' }],
      ['tokenizer.json that is an array', { 'tokenizer.json': '[1, 2]' }],
      ['an empty tokenizer.json', { 'tokenizer.json': '' }],
      ['tokenizer_config.json that is a string', { 'tokenizer_config.json': '"x"' }],
      [
        'a decoder whose replacement is a 3000-deep array (re-stringified for every token: over 1 s per decode)',
        {
          'tokenizer.json': stringifyJson({
            ...tj,
            decoder: { type: 'Replace', pattern: { String: '▁' }, content: new RawJson('['.repeat(3000) + ']'.repeat(3000)) },
          }),
        },
      ],
      [
        'a decoder whose replacement is a 20000-element array',
        {
          'tokenizer.json': JSON.stringify({
            ...tj,
            decoder: { type: 'Replace', pattern: { String: '▁' }, content: Array.from({ length: 20_000 }, (_, i) => i) },
          }),
        },
      ],
      [
        'an empty Replace pattern inserting 100 000 characters (a 300-character text became 30 million tokens: 21 s)',
        { 'tokenizer.json': JSON.stringify({ ...tj, normalizer: { type: 'Replace', pattern: { String: '' }, content: 'x'.repeat(100_000) } }) },
      ],
      ['an empty Replace pattern', { 'tokenizer.json': JSON.stringify({ ...tj, normalizer: { type: 'Replace', pattern: { Regex: '' }, content: 'x' } }) }],
      [
        'a FixedLength pre-tokenizer of length 0 (encode looped forever, growing memory)',
        { 'tokenizer.json': JSON.stringify({ ...tj, pre_tokenizer: { type: 'FixedLength', length: 0 } }) },
      ],
      [
        'a regex pre-tokenizer that does not compile',
        { 'tokenizer.json': JSON.stringify({ ...tj, pre_tokenizer: { type: 'Split', pattern: { Regex: '(' }, behavior: 'Isolated' } }) },
      ],
    ];
    for (const [what, overrides] of cases) {
      writeAll(overrides);
      let err: unknown;
      try {
        loadTokenizer(dir);
      } catch (e) {
        err = e;
      }
      expect(err, what).toBeDefined();
      checkAlkiError(err, dir);
      expect((err as { code: string }).code, what).toBe('TOKENIZER');
    }
    writeAll();
    mkdirSync(join(t.dir, 'folder', 'tokenizer.json'), { recursive: true });
    expect(() => loadTokenizer(join(t.dir, 'folder'))).toThrow(expect.objectContaining({ code: 'TOKENIZER' }));
    mkdirSync(join(t.dir, 'fifo'), { recursive: true });
    if (makeFifo(join(t.dir, 'fifo', 'tokenizer.json'))) expect(() => loadTokenizer(join(t.dir, 'fifo'))).toThrow(/not a regular file/);
  });
});
