import type { TextTokenizer } from './tokenizer-core.js';

/**
 * Turns a stream of token ids into text deltas. Decoding the whole sequence
 * each time keeps multi-token characters (byte fallback) and leading-space
 * rules right; a trailing U+FFFD means an incomplete UTF-8 sequence, held back.
 */
export class TextStreamer {
  private readonly ids: number[];
  private emitted: string;
  private readonly start: string;
  /**
   * @param prefix ids already shown (the prompt): deltas continue its text, so
   *   a generated word gets its leading space.
   */
  constructor(
    private readonly tokenizer: TextTokenizer,
    private readonly onText: (delta: string) => void,
    prefix: number[] = [],
    private readonly skip = new Set<number>(),
  ) {
    this.ids = [...prefix];
    this.start = this.emitted = prefix.length ? tokenizer.decode(prefix) : '';
  }

  push(id: number): void {
    if (this.skip.has(id)) return;
    this.ids.push(id);
    const text = this.tokenizer.decode(this.ids);
    if (text.endsWith('\uFFFD')) return;
    if (text.startsWith(this.emitted)) {
      const delta = text.slice(this.emitted.length);
      if (delta) this.onText(delta);
      this.emitted = text;
    }
  }

  /** The generated text emitted so far (without the prefix). */
  get text(): string {
    return this.emitted.slice(this.start.length);
  }
}
