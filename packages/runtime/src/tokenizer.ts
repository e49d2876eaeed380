import { closeSync, existsSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AlkiError, fsError, showValue } from '@alki/core';
import { READ_NONBLOCK } from '@alki/core/node';
import { HINT_FILES, tokenizerFromJson, type TextTokenizer } from './tokenizer-core.js';

export type { TextTokenizer } from './tokenizer-core.js';

/** tokenizer.json files above this are refused (the largest real ones are tens of MB). */
const MAX_TOKENIZER_BYTES = 512 * 1024 * 1024;
/** The small JSON side files (tokenizer_config.json, generation_config.json, config.json). */
const MAX_CONFIG_BYTES = 64 * 1024 * 1024;

/** A JSON object file, undefined when absent; anything else (not JSON, not an object, a folder, huge) is a TOKENIZER error. */
function readJson(path: string, maxBytes = MAX_CONFIG_BYTES): Record<string, unknown> | undefined {
  if (!existsSync(path)) return undefined;
  let text: string;
  let fd: number | undefined;
  try {
    fd = openSync(path, READ_NONBLOCK);
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new AlkiError('TOKENIZER', `${path} is not a regular file (a folder, pipe or device)`, HINT_FILES);
    if (stat.size > maxBytes)
      throw new AlkiError('TOKENIZER', `${path} has ${stat.size} bytes, more than the ${maxBytes} a tokenizer file may have`, HINT_FILES);
    text = readFileSync(fd, 'utf8');
  } catch (e) {
    throw fsError(e, `reading ${path}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new AlkiError('TOKENIZER', `${path} is not valid JSON (${(e as Error).message.slice(0, 120)})`, HINT_FILES);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new AlkiError('TOKENIZER', `${path} is not a JSON object but ${showValue(json, 30)}`, HINT_FILES);
  return json as Record<string, unknown>;
}

/**
 * Loads the tokenizer of a model folder or bundle with `@huggingface/tokenizers`
 * (see docs/decisions.md for why not `@xenova/transformers`). EOS ids come from
 * generation_config.json, then config.json, then tokenizer_config.json.
 */
export function loadTokenizer(dir: string): TextTokenizer {
  const tokPath = join(dir, 'tokenizer.json');
  const tokJson = readJson(tokPath, MAX_TOKENIZER_BYTES);
  if (!tokJson) throw new AlkiError('TOKENIZER', `no tokenizer.json in ${dir}`, 'the folder must hold the fast tokenizer (tokenizer.json)');
  return tokenizerFromJson(
    {
      tokenizer: tokJson,
      tokenizerConfig: readJson(join(dir, 'tokenizer_config.json')),
      generationConfig: readJson(join(dir, 'generation_config.json')),
      config: readJson(join(dir, 'config.json')),
    },
    dir,
  );
}
