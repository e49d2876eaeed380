import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '@alki/core';
import { Scratch } from '../src/scratch.js';
import { KERNELS_WASM } from '../src/simd/kernels.js';
import { blockParams } from '../src/blockwise.js';

describe('SIMD kernels (WebAssembly)', () => {
  it('are the assembly of kernels.wat', async () => {
    const wabt = await (await import('wabt')).default();
    const wat = readFileSync(join(__dirname, '..', 'src', 'simd', 'kernels.wat'), 'utf8');
    const bytes = wabt.parseWat('kernels.wat', wat, { simd: true }).toBinary({}).buffer;
    expect(Buffer.from(bytes).toString('base64')).toBe(KERNELS_WASM);
  });

  it('subScaled: dst −= src·u, the remainder of 4 included', () => {
    const s = new Scratch();
    s.reserve(64);
    const dst = s.take(23);
    const src = s.take(23);
    const rng = new SeededRandom(1);
    for (let i = 0; i < 23; i++) [dst[i], src[i]] = [rng.normal(), rng.normal()];
    const before = Float32Array.from(dst);
    const want = dst.map((v, i) => Math.fround(v - Math.fround(src[i] * 0.37)));
    const k = s.simd(dst, src)!;
    // Elements 2 … 20 only (four SIMD steps and a remainder of 3): nothing outside may change.
    k.subScaled(dst.byteOffset + 8, src.byteOffset + 8, 19, Math.fround(0.37));
    for (let i = 0; i < 23; i++) expect(dst[i]).toBe(i >= 2 && i < 21 ? want[i] : before[i]);
    expect(want[0]).not.toBe(before[0]);
  });

  it('clipErrors: the float32 form of the JS clipping error, block by block', () => {
    const b = 32;
    const count = 50;
    const s = new Scratch();
    s.reserve(2 * b * count + 5 * count);
    const w = s.take(b * count);
    const d = s.take(b * count);
    const p = s.take(5 * count);
    const rng = new SeededRandom(2);
    for (let i = 0; i < w.length; i++) w[i] = rng.normal();
    const want = new Float32Array(b * count);
    for (let j = 0; j < count; j++) {
      let lo = Infinity;
      let hi = -Infinity;
      for (let k = 0; k < b; k++) [lo, hi] = [Math.min(lo, w[j * b + k]), Math.max(hi, w[j * b + k])];
      const f = 1 - (j % 8) / 20;
      const [clo, chi] = [Math.fround(lo * f), Math.fround(hi * f)];
      const { scale, zero } = blockParams(clo, chi, 4, j % 2 === 1);
      p.set([clo, chi, 1 / scale, scale, zero], 5 * j);
      for (let k = j * b; k < (j + 1) * b; k++) {
        const v = Math.min(chi, Math.max(clo, w[k]));
        const q = Math.min(15, Math.max(0, Math.floor(v / scale + 0.5) + zero));
        want[k] = (q - zero) * scale - w[k];
      }
    }
    s.simd(w, d, p)!.clipErrors(w.byteOffset, d.byteOffset, p.byteOffset, count, b, 15);
    let flips = 0;
    for (let k = 0; k < want.length; k++) {
      const j = Math.floor(k / b);
      // float32 rounding, or a value within rounding of a tie that went to the other code (one step of scale).
      const off = Math.abs(d[k] - want[k]);
      if (off > 1e-5) {
        flips++;
        expect(Math.abs(off - p[5 * j + 3])).toBeLessThan(1e-5);
      }
    }
    expect(flips).toBeLessThan(5);
    expect(d.some((v) => v !== 0)).toBe(true);
  });

  it('blockSquaredErrors: per output, the squared rounding error summed over strided rows', () => {
    const rows = 7;
    const Ns = 12;
    const stride = 20; // floats between rows: outputs 12 … 19 of each row must not count
    const s = new Scratch();
    s.reserve(rows * stride + 3 * Ns);
    const w = s.take(rows * stride);
    const [sc, z, e] = [s.take(Ns), s.take(Ns), s.take(Ns)];
    const rng = new SeededRandom(3);
    for (let i = 0; i < w.length; i++) w[i] = rng.normal();
    for (let n = 0; n < Ns; n++) {
      const p = blockParams(-1.5 + 0.1 * n, 1.2, 4, n % 3 === 0);
      sc[n] = p.scale;
      z[n] = p.zero;
    }
    s.simd(w, sc, z, e)!.blockSquaredErrors(w.byteOffset, 4 * stride, rows, Ns, sc.byteOffset, z.byteOffset, e.byteOffset, 15);
    for (let n = 0; n < Ns; n++) {
      let want = 0;
      for (let r = 0; r < rows; r++) {
        const v = w[r * stride + n];
        const q = Math.min(15, Math.max(0, Math.floor(v / sc[n] + 0.5) + z[n]));
        want += (v - (q - z[n]) * sc[n]) ** 2;
      }
      expect(e[n]).toBeCloseTo(want, 4);
    }
  });

  it('are offered only for arrays of the same scratch', () => {
    const a = new Scratch();
    const b = new Scratch();
    a.reserve(8);
    b.reserve(8);
    expect(a.simd(a.take(4))).toBeDefined();
    expect(a.simd(b.take(4))).toBeUndefined();
    expect(a.simd(new Float32Array(4))).toBeUndefined();
    // A scratch that never grew still links the module (its memory has 0 pages).
    expect(new Scratch().simd()).toBeDefined();
  });
});
