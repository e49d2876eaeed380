/**
 * 128-bit SIMD kernels (WebAssembly) for the calibrated quantizers' innermost loops, which scalar JS runs at a
 * floor of ~1.5–6 ns per element: GPTQ's error spread inside a sub-block and its range search, and AWQ's clipping errors. Measured on
 * 2 cores of an Intel Xeon Sapphire Rapids (avx2 avx512f avx512_vnni amx), Node 20: the spread 2.3 → 0.22 ns and
 * the clipping errors 5.5 → 0.83 ns per element. Their arrays live in a {@link Scratch}'s WebAssembly memory.
 * They compute in float32 where the JS loops they replace computed in float64 and rounded the result.
 *
 * The source is kernels.wat beside this file; {@link KERNELS_WASM} is its assembly, which a test re-assembles
 * (wabt) and compares.
 */

/** kernels.wat assembled (wabt 1.0.39, SIMD), base64. */
export const KERNELS_WASM =
  'AGFzbQEAAAABHANgBH9/f30AYAZ/f39/f30AYAh/f39/f39/fQACDwEDZW52Bm1lbW9yeQIAAAMEAwABAgcvAwlzdWJTY2FsZWQAAApjbGlwRXJyb3JzAAESYmxvY2tTcXVhcmVkRXJyb3JzAAIKxAQDigECAn8BeyAD/RMhBiAAIAJBAnRqIQQgACACQXxxQQJ0aiEFAkADQCAAIAVPDQEgACAA/QAEACAB/QAEACAG/eYB/eUB/QsEACAAQRBqIQAgAUEQaiEBDAALCwJAA0AgACAETw0BIAAgACoCACABKgIAIAOUkzgCACAAQQRqIQAgAUEEaiEBDAALCwvZAQICfwp7QwAAAD/9EyENQwAAAAD9EyEOIAX9EyEPIAIgA0EUbGohBgJAA0AgAiAGTw0BIAL9CQIAIQggAv0JAgQhCSAC/QkCCCEKIAL9CQIMIQsgAv0JAhAhDCAAIARBAnRqIQcCQANAIAAgB08NASAA/QAEACEQIBAgCP3rASAJ/eoBIAr95gEgDf3kAf1oIAz95AEhESARIA796wEgD/3qASERIAEgESAM/eUBIAv95gEgEP3lAf0LBAAgAEEQaiEAIAFBEGohAQwACwsgAkEUaiECDAALCwvaAQIDfwl7QwAAAD/9EyERQwAAAAD9EyESIAf9EyETIAQgA0ECdGohCAJAA0AgBCAITw0BIAT9AAQAIQsgBf0ABAAhDCASIQ0gACEKIAIhCQJAA0AgCUUNASAK/QAEACEOIA4gC/3nASAR/eQB/WggDP3kASAS/esBIBP96gEhDyAOIA8gDP3lASAL/eYB/eUBIRAgDSAQIBD95gH95AEhDSAKIAFqIQogCUEBayEJDAALCyAGIA39CwQAIABBEGohACAEQRBqIQQgBUEQaiEFIAZBEGohBgwACwsL';

/** The module's exports: byte offsets into the memory it was instantiated with. */
export interface KernelExports {
  /** dst[i] −= src[i]·u for i < n. */
  subScaled(dst: number, src: number, n: number, u: number): void;
  /**
   * For `count` blocks of `b` values (b a multiple of 4) at `w`, with five float32 parameters per block at `p`
   * (clo, chi, 1/scale, scale, zero): d = (clamp(floor(clamp(w, clo, chi)·(1/scale) + 0.5) + zero, 0, levels) − zero)·scale − w.
   */
  clipErrors(w: number, d: number, p: number, count: number, b: number, levels: number): void;
  /**
   * GPTQ's range search, one candidate for `n` outputs (a multiple of 4): e[i] = Σ over `rows` rows (row r at
   * w + r·stride bytes, outputs contiguous) of (v − (clamp(floor(v/s[i] + 0.5) + z[i], 0, levels) − z[i])·s[i])².
   */
  blockSquaredErrors(w: number, stride: number, rows: number, n: number, s: number, z: number, e: number, levels: number): void;
}

let compiled: WebAssembly.Module | undefined;

/** The kernels over `memory` (the module is compiled once; an instance per memory is cheap). */
export function instantiateKernels(memory: WebAssembly.Memory): KernelExports {
  compiled ??= new WebAssembly.Module(Uint8Array.from(atob(KERNELS_WASM), (c) => c.charCodeAt(0)));
  return new WebAssembly.Instance(compiled, { env: { memory } }).exports as unknown as KernelExports;
}
