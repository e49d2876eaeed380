import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { AlkiError } from '@alki/core';
import { generate, type GenerateOptions, type GenerateResult } from './generate.js';
import { DecoderSession, type SessionOptions } from './session.js';
import { TextStreamer } from './text-stream.js';
import { loadTokenizer, type TextTokenizer } from './tokenizer.js';
import type { ChatMessage } from './chat-template.js';

export interface TextGenerationOptions extends Omit<GenerateOptions, 'onToken'> {
  /** Streams the generated text as it is produced. */
  onText?: (delta: string) => void;
  /** Extra stop ids on top of {@link TextGenerator.defaultStopTokenIds}. */
  extraStopTokenIds?: number[];
}

export interface TextGenerationResult extends GenerateResult {
  promptIds: number[];
  /** The generated text (stop tokens not included). */
  text: string;
}

/**
 * Prompt in, text out: a tokenizer and a decoder session together. Stops on
 * the model's EOS ids and on BOS: a generated BOS begins a new document
 * (llama2.c models such as stories260K end a story that way).
 */
export class TextGenerator {
  private constructor(
    readonly session: DecoderSession,
    readonly tokenizer: TextTokenizer,
    readonly maxPositions?: number,
  ) {}

  /**
   * Loads `modelPath` (default: the graph in `<dir>/onnx/`, named as transformers.js names its dtypes —
   * model.onnx, model_q4.onnx, model_quantized.onnx, …) and the tokenizer files of `dir`.
   */
  static async load(dir: string, options: SessionOptions & { modelPath?: string; maxPositions?: number } = {}): Promise<TextGenerator> {
    const tokenizer = loadTokenizer(dir);
    const session = await DecoderSession.load(options.modelPath ?? defaultGraph(dir), options);
    // Ids the tokenizer can produce index the embedding table: a larger tokenizer does not belong to this model.
    if (session.vocabSize !== undefined && tokenizer.vocabSize > session.vocabSize) {
      await session.release();
      throw new AlkiError(
        'TOKENIZER',
        `the tokenizer of ${dir} has ${tokenizer.vocabSize} tokens but the model only ${session.vocabSize}`,
        'the tokenizer files do not belong to this model: copy the bundle again or rebuild it',
      );
    }
    return new TextGenerator(session, tokenizer, options.maxPositions);
  }

  get defaultStopTokenIds(): number[] {
    const ids = [...this.tokenizer.eosTokenIds];
    if (this.tokenizer.bosTokenId !== undefined) ids.push(this.tokenizer.bosTokenId);
    return [...new Set(ids)];
  }

  async generate(prompt: string, options: TextGenerationOptions = {}): Promise<TextGenerationResult> {
    return this.generateFrom(this.tokenizer.encode(prompt), options);
  }

  /**
   * The assistant's next turn: the conversation rendered with the model's chat template (the template adds the
   * special tokens it needs), then generated until a stop token. The whole history is read again each turn.
   */
  async chat(messages: ChatMessage[], options: TextGenerationOptions = {}): Promise<TextGenerationResult> {
    const template = this.tokenizer.chatTemplate;
    if (!template)
      throw new AlkiError(
        'BAD_INPUT',
        'this model has no chat template (tokenizer_config.json has no chat_template)',
        'base models continue text instead: use --prompt; chat needs an instruction-tuned model',
      );
    return this.generateFrom(this.tokenizer.encode(template.render(messages, true), { addSpecialTokens: false }), options);
  }

  private async generateFrom(promptIds: number[], options: TextGenerationOptions): Promise<TextGenerationResult> {
    const V = this.session.vocabSize;
    for (const id of options.extraStopTokenIds ?? []) {
      if (!Number.isInteger(id) || id < 0 || (V !== undefined && id >= V))
        throw new AlkiError(
          'BAD_OPTION',
          `stop token id ${id} is not a token of this model${V !== undefined ? ` (0 … ${V - 1})` : ''}`,
          'give token ids as whole numbers, e.g. --stop-token-ids 2 13',
        );
    }
    const stopTokenIds = options.stopTokenIds ?? [...this.defaultStopTokenIds, ...(options.extraStopTokenIds ?? [])];
    const streamer = new TextStreamer(this.tokenizer, options.onText ?? (() => {}), promptIds, new Set(stopTokenIds));
    const result = await generate(this.session, promptIds, { maxPositions: this.maxPositions, ...options, stopTokenIds, onToken: (id) => streamer.push(id) });
    return { ...result, promptIds, text: streamer.text };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** The graph of a model folder: onnx/model.onnx, else the one onnx/model*.onnx file there. */
function defaultGraph(dir: string): string {
  const plain = join(dir, 'onnx', 'model.onnx');
  if (existsSync(plain)) return plain;
  let graphs: string[] = [];
  try {
    graphs = readdirSync(join(dir, 'onnx')).filter((f) => /^model.*\.onnx$/.test(f));
  } catch {
    // no onnx/ folder: DecoderSession.load reports the missing file
  }
  if (graphs.length > 1) throw new AlkiError('BAD_INPUT', `${dir}/onnx holds several graphs (${graphs.join(', ')})`, 'pass the one to load as modelPath');
  return graphs.length ? join(dir, 'onnx', graphs[0]) : plain;
}
