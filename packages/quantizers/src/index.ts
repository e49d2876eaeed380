export {
  quantize,
  quantizeParallel,
  resolveQuantizeOptions,
  QUANTIZE_METHODS,
  DEFAULT_HEAD_BITS,
  defaultEmbedBits,
  embeddingBlockSize,
  tableBits,
  writtenBlockSize,
  DEFAULT_GPTQ_FLOAT_TARGETS,
  gptqAwqScales,
  gptqDampening,
  writeMatMulNBits,
  finishQuantizedModel,
  quantizeEmbeddings,
} from './quantize.js';
export { findEmbeddings, quantizeEmbedding, shareTiedEmbedding } from './embedding.js';
export type { EmbeddingSite } from './embedding.js';
export type { QuantizeOptions, QuantizeReport, QuantizeMethod, LayerReport, ResolvedQuantizeOptions } from './quantize.js';
export { createQuantizer } from './factory.js';
export type { Quantizer, QuantizeContext } from './factory.js';
export { calibratedQuantize } from './calibrated.js';
export { applyScale, canFoldScale } from './graph/scale-folding.js';
export type { CalibrationData, CalibratedOptions } from './calibration/types.js';
export { calibrationFromText, calibrationFromModel, readCalibrationFile } from './calibration/data.js';
export { LayerRunner } from './calibration/layer-runner.js';
export type { InputStats, StatsRequest } from './calibration/layer-runner.js';
export { extractSubgraph } from './calibration/subgraph.js';
export { rtn } from './rtn.js';
export { rtnPacked } from './rtn-packed.js';
export type { PackedRtn } from './rtn-packed.js';
export { RtnPool } from './rtn-pool.js';
export { gptq, prepareGptqHessian } from './gptq.js';
export { Scratch } from './scratch.js';
export type { GptqOptions, GptqHessian, GemmUpdate } from './gptq.js';
export { awqSearchScale, awqClip, awqBlockGram, fakeQuantize } from './awq.js';
export type { AwqOptions, AwqLinear, ClipProducts } from './awq.js';
export { blockParams, halfPrecision, quantizeValue, dequantizeBlockwise, relativeErrorOf } from './blockwise.js';
export { halfScales } from './graph/half-scales.js';
export type { StoredScales } from './graph/half-scales.js';
export type { BlockwiseQuantized, BlockwiseOptions, WeightLayout } from './blockwise.js';
export { matMulNBitsTensors, matMulNBitsNode } from './graph/matmul-nbits.js';
export { findLinears, findHead, assertFinite, pruneInitializers, gemmToMatMul } from './graph/rewrite.js';
export { inferScaleGroups } from './graph/infer-groups.js';
export type { LinearSite } from './graph/rewrite.js';
export { smoothingFactors, int8PerChannel, writeDynamicQuantizeMatMul, w8a8Codes, W8A8_FORMATS, DEFAULT_W8A8_FORMAT } from './smoothquant.js';
export type { W8A8Format } from './smoothquant.js';
export { FolderCheckpoint } from './checkpoint.js';
export type { LayerCheckpoint, CheckpointLayer, CheckpointState } from './checkpoint.js';
