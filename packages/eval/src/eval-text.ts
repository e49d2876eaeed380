import { existsSync } from 'node:fs';
import { AlkiError } from '@alki/core';
import { readUtf8Text } from '@alki/core/node';

/**
 * Reads an evaluation text file with clear errors for missing, empty, huge and binary files
 * (NUL bytes, or a large share of invalid UTF-8 and control characters).
 */
export function readEvalText(path: string): string {
  if (!existsSync(path)) throw new AlkiError('NOT_FOUND', `evaluation text not found: ${path}`, 'pass --text with an existing UTF-8 text file');
  const hint = 'pass --text with a UTF-8 text file';
  const text = readUtf8Text(path, 'evaluation text', hint);
  if (text.trim().length === 0) throw new AlkiError('BAD_INPUT', `evaluation text ${path} is empty`, 'pass --text with a file that holds natural text');
  return text;
}
