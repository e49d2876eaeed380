/**
 * Packs unsigned integers of `bits` bits (2, 4 or 8) into bytes, element j at
 * bit offset j*bits, low bits first: the layout of com.microsoft MatMulNBits
 * and of ONNX's INT4/UINT4 tensors (even elements in the low nibble).
 */
export function packBits(values: ArrayLike<number>, bits: 2 | 4 | 8, out?: Uint8Array, outOffset = 0): Uint8Array {
  const perByte = 8 / bits;
  const n = Math.ceil(values.length / perByte);
  const dst = out ?? new Uint8Array(n);
  const mask = (1 << bits) - 1;
  if (bits === 8) {
    for (let i = 0; i < values.length; i++) dst[outOffset + i] = values[i] & 0xff;
    return dst;
  }
  for (let i = 0; i < values.length; i++) {
    const byte = outOffset + Math.floor(i / perByte);
    const shift = (i % perByte) * bits;
    dst[byte] = (dst[byte] & ~(mask << shift)) | ((values[i] & mask) << shift);
  }
  return dst;
}

/** Inverse of {@link packBits}: reads `count` values of `bits` bits. */
export function unpackBits(bytes: Uint8Array, bits: 2 | 4 | 8, count: number, offset = 0): Uint8Array {
  const out = new Uint8Array(count);
  const perByte = 8 / bits;
  const mask = (1 << bits) - 1;
  for (let i = 0; i < count; i++) {
    out[i] = (bytes[offset + Math.floor(i / perByte)] >> ((i % perByte) * bits)) & mask;
  }
  return out;
}
