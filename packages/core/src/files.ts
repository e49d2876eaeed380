import { closeSync, constants, fstatSync, mkdirSync, openSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { AlkiError, fsError } from './errors.js';

/** Opening a FIFO for reading blocks until a writer comes; non-blocking, it opens and fstat refuses it. */
export const READ_NONBLOCK = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

/** Text above this is refused: it would not fit in one JavaScript string with room to tokenize it. */
const MAX_TEXT_BYTES = 256 * 1024 * 1024;
/** More replacement and control characters than this share of the text means the file is not text. */
const MAX_BINARY_SHARE = 0.1;

/**
 * `mkdir -p` that cannot hang: Node's `mkdirSync(p, { recursive: true })`
 * loops forever where the kernel answers ENOENT for a child of an existing
 * folder (/proc, /sys). Walks up to the nearest existing ancestor, which must
 * be a folder, then creates each missing level once.
 */
export function makeDirs(path: string): void {
  const missing: string[] = [];
  let p = resolve(path);
  for (;;) {
    let st;
    try {
      st = statSync(p);
    } catch {
      missing.push(p);
      const up = dirname(p);
      if (up === p) break;
      p = up;
      continue;
    }
    if (!st.isDirectory()) throw new AlkiError('IO', `cannot create ${path}: ${p} is a file, not a folder`, 'choose another location');
    break;
  }
  for (const dir of missing.reverse()) {
    try {
      mkdirSync(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && statSync(dir).isDirectory()) continue;
      throw fsError(e, `creating ${dir}`);
    }
  }
}

/**
 * Reads a whole file that must be a regular file of at most `maxBytes`: a FIFO
 * would block forever, /dev/urandom would never end, and a huge file would
 * exhaust memory. `what` names it in errors ("config.json").
 */
export function readRegularFile(path: string, maxBytes: number, what: string): Buffer {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw fsError(e, `reading ${what}`);
  }
  if (!st.isFile()) throw new AlkiError('BAD_INPUT', `${what} (${path}) is not a regular file`, 'give a regular file (not a folder, a pipe or a device)');
  if (st.size > maxBytes)
    throw new AlkiError(
      'BAD_INPUT',
      `${what} (${path}) is ${st.size.toLocaleString('en-US')} bytes, more than the ${maxBytes.toLocaleString('en-US')} Alki accepts for it`,
      'check that it is the right file',
    );
  try {
    return readFileSync(path);
  } catch (e) {
    throw fsError(e, `reading ${what}`);
  }
}

/**
 * Reads a UTF-8 text file (evaluation and calibration text), refusing folders, pipes and devices, files too large
 * to hold as a string, and binary content (NUL bytes, or a large share of invalid UTF-8 and control characters).
 * `what` names the file in messages ("evaluation text"), `hint` says what to pass instead.
 */
export function readUtf8Text(path: string, what: string, hint: string): string {
  let buf: Buffer;
  let fd: number | undefined;
  try {
    fd = openSync(path, READ_NONBLOCK);
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new AlkiError('BAD_INPUT', `${what} ${path} is not a regular file (a folder, pipe or device)`, hint);
    if (stat.size > MAX_TEXT_BYTES)
      throw new AlkiError(
        'BAD_INPUT',
        `${what} ${path} has ${stat.size} bytes, more than the ${MAX_TEXT_BYTES / 1024 / 1024} MiB Alki reads`,
        `use a smaller sample of the text; ${hint}`,
      );
    buf = readFileSync(fd);
  } catch (e) {
    throw fsError(e, `reading ${path}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  if (buf.indexOf(0) !== -1) {
    throw new AlkiError(
      'BAD_INPUT',
      `${what} ${path} is not text: it holds NUL bytes (a binary file, or text saved as UTF-16)`,
      `save it as UTF-8 text; ${hint}`,
    );
  }
  const text = buf.toString('utf8');
  let odd = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // U+FFFD (invalid UTF-8) and C0 controls other than tab, newline, vertical tab, form feed, carriage return.
    if (c === 0xfffd || (c < 0x20 && (c < 0x09 || c > 0x0d))) odd++;
  }
  if (odd > MAX_BINARY_SHARE * text.length) {
    throw new AlkiError(
      'BAD_INPUT',
      `${what} ${path} is not text: ${odd} of its ${text.length} characters are invalid UTF-8 or control characters`,
      `save it as UTF-8 text; ${hint}`,
    );
  }
  return text;
}
