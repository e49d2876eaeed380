/**
 * Writes a small Llama/SentencePiece-style BPE tokenizer (byte fallback, "▁"
 * for spaces) in HF tokenizer.json format, so that generated test models come
 * with a real tokenizer that any HF-compatible library loads.
 */
export interface TinyTokenizerFiles {
  tokenizerJson: object;
  tokenizerConfig: object;
  specialTokensMap: object;
  vocabSize: number;
}

const CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?\'"-:;()';
const WORDS = ['the', 'and', 'was', 'she', 'he', 'to', 'a', 'it', 'in', 'day', 'one', 'upon', 'time', 'once', 'there', 'little', 'big', 'cat', 'dog', 'play'];

export function tinyTokenizer(): TinyTokenizerFiles {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let i = 0; i < 256; i++) vocab[`<0x${i.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + i;
  let next = 259;
  const add = (piece: string) => {
    if (!(piece in vocab)) vocab[piece] = next++;
  };
  add('▁');
  for (const ch of CHARS) add(ch);
  // Each word becomes one piece through left-to-right merges: ▁ + t → ▁t, ▁t + h → ▁th, ...
  const merges: string[] = [];
  for (const w of WORDS) {
    let cur = '▁';
    for (const ch of w) {
      const merged = cur + ch;
      if (!(merged in vocab)) {
        merges.push(`${cur} ${ch}`);
        add(merged);
      }
      cur = merged;
    }
  }
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }],
    },
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, vocab, merges },
  };
  const tokenizerConfig = {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: '<s>',
    eos_token: '</s>',
    unk_token: '<unk>',
    pad_token: null,
    clean_up_tokenization_spaces: false,
    legacy: true,
    model_max_length: 2048,
    tokenizer_class: 'LlamaTokenizer',
  };
  const specialTokensMap = { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' };
  return { tokenizerJson, tokenizerConfig, specialTokensMap, vocabSize: next };
}
