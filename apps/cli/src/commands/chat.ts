import { createInterface } from 'node:readline';
import type { ChatMessage, TextGenerationOptions, TextGenerator } from '@alki/runtime';

/**
 * `alki run --chat`: reads a line, renders the whole conversation with the model's chat template, streams the reply,
 * keeps it in the history. In a terminal, Ctrl-C stops the reply being written (the conversation goes on) and
 * Ctrl-C at the prompt, Ctrl-D or an empty line end it; `/reset` forgets the history.
 */
export async function chatLoop(gen: TextGenerator, o: { system?: string; sampling: TextGenerationOptions; quiet?: boolean }): Promise<void> {
  // Fail before the first question when the model cannot chat.
  if (!gen.tokenizer.chatTemplate) await gen.chat([]);
  const history: ChatMessage[] = o.system ? [{ role: 'system', content: o.system }] : [];
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY === true, prompt: '> ' });
  let reply: AbortController | undefined;
  rl.on('SIGINT', () => {
    if (reply) reply.abort();
    else rl.close();
  });
  if (!o.quiet) process.stderr.write('chat: an empty line, Ctrl-D or Ctrl-C ends; Ctrl-C while it answers stops the answer; /reset forgets\n');
  const lines = rl[Symbol.asyncIterator]();
  rl.prompt();
  // Lines typed ahead (or piped) are answered in turn; the iterator ends at Ctrl-D, end of input or close.
  for (;;) {
    const next = await lines.next();
    if (next.done) break;
    const line = next.value.trim();
    if (line === '') break;
    if (line === '/reset') {
      history.splice(o.system ? 1 : 0);
      rl.prompt();
      continue;
    }
    history.push({ role: 'user', content: line });
    reply = new AbortController();
    let stopped = false;
    try {
      const r = await gen.chat(history, { ...o.sampling, signal: reply.signal, onText: (d) => process.stdout.write(d) });
      history.push({ role: 'assistant', content: r.text });
      if (!o.quiet) process.stderr.write(`\n[${r.timings.promptTokens} prompt tokens, ${r.timings.newTokens} new, stopped: ${r.stopReason}]\n`);
    } catch (e) {
      if (!reply.signal.aborted) throw e;
      stopped = true;
    } finally {
      reply = undefined;
    }
    // A stopped reply is not part of the conversation: the question stays, unanswered, and may be asked again.
    if (stopped) {
      history.pop();
      process.stdout.write('\n[stopped]\n');
    }
    rl.prompt();
  }
  rl.close();
  process.stdout.write('\n');
}
