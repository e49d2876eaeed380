import { countParameters, type DecoderConfig } from '@alki/models';
import { DEFAULT_HEAD_BITS } from '@alki/quantizers';

/**
 * Bytes of the ONNX weights Alki writes for a config, without building it:
 * float32 embedding table (gathered, not quantized), every linear including
 * the head (a tied head is stored again, transposed, for its MatMul) either
 * float32 or blockwise `bits` with float32 scales and packed zero points — the
 * head at `headBits` (by default what `buildBundle` writes) —, norms, biases
 * and rotary caches in float32.
 */
export function estimateModelBytes(c: DecoderConfig, bits: 32 | 8 | 4, blockSize = 32, headBits: 32 | 8 | 4 = bits === 32 ? 32 : bits === 8 ? 8 : (DEFAULT_HEAD_BITS as 8)): number {
  const H = c.hiddenSize;
  const linear = (N: number, K: number, b: number = bits) => {
    if (b === 32) return N * K * 4;
    const blocks = Math.ceil(K / blockSize);
    // MatMulNBits: codes [N, blocks, blockSize·b/8], scales [N·blocks], zero points packed per row.
    return N * blocks * blockSize * (b / 8) + N * blocks * 4 + N * Math.ceil((blocks * b) / 8);
  };
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const I = c.intermediateSize;
  const perLayer = linear(q + 2 * kv, H) + linear(H, q) + (c.mlp === 'gated' ? 2 * linear(I, H) + linear(H, I) : linear(I, H) + linear(H, I));
  const linearParams = c.numLayers * (H * (q + 2 * kv) + q * H + (c.mlp === 'gated' ? 3 : 2) * H * I);
  // Everything that is not a linear weight stays float32 (embedding, norms, biases).
  const otherParams = countParameters({ ...c, tieWordEmbeddings: true }) - linearParams;
  const rotary = c.ropeScaling?.type === 'dynamic' ? 0 : 2 * c.maxPositions * (c.rotaryDim / 2) * 4;
  return otherParams * 4 + perLayer * c.numLayers + linear(c.vocabSize, H, headBits) + rotary;
}
