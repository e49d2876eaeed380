import { closeSync, constants, existsSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { AlkiError, fsError } from '@alki/core';

/** Opening a FIFO for reading blocks until a writer comes; non-blocking, it opens and fstat refuses it. */
const READ_NONBLOCK = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

/** Evaluation text above this is refused: it would not fit in one JavaScript string with room to tokenize it. */
const MAX_TEXT_BYTES = 256 * 1024 * 1024;
/** More replacement and control characters than this share of the text means the file is not text. */
const MAX_BINARY_SHARE = 0.1;

/**
 * Reads an evaluation text file with clear errors for missing, empty, huge and binary files
 * (NUL bytes, or a large share of invalid UTF-8 and control characters).
 */
export function readEvalText(path: string): string {
  if (!existsSync(path)) throw new AlkiError('NOT_FOUND', `evaluation text not found: ${path}`, 'pass --text with an existing UTF-8 text file');
  const hint = 'pass --text with a UTF-8 text file';
  let buf: Buffer;
  let fd: number | undefined;
  try {
    fd = openSync(path, READ_NONBLOCK);
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new AlkiError('BAD_INPUT', `evaluation text ${path} is not a regular file (a folder, pipe or device)`, hint);
    if (stat.size > MAX_TEXT_BYTES) throw new AlkiError('BAD_INPUT', `evaluation text ${path} has ${stat.size} bytes, more than the ${MAX_TEXT_BYTES / 1024 / 1024} MiB Alki reads`, `use a smaller sample of the text; ${hint}`);
    buf = readFileSync(fd);
  } catch (e) {
    throw fsError(e, `reading ${path}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  if (buf.indexOf(0) !== -1) {
    throw new AlkiError('BAD_INPUT', `evaluation text ${path} is not text: it holds NUL bytes (a binary file, or text saved as UTF-16)`, `save it as UTF-8 text; ${hint}`);
  }
  const text = buf.toString('utf8');
  let odd = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // U+FFFD (invalid UTF-8) and C0 controls other than tab, newline, vertical tab, form feed, carriage return.
    if (c === 0xfffd || (c < 0x20 && (c < 0x09 || c > 0x0d))) odd++;
  }
  if (odd > MAX_BINARY_SHARE * text.length) {
    throw new AlkiError('BAD_INPUT', `evaluation text ${path} is not text: ${odd} of its ${text.length} characters are invalid UTF-8 or control characters`, `save it as UTF-8 text; ${hint}`);
  }
  if (text.trim().length === 0) throw new AlkiError('BAD_INPUT', `evaluation text ${path} is empty`, 'pass --text with a file that holds natural text');
  return text;
}
