/**
 * Fuzz: readEvalText on files holding text, binary garbage, invalid UTF-8, NUL bytes; plus a
 * 100 MB one-line file. Every case returns text or throws an AlkiError, quickly; binary input is
 * refused as "not text".
 */
import { closeSync, ftruncateSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { readEvalText } from '../src/index.js';
import { tempDir } from '../../../tools/fixtures/index.js';
import { checkAlkiError, fuzzParams, fuzzTempDir, fuzzTimeout, makeFifo, outcome, textFileContents } from '../../../tools/fixtures/fuzz.js';

const t = fuzzTempDir('alki-fuzz-evaltext-');
// The 100 MB files go to the disk, not to memory.
const disk = tempDir('alki-fuzz-evaltext-big-');
afterAll(() => {
  t.cleanup();
  disk.cleanup();
});

describe('readEvalText fuzz', () => {
  it('reads text', () => {
    const path = join(t.dir, 'ok.txt');
    writeFileSync(path, 'Once upon a time.\n');
    expect(readEvalText(path)).toBe('Once upon a time.\n');
  });

  it(
    'any file contents give text or an AlkiError',
    () => {
      const path = join(t.dir, 'case.txt');
      fc.assert(
        fc.property(textFileContents(), (bytes) => {
          writeFileSync(path, bytes);
          const r = outcome(() => readEvalText(path), path);
          if (!r.ok) {
            expect(r.error.code).toBe('BAD_INPUT');
            return;
          }
          expect(r.value.trim().length).toBeGreaterThan(0);
          expect(Buffer.from(bytes).includes(0)).toBe(false);
          expect(r.value).toBe(Buffer.from(bytes).toString('utf8'));
        }),
        fuzzParams(),
      );
    },
    fuzzTimeout(),
  );

  it('a 100 MB one-line file does not hang', () => {
    const path = join(disk.dir, 'big.txt');
    writeFileSync(path, 'the little cat played in the sun. '.repeat(Math.ceil((100 * 1024 * 1024) / 34)).slice(0, 100 * 1024 * 1024));
    // It returns (the test's timeout is the hang detector; speed is not asserted).
    expect(readEvalText(path).length).toBe(100 * 1024 * 1024);
  }, 120_000);

  // Inputs that crashed or were accepted as text before the reader was hardened.
  it('regressions: binary, UTF-16, huge files, folders', () => {
    const sub = join(t.dir, 'folder.txt');
    mkdirSync(sub, { recursive: true });
    const huge = join(t.dir, 'huge.txt');
    const fd = openSync(huge, 'w');
    ftruncateSync(fd, 600 * 1024 * 1024); // sparse: no disk used; above what a string can hold
    closeSync(fd);
    const cases: [string, string, Uint8Array | null, RegExp][] = [
      ['a 600 MB file (ERR_STRING_TOO_LONG)', huge, null, /more than the 256 MiB/],
      ['NUL bytes', 'nul.txt', Buffer.from('abc\u0000def'), /is not text: it holds NUL bytes/],
      ['UTF-16 text', 'utf16.txt', Buffer.from('Once upon a time', 'utf16le'), /is not text/],
      ['random binary', 'bin.txt', Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24)), /is not text/],
      ['a folder', sub, null, /is not a regular file/],
      ['/dev/urandom (never ends)', '/dev/urandom', null, /not a regular file/],
    ];
    const fifo = join(t.dir, 'fifo.txt');
    if (makeFifo(fifo)) cases.push(['a FIFO (readFileSync blocked forever)', fifo, null, /not a regular file/]);
    for (const [what, name, bytes, message] of cases) {
      const path = name.startsWith('/') ? name : join(t.dir, name);
      if (bytes) writeFileSync(path, bytes);
      let err: unknown;
      try {
        readEvalText(path);
      } catch (e) {
        err = e;
      }
      expect(err, what).toBeDefined();
      checkAlkiError(err, path);
      expect((err as Error).message, what).toMatch(message);
    }
  });
});
