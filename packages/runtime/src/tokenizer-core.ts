import { Tokenizer } from '@huggingface/tokenizers';
import { AlkiError, isAlkiError, showValue } from '@alki/core';
import { ChatTemplate } from './chat-template.js';

/**
 * A text tokenizer made from a model's tokenizer.json and
 * tokenizer_config.json, with the special ids generation needs.
 */
export interface TextTokenizer {
  /** Token ids of `text`; special tokens (BOS) are added as the tokenizer's config says unless disabled. */
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  decode(ids: number[], options?: { skipSpecialTokens?: boolean }): string;
  readonly bosTokenId?: number;
  readonly eosTokenIds: number[];
  readonly vocabSize: number;
  /** tokenizer_config.json's chat template, when the model has one (instruction-tuned models do). */
  readonly chatTemplate?: ChatTemplate;
}

/**
 * Token ids may exceed the number of tokens by at most this much: the tokenizers library keeps
 * its vocabulary in an array indexed by id and walks it to its length, so one id of 2^32 would
 * make loading take minutes.
 */
const ID_SLACK = 65536;

export const HINT_FILES = 'copy or download the tokenizer files again';

/** tokenizer.json nests about 8 levels; far deeper is damage (and slows or overflows the library's recursion). */
const MAX_DEPTH = 64;
/** Fields of normalizers, pre-tokenizers, decoders and post-processors that the library uses as strings. */
const STRING_FIELDS = new Set([
  'type',
  'content',
  'prepend',
  'replacement',
  'String',
  'Regex',
  'behavior',
  'delimiter',
  'prefix',
  'suffix',
  'prepend_scheme',
  'pad_token',
  'word_delimiter_token',
]);
/**
 * Strings the pipeline inserts into the text (real ones are "▁", " ", "##", "</w>"). A long one
 * multiplies every text's length: 100 000 characters inserted by an empty pattern turned a
 * 300-character text into 30 million tokens.
 */
const INSERTED_FIELDS = new Set(['content', 'prepend', 'replacement', 'delimiter', 'prefix', 'suffix', 'pad_token', 'word_delimiter_token']);
const MAX_INSERTED = 256;

/**
 * Checks what the tokenizers library trusts without checking: a bounded nesting depth, strings
 * where the pipeline expects strings (an array used as a replacement is re-stringified for every
 * token), token ids that are whole numbers close to the number of tokens, and added tokens that
 * are objects with a string content.
 */
export function checkTokenizerJson(json: Record<string, unknown>, path: string): void {
  const bad = (what: string) => new AlkiError('TOKENIZER', `${path} is not a valid tokenizer: ${what}`, HINT_FILES);
  // One iterative walk: depth everywhere, string fields in the pipeline sections.
  const stack: [unknown, number, boolean][] = [[json, 1, false]];
  while (stack.length) {
    const [v, depth, pipeline] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth > MAX_DEPTH) throw bad(`it nests deeper than ${MAX_DEPTH} levels`);
    if (Array.isArray(v)) {
      for (const x of v) if (x !== null && typeof x === 'object') stack.push([x, depth + 1, pipeline]);
      continue;
    }
    for (const [key, x] of Object.entries(v)) {
      // special_tokens is keyed by the tokens themselves, which may be any string (even "content").
      const inPipeline = key !== 'special_tokens' && (pipeline || (depth === 1 && ['normalizer', 'pre_tokenizer', 'decoder', 'post_processor'].includes(key)));
      if (inPipeline && STRING_FIELDS.has(key) && x !== null && typeof x !== 'string') throw bad(`the field "${key}" holds ${showValue(x, 30)}, not a string`);
      if (inPipeline && INSERTED_FIELDS.has(key) && typeof x === 'string' && x.length > MAX_INSERTED)
        throw bad(`the field "${key}" holds ${x.length} characters, more than the ${MAX_INSERTED} a tokenizer inserts`);
      // FixedLength steps through the text by `length`: 0 or less never ends.
      if (inPipeline && key === 'length' && !(Number.isInteger(x) && (x as number) >= 1))
        throw bad(`a pre-tokenizer length ${showValue(x, 30)} is not a whole number ≥ 1`);
      // An empty pattern matches between every two characters.
      if (inPipeline && (key === 'String' || key === 'Regex') && x === '') throw bad(`a ${key} pattern is empty`);
      if (x !== null && typeof x === 'object') stack.push([x, depth + 1, inPipeline]);
    }
  }
  const model = json.model;
  if (typeof model !== 'object' || model === null || Array.isArray(model)) throw bad('"model" is not an object');
  for (const key of ['type', 'unk_token', 'continuing_subword_prefix', 'end_of_word_suffix']) {
    const x = (model as Record<string, unknown>)[key];
    if (x !== undefined && x !== null && typeof x !== 'string') throw bad(`model.${key} holds ${showValue(x, 30)}, not a string`);
  }
  const vocab = (model as { vocab?: unknown }).vocab;
  const type = (model as { type?: unknown }).type;
  if (Array.isArray(vocab)) {
    // Unigram's [piece, score] list; other models would index their id array by the list's values.
    if (type !== undefined && type !== 'Unigram') throw bad(`model.vocab of a ${showValue(type)} model is a list, not an object of token → id`);
    if (!vocab.every((e) => Array.isArray(e) && typeof e[0] === 'string' && typeof e[1] === 'number'))
      throw bad('model.vocab is a list but not of [piece, score] pairs');
  } else if (vocab !== undefined && (typeof vocab !== 'object' || vocab === null)) {
    throw bad(`model.vocab holds ${showValue(vocab, 30)}, not an object of token → id`);
  }
  const added = json.added_tokens ?? [];
  if (!Array.isArray(added)) throw bad('"added_tokens" is not a list');
  let count = added.length;
  if (vocab && typeof vocab === 'object' && !Array.isArray(vocab)) count += Object.keys(vocab).length;
  else if (Array.isArray(vocab)) count += vocab.length;
  const limit = count + ID_SLACK;
  const checkId = (id: unknown, what: string) => {
    if (!Number.isInteger(id) || (id as number) < 0 || (id as number) >= limit)
      throw bad(`${what} has id ${showValue(id)}, not a whole number from 0 to ${limit - 1}`);
  };
  if (vocab && typeof vocab === 'object' && !Array.isArray(vocab)) {
    for (const [token, id] of Object.entries(vocab)) checkId(id, `token ${showValue(token)}`);
  }
  for (const t of added) {
    if (typeof t !== 'object' || t === null || typeof (t as { content?: unknown }).content !== 'string')
      throw bad(`added token ${showValue(t)} has no string "content"`);
    checkId((t as { id?: unknown }).id, `added token ${showValue((t as { content: string }).content)}`);
  }
}

/** Runs a call of the tokenizers library; its raw errors become TOKENIZER errors naming `dir`. */
function guard<T>(dir: string, what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (isAlkiError(e)) throw e;
    throw new AlkiError(
      'TOKENIZER',
      `the tokenizer in ${dir} failed to ${what}: ${String((e as Error)?.message ?? e).slice(0, 200)}`,
      'check that tokenizer.json is a HuggingFace tokenizers file; copy or download it again',
      { cause: e },
    );
  }
}

/** Text every tokenizer must encode and decode back, tried once when loading. */
const PROBE = 'Hello, world! Once upon a time 123 héllo\n\tend.';

/** The JSON files a tokenizer is made of: tokenizer.json, and the configs that name special ids. */
export interface TokenizerFiles {
  tokenizer: Record<string, unknown>;
  tokenizerConfig?: Record<string, unknown>;
  generationConfig?: Record<string, unknown>;
  config?: Record<string, unknown>;
}

/**
 * A tokenizer from its JSON files (browser-safe: `@alki/runtime/web` fetches them). `dir` names them in errors.
 * EOS ids come from generation_config.json, then config.json, then tokenizer_config.json.
 */
export function tokenizerFromJson(files: TokenizerFiles, dir: string): TextTokenizer {
  const tokJson = files.tokenizer;
  checkTokenizerJson(tokJson, `${dir}/tokenizer.json`);
  const tokConfig = files.tokenizerConfig ?? {};
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(tokJson, tokConfig);
  } catch (e) {
    throw new AlkiError(
      'TOKENIZER',
      `tokenizer.json in ${dir} could not be loaded: ${String((e as Error)?.message ?? e).slice(0, 200)}`,
      'check that it is a HuggingFace tokenizers file',
      { cause: e },
    );
  }
  const gen = files.generationConfig ?? {};
  const cfg = files.config ?? {};
  const isId = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;
  const idOf = (v: unknown): number | undefined => {
    if (typeof v === 'number') return isId(v) ? v : undefined;
    if (typeof v === 'string') return tok.token_to_id(v);
    if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return tok.token_to_id((v as { content: string }).content);
    return undefined;
  };
  const ids = (v: unknown): number[] => (Array.isArray(v) ? v.filter(isId) : idOf(v) !== undefined ? [idOf(v)!] : []);
  const { eos, bos, vocabSize } = guard(dir, 'load', () => {
    const eosIds = [
      ...new Set([
        ...ids(gen.eos_token_id),
        ...ids(cfg.eos_token_id),
        ...(gen.eos_token_id == null && cfg.eos_token_id == null ? ids(tokConfig.eos_token) : []),
      ]),
    ];
    const bosId = idOf(gen.bos_token_id) ?? idOf(cfg.bos_token_id) ?? idOf(tokConfig.bos_token);
    return { eos: eosIds, bos: bosId, vocabSize: tok.get_vocab(true).size };
  });
  // Some damage only shows when text goes through the pipeline (normalizer, pre-tokenizer, model, decoder).
  guard(dir, 'encode and decode a test sentence', () => {
    const probe = tok.encode(PROBE, { add_special_tokens: true }).ids.filter(isId);
    if (probe.length) tok.decode(probe, { skip_special_tokens: true });
  });
  return {
    encode: (text, options) => {
      const out = guard(dir, 'encode text', () => tok.encode(text, { add_special_tokens: options?.addSpecialTokens ?? true }).ids);
      if (!out.every(isId)) {
        throw new AlkiError(
          'TOKENIZER',
          `the tokenizer in ${dir} has no id for some of the text (it has no unk_token for unknown pieces)`,
          'remove the characters it cannot encode, or use a tokenizer with an unk_token or byte fallback',
        );
      }
      return out;
    },
    decode: (idsIn, options) =>
      idsIn.length === 0 ? '' : guard(dir, 'decode ids', () => tok.decode(idsIn, { skip_special_tokens: options?.skipSpecialTokens ?? true })),
    bosTokenId: bos,
    eosTokenIds: eos,
    vocabSize,
    chatTemplate: ChatTemplate.fromTokenizerConfig(tokConfig, dir),
  };
}
