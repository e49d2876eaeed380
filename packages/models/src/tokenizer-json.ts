/**
 * Writes a small Llama/SentencePiece-style BPE tokenizer (byte fallback, "▁"
 * for spaces) in HF tokenizer.json format, so that generated test models come
 * with a real tokenizer that any HF-compatible library loads.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AlkiError } from '@alki/core';
export interface TinyTokenizerFiles {
  tokenizerJson: object;
  tokenizerConfig: object;
  specialTokensMap: object;
  vocabSize: number;
}

const CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?\'"-:;()';
const WORDS = ['the', 'and', 'was', 'she', 'he', 'to', 'a', 'it', 'in', 'day', 'one', 'upon', 'time', 'once', 'there', 'little', 'big', 'cat', 'dog', 'play'];

export function tinyTokenizer(): TinyTokenizerFiles {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let i = 0; i < 256; i++) vocab[`<0x${i.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + i;
  let next = 259;
  const add = (piece: string) => {
    if (!(piece in vocab)) vocab[piece] = next++;
  };
  add('▁');
  for (const ch of CHARS) add(ch);
  // Each word becomes one piece through left-to-right merges: ▁ + t → ▁t, ▁t + h → ▁th, ...
  const merges: string[] = [];
  for (const w of WORDS) {
    let cur = '▁';
    for (const ch of w) {
      const merged = cur + ch;
      if (!(merged in vocab)) {
        merges.push(`${cur} ${ch}`);
        add(merged);
      }
      cur = merged;
    }
  }
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: '▁' },
        { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      vocab,
      merges,
    },
  };
  const tokenizerConfig = {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: '<s>',
    eos_token: '</s>',
    unk_token: '<unk>',
    pad_token: null,
    clean_up_tokenization_spaces: false,
    legacy: true,
    model_max_length: 2048,
    tokenizer_class: 'LlamaTokenizer',
  };
  const specialTokensMap = { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' };
  return { tokenizerJson, tokenizerConfig, specialTokensMap, vocabSize: next };
}

/** llama.cpp's token types (llama_token_type): what a GGUF vocabulary records per token. */
const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, unused: 5, byte: 6 } as const;

/**
 * A model's vocabulary as GGUF wants it: `vocabSize` token strings by id (from tokenizer.json's model vocab and
 * added tokens; ids without a token become unique `<unused_N>` entries) and their llama.cpp token types.
 */
export function loadTokenizerVocab(dir: string, vocabSize: number): { tokens: string[]; types: number[] } {
  let json: { model?: { vocab?: unknown }; added_tokens?: { id?: unknown; content?: unknown; special?: unknown }[] };
  try {
    json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
  } catch (e) {
    throw new AlkiError('TOKENIZER', `cannot read tokenizer.json in ${dir}: ${(e as Error).message}`, 'download the model again', { cause: e });
  }
  const tokens: (string | undefined)[] = new Array(vocabSize).fill(undefined);
  const types: number[] = new Array(vocabSize).fill(TOKEN_TYPE.unused);
  const vocab = json.model?.vocab;
  // BPE/WordPiece keep {token: id}; Unigram keeps [[token, score], …] in id order.
  const entries: [string, number][] = Array.isArray(vocab)
    ? vocab.map((e, i) => [String((e as unknown[])[0]), i])
    : Object.entries((vocab ?? {}) as Record<string, number>);
  for (const [token, id] of entries) {
    if (Number.isInteger(id) && id >= 0 && id < vocabSize) {
      tokens[id] = token;
      types[id] = /^<0x[0-9A-F]{2}>$/.test(token) ? TOKEN_TYPE.byte : TOKEN_TYPE.normal;
    }
  }
  for (const a of json.added_tokens ?? []) {
    if (typeof a.id === 'number' && Number.isInteger(a.id) && a.id >= 0 && a.id < vocabSize && typeof a.content === 'string') {
      tokens[a.id] = a.content;
      types[a.id] = a.content === '<unk>' ? TOKEN_TYPE.unknown : a.special ? TOKEN_TYPE.control : TOKEN_TYPE.normal;
    }
  }
  const seen = new Set<string>();
  const out = tokens.map((t, i) => {
    let s = t ?? `<unused_${i}>`;
    if (seen.has(s)) s = `<dup_${i}>`;
    seen.add(s);
    return s;
  });
  return { tokens: out, types };
}
