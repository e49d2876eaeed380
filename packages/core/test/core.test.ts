import { describe, expect, it } from 'vitest';
import { AlkiError, SeededRandom, fsError, isAlkiError, throwIfAborted } from '../src/index.js';

describe('AlkiError', () => {
  it('carries code, message and hint, and is recognised', () => {
    const e = new AlkiError('UNSUPPORTED_ARCH', 'model_type "mamba" is not supported', 'supported: llama');
    expect(isAlkiError(e)).toBe(true);
    expect(isAlkiError(new Error('x'))).toBe(false);
    expect([e.code, e.message, e.hint]).toEqual(['UNSUPPORTED_ARCH', 'model_type "mamba" is not supported', 'supported: llama']);
  });
  it('maps file-system errors to next steps', () => {
    const enospc = fsError(Object.assign(new Error('ENOSPC'), { code: 'ENOSPC' }), 'writing x');
    expect(enospc.code).toBe('NO_SPACE');
    expect(fsError(Object.assign(new Error('EACCES'), { code: 'EACCES' }), 'writing x').code).toBe('IO');
  });
  it('throws ABORTED once a signal fired', () => {
    const c = new AbortController();
    expect(() => throwIfAborted(c.signal)).not.toThrow();
    c.abort();
    expect(() => throwIfAborted(c.signal)).toThrow(/interrupted/);
  });
});

describe('SeededRandom', () => {
  it('is reproducible per seed and roughly uniform / normal', () => {
    const a = new SeededRandom(7);
    const b = new SeededRandom(7);
    const xs = Array.from({ length: 20000 }, () => a.next());
    expect(xs.slice(0, 5)).toEqual(Array.from({ length: 5 }, () => b.next()));
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.01);
    const n = new SeededRandom(1);
    const zs = Array.from({ length: 20000 }, () => n.normal());
    const v = zs.reduce((s, z) => s + z * z, 0) / zs.length;
    expect(Math.abs(v - 1)).toBeLessThan(0.05);
    expect(new SeededRandom(8).next()).not.toBe(new SeededRandom(7).next());
  });
});

describe('file helpers that cannot hang', () => {
  it('makeDirs creates nested folders, and fails fast (instead of looping) under /proc', async () => {
    const { makeDirs, readRegularFile } = await import('../src/node.js');
    const { mkdtempSync, existsSync, writeFileSync, rmSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const root = mkdtempSync(join(tmpdir(), 'alki-core-'));
    makeDirs(join(root, 'a', 'b', 'c'));
    expect(existsSync(join(root, 'a', 'b', 'c'))).toBe(true);
    makeDirs(join(root, 'a', 'b')); // existing: nothing to do
    writeFileSync(join(root, 'f'), 'x');
    expect(() => makeDirs(join(root, 'f', 'g'))).toThrow(/is a file, not a folder/);
    if (process.platform === 'linux') expect(() => makeDirs('/proc/alki-test/x')).toThrow(/creating \/proc\/alki-test/);
    expect(readRegularFile(join(root, 'f'), 10, 'f').toString()).toBe('x');
    expect(() => readRegularFile(join(root, 'f'), 0, 'the file f')).toThrow(/the file f .* is 1 bytes, more than the 0/);
    expect(() => readRegularFile(join(root, 'a'), 10, 'a')).toThrow(/is not a regular file/);
    if (process.platform === 'linux') expect(() => readRegularFile('/dev/zero', 10, 'zero')).toThrow(/is not a regular file/);
    rmSync(root, { recursive: true, force: true });
  });

  it('interrupt cleanups run newest first, once, even when one throws', async () => {
    const { onInterrupt, runInterruptCleanups } = await import('../src/index.js');
    const order: number[] = [];
    onInterrupt(() => order.push(1));
    onInterrupt(() => {
      throw new Error('x');
    });
    const off = onInterrupt(() => order.push(3));
    onInterrupt(() => order.push(4));
    off();
    runInterruptCleanups();
    runInterruptCleanups();
    expect(order).toEqual([4, 1]);
  });
});

describe('runWorker', () => {
  it('adds the given variables to the child environment, and only to that child', async () => {
    const { runWorker } = await import('../src/node.js');
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const root = mkdtempSync(join(tmpdir(), 'alki-core-'));
    const script = join(root, 'env.mjs');
    writeFileSync(script, "process.stdout.write(JSON.stringify({ ok: true, x: process.env.ALKI_TEST_X ?? null, path: !!process.env.PATH }) + '\\n');\n");
    try {
      expect(await runWorker(script, [], 'env test', undefined, undefined, { ALKI_TEST_X: 'set' })).toMatchObject({ x: 'set', path: true });
      expect(await runWorker(script, [], 'env test')).toMatchObject({ x: null, path: true });
      expect(process.env.ALKI_TEST_X).toBeUndefined();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
