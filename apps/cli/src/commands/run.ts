import type { Argv } from 'yargs';
import { checkBundleSize, machineWarnings, readBundle, targetThreads } from '@alki/bundle';
import { readPrompt } from './prompt.js';
import { TextGenerator } from '@alki/runtime';
import { AlkiError } from '@alki/core';
import { chatLoop } from './chat.js';
import { note, warn, type OutputFlags } from '../output.js';

export function runCommand(y: Argv, signal: AbortSignal) {
  return y.command(
    'run <bundle>',
    'generate text with a bundle (greedy unless --temperature > 0)',
    (a) =>
      a
        .positional('bundle', { type: 'string', demandOption: true, describe: 'bundle folder' })
        .option('prompt', { alias: 'p', type: 'string', describe: 'text to continue (long prompts: --prompt-file)' })
        .option('prompt-file', { type: 'string', describe: 'read the prompt from this UTF-8 file, or from standard input with "-"' })
        .option('max-new-tokens', { alias: 'n', type: 'number', default: 128 })
        .option('temperature', { alias: 't', type: 'number', default: 0, describe: '0 = greedy' })
        .option('top-k', { type: 'number', default: 0, describe: '0 = off' })
        .option('top-p', { type: 'number', default: 1, describe: '1 = off' })
        .option('seed', { type: 'number', default: 0 })
        .option('stop-token-ids', { type: 'array', number: true, describe: 'extra ids that end generation (EOS and BOS always do)' })
        .option('threads', { type: 'number', describe: 'onnxruntime intra-op threads (default: all cores)' })
        .option('chat', {
          type: 'boolean',
          default: false,
          describe: "interactive chat with the model's chat template (history kept; Ctrl-C stops a reply, Ctrl-D or an empty line ends)",
        })
        .option('system', { type: 'string', describe: 'with --chat: the system message' })
        .example('alki run dist/qwen-gptq-int4 --chat --system "You are terse."', '')
        .example('alki run dist/s260k-fp32 --prompt "Once upon a time" --max-new-tokens 32', ''),
    async (args) => {
      const flags = args as OutputFlags;
      if (!args.chat && args.system !== undefined)
        throw new AlkiError('BAD_OPTION', '--system only applies with --chat', 'add --chat for an interactive conversation');
      if (args.chat && (args.prompt !== undefined || args['prompt-file'] !== undefined || flags.json)) {
        throw new AlkiError(
          'BAD_OPTION',
          `--chat reads the conversation from the terminal; it does not take ${flags.json ? '--json' : args.prompt !== undefined ? '--prompt' : '--prompt-file'}`,
          'drop it, or leave out --chat to continue a prompt',
        );
      }
      const prompt = args.chat ? '' : await readPrompt(args.prompt as string | undefined, args['prompt-file'] as string | undefined);
      const bundle = readBundle(args.bundle as string);
      checkBundleSize(bundle);
      const warnings = await machineWarnings(bundle.manifest);
      warnings.forEach(warn);
      const gen = await TextGenerator.load(bundle.dir, {
        modelPath: bundle.modelPath,
        threads: (args.threads as number | undefined) ?? targetThreads(bundle.manifest),
        maxPositions: bundle.manifest.model.maxPositions,
      });
      try {
        if (args.chat) {
          await chatLoop(gen, {
            system: args.system as string | undefined,
            sampling: {
              maxNewTokens: args['max-new-tokens'] as number,
              temperature: args.temperature as number,
              topK: args['top-k'] as number,
              topP: args['top-p'] as number,
              seed: args.seed as number,
              extraStopTokenIds: (args['stop-token-ids'] as number[] | undefined) ?? [],
            },
            quiet: flags.quiet,
          });
          return;
        }
        // The prompt is echoed with the first new text, once generate has accepted every option and the prompt itself:
        // a refused run leaves stdout empty (`alki run … > out.txt`).
        let echoed = flags.json;
        const echo = (text: string) => {
          if (!echoed) process.stdout.write(prompt);
          echoed = true;
          process.stdout.write(text);
        };
        const result = await gen.generate(prompt, {
          maxNewTokens: args['max-new-tokens'] as number,
          temperature: args.temperature as number,
          topK: args['top-k'] as number,
          topP: args['top-p'] as number,
          seed: args.seed as number,
          extraStopTokenIds: (args['stop-token-ids'] as number[] | undefined) ?? [],
          onText: flags.json ? undefined : echo,
          signal,
        });
        const t = result.timings;
        const decodeTps = t.newTokens > 1 ? ((t.newTokens - 1) / t.decodeMs) * 1000 : 0;
        if (flags.json) {
          process.stdout.write(
            `${JSON.stringify({ prompt, promptIds: result.promptIds, text: result.text, ids: result.ids, stopReason: result.stopReason, timings: { ...t, decodeTokensPerSecond: decodeTps }, warnings }, null, 2)}\n`,
          );
          return;
        }
        echo('\n');
        note(
          flags,
          `[${t.promptTokens} prompt tokens in ${t.prefillMs.toFixed(1)} ms, ${t.newTokens} new tokens, ${decodeTps.toFixed(1)} tok/s decode, stopped: ${result.stopReason}]`,
        );
      } finally {
        await gen.release();
      }
    },
  );
}
