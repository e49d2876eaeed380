/**
 * Fuzz: readCalibrationFile on .txt and .jsonl files holding text, JSONL with hostile lines,
 * binary garbage, invalid UTF-8, NUL bytes; plus a 100 MB one-line file. Every case returns text
 * or throws an AlkiError, quickly; binary input is refused as "not text".
 */
import { closeSync, ftruncateSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { readCalibrationFile } from '../src/index.js';
import { tempDir } from '../../../tools/fixtures/index.js';
import { checkAlkiError, fuzzParams, fuzzTempDir, fuzzTimeout, makeFifo, outcome, textFileContents } from '../../../tools/fixtures/fuzz.js';

const t = fuzzTempDir('alki-fuzz-calib-');
// The 100 MB files go to the disk, not to memory.
const disk = tempDir('alki-fuzz-calib-big-');
afterAll(() => {
  t.cleanup();
  disk.cleanup();
});

/** The contract: text (no NUL byte, not blank), or an AlkiError naming the file. */
function checkFile(ext: '.txt' | '.jsonl', bytes: Uint8Array): void {
  const path = join(t.dir, `case${ext}`);
  writeFileSync(path, bytes);
  const r = outcome(() => readCalibrationFile(path), path);
  if (!r.ok) {
    expect(r.error.code).toBe('BAD_INPUT');
    return;
  }
  expect(typeof r.value).toBe('string');
  expect(r.value.trim().length).toBeGreaterThan(0);
  expect(Buffer.from(bytes).includes(0)).toBe(false);
}

describe('readCalibrationFile fuzz', () => {
  it('reads text and JSONL', () => {
    const txt = join(t.dir, 'ok.txt');
    writeFileSync(txt, 'Once upon a time.\n');
    expect(readCalibrationFile(txt)).toBe('Once upon a time.\n');
    const jsonl = join(t.dir, 'ok.jsonl');
    writeFileSync(jsonl, '{"text": "a"}\r\n\n{"text": "b", "id": 2}\n');
    expect(readCalibrationFile(jsonl)).toBe('a\n\nb');
  });

  it(
    'any file contents give text or an AlkiError',
    () => {
      fc.assert(
        fc.property(fc.constantFrom('.txt' as const, '.jsonl' as const), textFileContents(), (ext, bytes) => checkFile(ext, bytes)),
        fuzzParams(),
      );
    },
    fuzzTimeout(),
  );

  it('a 100 MB one-line file does not hang', () => {
    const big = 'the little cat played in the sun. '.repeat(Math.ceil((100 * 1024 * 1024) / 34)).slice(0, 100 * 1024 * 1024);
    for (const [name, contents, ok] of [
      ['big.txt', big, true],
      ['big.jsonl', JSON.stringify({ text: big }), true],
      ['garbage.jsonl', `{"text": "${big}`, false],
    ] as const) {
      const path = join(disk.dir, name);
      writeFileSync(path, contents);
      // It returns (outcome's hang detector and the test's timeout; speed is not asserted).
      const r = outcome(() => readCalibrationFile(path), path);
      expect(r.ok, name).toBe(ok);
    }
  }, 120_000);

  // Inputs that crashed or were accepted as text before the reader was hardened.
  it('regressions: null lines, folders, binary, UTF-16, huge files', () => {
    const sub = join(t.dir, 'folder.txt');
    mkdirSync(sub, { recursive: true });
    const huge = join(t.dir, 'huge.txt');
    const fd = openSync(huge, 'w');
    ftruncateSync(fd, 600 * 1024 * 1024); // sparse: no disk used; above what a string can hold
    closeSync(fd);
    const cases: [string, string, Uint8Array | null, RegExp][] = [
      ['a JSONL line that is null (TypeError reading .text)', 'null.jsonl', Buffer.from('{"text": "a"}\nnull\n'), /:2 is not a JSON object/],
      ['a JSONL line that is a number', 'num.jsonl', Buffer.from('5\n'), /:1 is not a JSON object/],
      ['a folder (EISDIR)', sub, null, /is not a regular file/],
      ['a 600 MB file (ERR_STRING_TOO_LONG)', huge, null, /more than the 256 MiB/],
      ['NUL bytes', 'nul.txt', Buffer.from('abc\u0000def'), /is not text: it holds NUL bytes/],
      ['UTF-16 text', 'utf16.txt', Buffer.from('Once upon a time', 'utf16le'), /is not text/],
      ['random binary', 'bin.txt', Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24)), /is not text/],
      ['only blank lines', 'blank.jsonl', Buffer.from('\n\n  \n'), /holds no text/],
      ['/dev/urandom (never ends)', '/dev/urandom', null, /not a regular file/],
    ];
    const fifo = join(t.dir, 'fifo.txt');
    if (makeFifo(fifo)) cases.push(['a FIFO (readFileSync blocked forever)', fifo, null, /not a regular file/]);
    for (const [what, name, bytes, message] of cases) {
      const path = name.startsWith('/') ? name : join(t.dir, name);
      if (bytes) writeFileSync(path, bytes);
      let err: unknown;
      try {
        readCalibrationFile(path);
      } catch (e) {
        err = e;
      }
      expect(err, what).toBeDefined();
      checkAlkiError(err, path);
      expect((err as Error).message, what).toMatch(message);
    }
  });
});
