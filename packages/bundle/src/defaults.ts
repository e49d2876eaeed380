import type { QuantizeOptions } from '@alki/quantizers';

/**
 * The method `alki build <model> --bits <bits>` uses when none is given: GPTQ below 8 bits, RTN at 8.
 *
 * Below 8 bits the default is the bundle that wins against llama.cpp's Q4_0 at equal quality (issue 15, measured in
 * docs/performance.md): GPTQ at block 128 (see {@link defaultBlockSize}) decodes and prefills faster than Q4_0
 * (block 128 needs a quarter of block 32's scale work in MatMulNBits) in fewer bytes, and GPTQ's rounding is what
 * keeps block 128's quality past Q4_0's on stories260K (+7.3% with the quick recipe against Q4_0's +9.2%; RTN at
 * block 128 +11%; Intel Xeon, AVX-512 VNNI, no AMX). At 8 bits RTN is within 0.04% of fp32 and GPTQ adds nothing but time. `--quantize rtn` remains
 * the build in seconds.
 */
export function defaultMethod(bits?: number): 'gptq' | 'rtn' {
  return (bits ?? 4) < 8 ? 'gptq' : 'rtn';
}

/**
 * The block size when none is given: 128 for GPTQ below 8 bits (its rounding holds quality there, and MatMulNBits
 * runs 1.17× (decode) to 1.45× (prefill) faster than at 32 on an Intel Xeon with AVX-512 VNNI, no AMX), 32 for the
 * other methods, whose quality at 128 falls behind Q4_0's on stories260K (RTN +11%, AWQ +9.8%; docs/performance.md,
 * docs/quantization.md).
 */
export function defaultBlockSize(method: QuantizeOptions['method'], bits?: number): number {
  return method === 'gptq' && (bits ?? 4) < 8 ? 128 : 32;
}

/** The quantize options of `alki build --bits <bits>` with no other flag: {@link defaultMethod} at {@link defaultBlockSize}. */
export function defaultQuantize(bits: 4 | 8 = 4): { method: 'gptq' | 'rtn'; bits: 4 | 8; blockSize: number } {
  const method = defaultMethod(bits);
  return { method, bits, blockSize: defaultBlockSize(method, bits) };
}
