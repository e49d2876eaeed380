import type { Argv } from 'yargs';
import { AlkiError } from '@alki/core';

/** Flags shared by bench, compare and build --benchmark. */
export function evalFlags<T>(a: Argv<T>) {
  return a
    .option('text', { type: 'string', describe: 'evaluation text for perplexity (Alki ships none; without it, text sampled from the baseline is used)' })
    .option('context', { type: 'number', describe: 'perplexity window length (default min(512, max_position_embeddings))' })
    .option('max-windows', { type: 'number', describe: 'evaluate at most this many windows' })
    .option('runs', { type: 'number', describe: 'measured speed runs (default 5)' })
    .option('prompt-tokens', { type: 'number', describe: 'prefill prompt length (default 128)' })
    .option('new-tokens', { type: 'number', describe: 'decoded tokens (default 64)' })
    .option('threads', { type: 'number', describe: 'onnxruntime threads (default: all cores)' });
}

/**
 * A percentage, with or without the sign: "5%" and "5" are both 5% (→ 0.05),
 * "0.5" is half a percent. One rule for every value, so "1" is 1%, not 100%.
 */
export function parsePercent(v: unknown, flag: string): number {
  const s = String(v).trim();
  const body = s.endsWith('%') ? s.slice(0, -1).trim() : s;
  const n = body === '' ? NaN : Number(body);
  if (!Number.isFinite(n) || n < 0)
    throw new AlkiError(
      'BAD_OPTION',
      `${flag} must be a percentage such as 5 or 5%, got "${s}"`,
      'a bare number is a percentage too: 5 means 5%, 0.5 means half a percent',
    );
  return n / 100;
}

export function speedFlags(args: Record<string, unknown>) {
  const pick = (k: string) => (args[k] === undefined ? {} : { [k]: args[k] as number });
  return {
    ...pick('runs'),
    ...pick('threads'),
    ...(args['prompt-tokens'] !== undefined ? { promptTokens: args['prompt-tokens'] as number } : {}),
    ...(args['new-tokens'] !== undefined ? { newTokens: args['new-tokens'] as number } : {}),
  };
}
