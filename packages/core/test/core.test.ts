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
