import { Template } from '@huggingface/jinja';
import { AlkiError } from '@alki/core';

/** One turn of a conversation, as chat templates expect it. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** Templates are a few KB; far longer is not one (and slows every turn's rendering). */
const MAX_TEMPLATE_CHARS = 256 * 1024;

/**
 * A model's chat template (tokenizer_config.json's `chat_template`, Jinja) rendered with @huggingface/jinja, the
 * implementation transformers.js uses. Browser-safe.
 */
export class ChatTemplate {
  private readonly template: Template;

  private constructor(
    readonly source: string,
    private readonly specials: Record<string, string>,
    private readonly where: string,
  ) {
    try {
      this.template = new Template(source);
    } catch (e) {
      throw new AlkiError(
        'TOKENIZER',
        `the chat template of ${where} does not parse: ${String((e as Error).message).slice(0, 200)}`,
        'fix chat_template in tokenizer_config.json, or chat without it (--prompt continues plain text)',
      );
    }
  }

  /**
   * The template of a tokenizer_config.json, or undefined when it has none: a string, or the list of named
   * templates (`[{ name: 'default', template }]`) some models ship.
   */
  static fromTokenizerConfig(config: Record<string, unknown>, where: string): ChatTemplate | undefined {
    let source = config.chat_template;
    if (Array.isArray(source)) source = (source.find((t) => t?.name === 'default') ?? source[0])?.template;
    if (typeof source !== 'string' || source.trim() === '') return undefined;
    if (source.length > MAX_TEMPLATE_CHARS)
      throw new AlkiError('TOKENIZER', `the chat template of ${where} has ${source.length} characters`, 'tokenizer_config.json is damaged: copy it again');
    const token = (v: unknown) =>
      typeof v === 'string'
        ? v
        : v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string'
          ? (v as { content: string }).content
          : undefined;
    const specials: Record<string, string> = {};
    for (const k of ['bos_token', 'eos_token', 'unk_token', 'pad_token']) {
      const t = token(config[k]);
      if (t !== undefined) specials[k] = t;
    }
    return new ChatTemplate(source, specials, where);
  }

  /** The conversation as the model was trained to read it, ending with the assistant's turn to speak. */
  render(messages: ChatMessage[], addGenerationPrompt = true): string {
    try {
      return this.template.render({
        messages,
        add_generation_prompt: addGenerationPrompt,
        ...this.specials,
      });
    } catch (e) {
      // Templates call raise_exception (built into @huggingface/jinja) to refuse a conversation they cannot render.
      throw new AlkiError(
        'BAD_INPUT',
        `the chat template of ${this.where} refused the conversation: ${String((e as Error).message).slice(0, 200)}`,
        'templates often require turns to alternate user / assistant, with a system message only first; check tokenizer_config.json’s chat_template otherwise',
      );
    }
  }
}
