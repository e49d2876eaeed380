import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { AlkiError } from '@alki/core';

/**
 * A text tokenizer loaded from a model folder's tokenizer.json and
 * tokenizer_config.json, with the special ids generation needs.
 */
export interface TextTokenizer {
  /** Token ids of `text`; special tokens (BOS) are added as the tokenizer's config says unless disabled. */
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  decode(ids: number[], options?: { skipSpecialTokens?: boolean }): string;
  readonly bosTokenId?: number;
  readonly eosTokenIds: number[];
  readonly vocabSize: number;
}

function readJson(path: string): Record<string, unknown> | undefined {
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new AlkiError('TOKENIZER', `${path} is not valid JSON (${(e as Error).message})`, 'copy or download the tokenizer files again');
  }
}

/**
 * Loads the tokenizer of a model folder or bundle with `@huggingface/tokenizers`
 * (see docs/decisions.md for why not `@xenova/transformers`). EOS ids come from
 * generation_config.json, then config.json, then tokenizer_config.json.
 */
export function loadTokenizer(dir: string): TextTokenizer {
  const tokJson = readJson(join(dir, 'tokenizer.json'));
  if (!tokJson) throw new AlkiError('TOKENIZER', `no tokenizer.json in ${dir}`, 'the folder must hold the fast tokenizer (tokenizer.json)');
  const tokConfig = readJson(join(dir, 'tokenizer_config.json')) ?? {};
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(tokJson, tokConfig);
  } catch (e) {
    throw new AlkiError('TOKENIZER', `tokenizer.json in ${dir} could not be loaded: ${(e as Error).message}`, 'check that it is a HuggingFace tokenizers file', { cause: e });
  }
  const gen = readJson(join(dir, 'generation_config.json')) ?? {};
  const cfg = readJson(join(dir, 'config.json')) ?? {};
  const idOf = (v: unknown): number | undefined => {
    if (typeof v === 'number') return v;
    if (typeof v === 'string') return tok.token_to_id(v);
    if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return tok.token_to_id((v as { content: string }).content);
    return undefined;
  };
  const ids = (v: unknown): number[] => (Array.isArray(v) ? v.filter((x): x is number => typeof x === 'number') : idOf(v) !== undefined ? [idOf(v)!] : []);
  const eos = [...new Set([...ids(gen.eos_token_id), ...ids(cfg.eos_token_id), ...(gen.eos_token_id == null && cfg.eos_token_id == null ? ids(tokConfig.eos_token) : [])])];
  const bos = idOf(gen.bos_token_id) ?? idOf(cfg.bos_token_id) ?? idOf(tokConfig.bos_token);
  const vocabSize = tok.get_vocab(true).size;
  return {
    encode: (text, options) => tok.encode(text, { add_special_tokens: options?.addSpecialTokens ?? true }).ids,
    decode: (idsIn, options) => tok.decode(idsIn, { skip_special_tokens: options?.skipSpecialTokens ?? true }),
    bosTokenId: bos,
    eosTokenIds: eos,
    vocabSize,
  };
}
