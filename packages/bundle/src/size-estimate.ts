import { countParameters, type DecoderConfig } from '@alki/models';
import { DEFAULT_HEAD_BITS, defaultEmbedBits, embeddingBlockSize, tableBits, writtenBlockSize } from '@alki/quantizers';

/**
 * Bytes of the ONNX weights Alki writes for a config, without building it:
 * every linear including the head either float32 or blockwise `bits` with
 * float16 scales and packed zero points — the head at `headBits` (by default
 * what `buildBundle` writes) —, the embedding table at `embedBits` (quantized
 * tables keep one zero point per byte; a tied table quantized with its head is
 * the head's codes plus those zero points; a float table of a tied model is
 * stored again, transposed, for the head's MatMul), norms, biases and rotary
 * caches in float32.
 */
export function estimateModelBytes(
  c: DecoderConfig,
  bits: 32 | 8 | 4,
  blockSize = 32,
  headBits: 32 | 8 | 4 = bits === 32 ? 32 : bits === 8 ? 8 : (DEFAULT_HEAD_BITS as 8),
  /** Bits of the token table when asked for (default: defaultEmbedBits of `bits`; with `awq` a tied table follows the head). */
  explicitEmbed?: 32 | 8 | 4,
  /** Bytes per block scale: 2 on disk (float16), 4 in a loaded session (onnxruntime folds the Cast to float32). */
  scaleBytes: 2 | 4 = 2,
  /** AWQ (or GPTQ on AWQ's scales): a tied table shared with the head adds its 1/s (H floats); one not shared follows the head's bits. */
  awq = false,
): number {
  const embedBits = explicitEmbed ?? (bits === 32 ? 32 : defaultEmbedBits(bits));
  const H = c.hiddenSize;
  // Codes [N, blocks, bs·b/8] and float16 scales [N, blocks] (float32 only where a scale leaves float16's range).
  const blockwise = (N: number, K: number, b: number, bs: number) => N * Math.ceil(K / bs) * ((bs * b) / 8 + scaleBytes);
  const blockOf = (K: number, b: number = bits) => writtenBlockSize(K, blockSize, b);
  // MatMulNBits adds zero points packed per row.
  const linear = (N: number, K: number, b: number = bits) =>
    b === 32 ? N * K * 4 : blockwise(N, K, b, blockOf(K, b)) + N * Math.ceil((Math.ceil(K / blockOf(K, b)) * b) / 8);
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const I = c.intermediateSize;
  const perLayer = linear(q + 2 * kv, H) + linear(H, q) + (c.mlp === 'gated' ? 2 * linear(I, H) + linear(H, I) : linear(I, H) + linear(H, I));
  const linearParams = c.numLayers * (H * (q + 2 * kv) + q * H + (c.mlp === 'gated' ? 3 : 2) * H * I);
  // Everything that is not a linear weight or the embedding stays float32 (norms, biases).
  const embedParams = c.vocabSize * H;
  const otherParams = countParameters({ ...c, tieWordEmbeddings: true }) - linearParams - embedParams;
  const rotary = c.ropeScaling?.type === 'dynamic' ? 0 : 2 * c.maxPositions * (c.rotaryDim / 2) * 4;
  // The embedding: quantized only when H splits into whole blocks; a tied table not shared after AWQ follows the head.
  const eb = embeddingBlockSize(H, blockSize);
  const quantizedEmbed = bits !== 32 && embedBits !== 32 && eb !== undefined;
  const sharedWithHead = c.tieWordEmbeddings && bits !== 32 && headBits !== 32 && embedBits !== 32 && H % blockOf(H, headBits) === 0;
  // Quantized tables keep one zero point per byte.
  const embed = sharedWithHead
    ? c.vocabSize * (H / blockOf(H, headBits)) + (awq ? H * 4 : 0)
    : quantizedEmbed
      ? blockwise(c.vocabSize, H, tableBits(bits, explicitEmbed, awq && c.tieWordEmbeddings ? headBits : undefined), eb!) + c.vocabSize * (H / eb!)
      : embedParams * 4;
  return otherParams * 4 + embed + perLayer * c.numLayers + linear(c.vocabSize, H, headBits) + rotary;
}
