export { quantize, resolveQuantizeOptions, QUANTIZE_METHODS } from './quantize.js';
export type { QuantizeOptions, QuantizeReport, QuantizeMethod, LayerReport } from './quantize.js';
export { rtn } from './rtn.js';
export { blockParams, quantizeValue, dequantizeBlockwise } from './blockwise.js';
export type { BlockwiseQuantized, BlockwiseOptions } from './blockwise.js';
export { matMulNBitsTensors, matMulNBitsNode } from './matmul-nbits.js';
export { findLinears, assertFinite, pruneInitializers } from './rewrite.js';
export type { LinearSite } from './rewrite.js';
