import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { AlkiError, fsError } from './errors.js';

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
  if (st.size > maxBytes) throw new AlkiError('BAD_INPUT', `${what} (${path}) is ${st.size.toLocaleString('en-US')} bytes, more than the ${maxBytes.toLocaleString('en-US')} Alki accepts for it`, 'check that it is the right file');
  try {
    return readFileSync(path);
  } catch (e) {
    throw fsError(e, `reading ${what}`);
  }
}
