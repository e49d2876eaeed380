import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stories260K, tempDir, tinyLlama } from '../../../tools/fixtures/index.js';
import { alki, cliPath } from './helpers.js';

const work = tempDir('alki-chat-');
// Wide and long enough that a 4000-token reply takes seconds: Ctrl-C must land while it is being written.
const model = tinyLlama({ hiddenSize: 256, intermediateSize: 688, numLayers: 4, numHeads: 8, numKvHeads: 4, maxPositions: 8192, seed: 11 });
afterAll(() => {
  work.cleanup();
  model.cleanup();
});

// A Zephyr-style template: each turn tagged with its role, the generation prompt an open assistant tag.
const TEMPLATE =
  "{% for m in messages %}{{ bos_token if loop.first else '' }}<|{{ m.role }}|>\n{{ m.content }}{{ eos_token }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}";

/** The chat prompt at the end of the output (readline moves the cursor after it with an escape sequence). */
const PROMPT = /> (?:\x1b\[\d+G)?$/;

/** util-linux's `script` gives the CLI a pseudo-terminal, as a person's terminal does (raw mode, ^C as a key). */
const hasScript = spawnSync('script', ['--version']).status === 0;

/** Runs `alki run --chat` in a pseudo-terminal, typing each step once the output matches its `after`. */
function chatInPty(args: string[], steps: { after: RegExp; type: string }[], timeoutMs = 120_000): Promise<{ output: string; status: number | null }> {
  const cmd = [process.execPath, cliPath, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  const child = spawn('script', ['-qfec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, TERM: 'dumb' } });
  let output = '';
  let step = 0;
  let typing = false;
  // Type a moment after the cue, as a person would: keys sent while the terminal is being switched to raw mode are
  // discarded by the line discipline.
  const onData = (d: Buffer) => {
    output += d.toString();
    if (typing || step >= steps.length || !steps[step].after.test(output)) return;
    typing = true;
    setTimeout(() => {
      child.stdin.write(steps[step++].type);
      typing = false;
      onData(Buffer.alloc(0));
    }, 300);
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  return new Promise((ok) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (status) => {
      clearTimeout(timer);
      ok({ output, status });
    });
  });
}

describe('alki run --chat', () => {
  const bundle = join(work.dir, 'chat-bundle');
  beforeAll(() => {
    const cfgPath = join(model.dir, 'tokenizer_config.json');
    writeFileSync(cfgPath, JSON.stringify({ ...JSON.parse(readFileSync(cfgPath, 'utf8')), chat_template: TEMPLATE }));
    const r = alki(['build', model.dir, '--quantize', 'none', '--out', bundle, '--quiet']);
    expect(r.status, r.stderr).toBe(0);
  });

  it.skipIf(!hasScript)('keeps the history, streams replies, Ctrl-C stops a reply without ending the chat, Ctrl-D ends it', async () => {
    const r = await chatInPty(
      ['run', bundle, '--chat', '--system', 'Be brief.', '-n', '4000'],
      [
        { after: PROMPT, type: 'hello there\r' },
        // The reply is 4000 tokens long (a random model never stops): stop it once it has started.
        { after: /hello there\r*\n[^]{20,}/, type: '\x03' },
        { after: new RegExp(`\\[stopped\\][^]*${PROMPT.source}`), type: 'once upon a time\r' },
        { after: /once upon a time\r*\n[^]{20,}/, type: '\x03' },
        { after: new RegExp(`\\[stopped\\][^]*\\[stopped\\][^]*${PROMPT.source}`), type: '\x04' },
      ],
    );
    expect(r.status, r.output).toBe(0);
    expect(r.output.match(/\[stopped\]/g)?.length).toBe(2);
    expect(r.output).not.toMatch(/interrupted|error/);
  });

  it('renders the conversation with the template and generates the next turn', async () => {
    const r = alki(['run', bundle, '--chat', '-n', '3'], { input: 'hi\nagain\n\n' });
    expect(r.status, r.stderr).toBe(0);
    const counts = [...r.stderr.matchAll(/\[(\d+) prompt tokens, (\d+) new/g)].map((m) => [Number(m[1]), Number(m[2])]);
    expect(counts.length).toBe(2);
    // The second turn reads the first question, the first answer and the second question.
    expect(counts[1][0]).toBeGreaterThan(counts[0][0] + counts[0][1]);
  });

  it('refuses a model without a chat template, and --system without --chat', () => {
    if (stories260K) {
      const base = join(work.dir, 's260k');
      expect(alki(['build', stories260K, '--quantize', 'none', '--out', base, '--quiet']).status).toBe(0);
      const r = alki(['run', base, '--chat'], { input: 'hi\n' });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/has no chat template/);
    }
    const s = alki(['run', bundle, '--system', 'x', '--prompt', 'a']);
    expect(s.status).toBe(2);
    expect(s.stderr).toMatch(/--system only applies with --chat/);
  });
});
