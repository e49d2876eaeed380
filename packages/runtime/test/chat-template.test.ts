import { describe, expect, it } from 'vitest';
import { ChatTemplate } from '../src/index.js';

const ZEPHYR = '{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}{{ eos_token }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}';

describe('ChatTemplate', () => {
  it('renders a conversation with the special tokens of tokenizer_config.json', () => {
    const t = ChatTemplate.fromTokenizerConfig({ chat_template: ZEPHYR, eos_token: { content: '</s>' } }, 'm')!;
    expect(
      t.render([
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
      ]),
    ).toBe('<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\n');
    expect(t.render([{ role: 'user', content: 'Hi' }], false)).toBe('<|user|>\nHi</s>\n');
  });

  it('takes the default of a list of named templates, and none when there is none', () => {
    const t = ChatTemplate.fromTokenizerConfig(
      {
        chat_template: [
          { name: 'tool_use', template: 'T' },
          { name: 'default', template: 'D{{ messages | length }}' },
        ],
      },
      'm',
    )!;
    expect(t.render([{ role: 'user', content: 'x' }])).toBe('D1');
    expect(ChatTemplate.fromTokenizerConfig({}, 'm')).toBeUndefined();
    expect(ChatTemplate.fromTokenizerConfig({ chat_template: 42 }, 'm')).toBeUndefined();
  });

  it('a template that refuses a conversation, or does not parse, says so', () => {
    const strict = ChatTemplate.fromTokenizerConfig(
      { chat_template: "{% if messages[0].role != 'user' %}{{ raise_exception('Conversation roles must start with user') }}{% endif %}ok" },
      'm',
    )!;
    expect(() => strict.render([{ role: 'assistant', content: 'x' }])).toThrow(/refused the conversation: .*must start with user/);
    expect(strict.render([{ role: 'user', content: 'x' }])).toBe('ok');
    expect(() => ChatTemplate.fromTokenizerConfig({ chat_template: '{% for %}' }, 'm')).toThrow(/does not parse/);
  });
});
