export { DecoderSession } from './session.js';
export type { SessionOptions, KvCache, KvLayout, ForwardResult } from './session.js';
export { loadTokenizer } from './tokenizer.js';
export type { TextTokenizer } from './tokenizer.js';
export { generate } from './generate.js';
export type { GenerateOptions, GenerateResult } from './generate.js';
export { sampleToken, argmax, samplingDefaults } from './sampling.js';
export type { SamplingOptions } from './sampling.js';
export { TextStreamer } from './text-stream.js';
