import { isAlkiError } from '@alki/core';

/** Exit codes: 1 for a failed operation, 2 for bad usage, 130 for Ctrl-C. */
export const EXIT = { failure: 1, usage: 2, interrupted: 130 } as const;

/**
 * Prints an error as one paragraph (what went wrong, then what to do) and
 * returns the exit code. Stack traces only with --verbose.
 */
export function reportError(e: unknown, verbose: boolean, json: boolean): number {
  const alki = isAlkiError(e);
  const code = alki ? e.code : 'INTERNAL';
  const message = e instanceof Error ? e.message : String(e);
  const hint = alki ? e.hint : 'this is a bug in Alki: please report it with the command you ran and the output of --verbose';
  const exit = code === 'ABORTED' ? EXIT.interrupted : code === 'BAD_OPTION' ? EXIT.usage : EXIT.failure;
  if (json) {
    process.stdout.write(`${JSON.stringify({ error: { code, message, hint } }, null, 2)}\n`);
  } else {
    process.stderr.write(`error: ${message}${hint ? `\n  hint: ${hint}` : ''}\n`);
  }
  if (verbose && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
  return exit;
}
