import { floatTensor, packBits, uint8Tensor, type Node, type Tensor } from '@alki/onnx';
import type { BlockwiseQuantized } from '../blockwise.js';

/**
 * The tensors of a com.microsoft MatMulNBits node: B uint8 [N, nBlocks,
 * blockSize·bits/8] (codes of a block packed low bits first), scales [N,
 * nBlocks], zero_points uint8 1-D [N·ceil(nBlocks·bits/8)] packed the same way, each
 * row padded to a byte. 1-D as the op spec and onnxruntime's own quantizer write
 * them: the WebGPU kernel refuses a 2-D zero_points ("cannot convert shape").
 */
export function matMulNBitsTensors(qw: BlockwiseQuantized, prefix: string): { B: Tensor; scales: Tensor; zeroPoints?: Tensor } {
  const { N, nBlocks, blockSize, bits } = qw;
  const blob = (blockSize * bits) / 8;
  const packed = new Uint8Array(N * nBlocks * blob);
  const stride = nBlocks * blockSize;
  for (let n = 0; n < N; n++) {
    packBits(qw.q.subarray(n * stride, (n + 1) * stride), bits as 2 | 4 | 8, packed, n * nBlocks * blob);
  }
  const B = uint8Tensor(`${prefix}.qweight`, [N, nBlocks, blob], packed);
  const scales = floatTensor(`${prefix}.scales`, [N, nBlocks], qw.scales);
  let zeroPoints: Tensor | undefined;
  if (qw.zeroPoints) {
    const zpBytes = Math.ceil((nBlocks * bits) / 8);
    const zp = new Uint8Array(N * zpBytes);
    for (let n = 0; n < N; n++) packBits(qw.zeroPoints.subarray(n * nBlocks, (n + 1) * nBlocks), bits as 2 | 4 | 8, zp, n * zpBytes);
    zeroPoints = uint8Tensor(`${prefix}.zero_points`, [N * zpBytes], zp);
  }
  return { B, scales, zeroPoints };
}

/** A MatMulNBits node computing `input` @ dequant(B)ᵀ into `output`. */
export function matMulNBitsNode(
  input: string,
  output: string,
  qw: Pick<BlockwiseQuantized, 'K' | 'N' | 'bits' | 'blockSize'>,
  names: { B: string; scales: string; zeroPoints?: string },
  accuracyLevel: number,
  name: string,
): Node {
  return {
    opType: 'MatMulNBits',
    domain: 'com.microsoft',
    name,
    inputs: names.zeroPoints ? [input, names.B, names.scales, names.zeroPoints] : [input, names.B, names.scales],
    outputs: [output],
    attributes: {
      K: { type: 'int', value: qw.K },
      N: { type: 'int', value: qw.N },
      bits: { type: 'int', value: qw.bits },
      block_size: { type: 'int', value: qw.blockSize },
      accuracy_level: { type: 'int', value: accuracyLevel },
    },
  };
}
