// @alki/runtime/web: what runs a bundle with no Node built-ins (a browser with onnxruntime-web, a worker):
// the decoder over any onnxruntime session, the tokenizer from its JSON files, generation and sampling.
export { Decoder, ortMessage } from './decoder.js';
export type { KvCache, KvLayout, ForwardResult, TensorConstructor, DecoderOptions } from './decoder.js';
export { tokenizerFromJson } from './tokenizer-core.js';
export type { TextTokenizer, TokenizerFiles } from './tokenizer-core.js';
export { generate } from './generate.js';
export type { GenerateOptions, GenerateResult } from './generate.js';
export { sampleToken, argmax, samplingDefaults } from './sampling.js';
export type { SamplingOptions } from './sampling.js';
export { TextStreamer } from './text-stream.js';
export { sampleSequences } from './sample-sequences.js';
export { ChatTemplate } from './chat-template.js';
export type { ChatMessage } from './chat-template.js';
