import { isAlkiError } from '@alki/core';

/** Exit codes: 1 for a failed operation, 2 for bad usage, 130 for Ctrl-C, 143 for SIGTERM. */
export const EXIT = { failure: 1, usage: 2, interrupted: 130, terminated: 143 } as const;

/** What to do next for errors raised without their own hint, by code. */
const HINTS: Record<string, string> = {
  BAD_CONFIG: "the model's config.json does not match what it describes: download the model again or fix the value",
  UNSUPPORTED_CONFIG: 'see docs/models.md for the supported architectures and settings',
  CORRUPT_ONNX: 'the ONNX file is damaged: copy or build the bundle again',
  CORRUPT_SAFETENSORS: 'the checkpoint is damaged: download the model again',
  MISSING_WEIGHT: 'the checkpoint does not match its config.json: download the model again',
  BAD_INPUT: 'check the input named above',
  BAD_OPTION: 'run `alki <command> --help` for the options',
  RUNTIME: 'run the command again with --verbose and report the output if it persists',
  NETWORK: 'check the network and run the command again',
};

/**
 * Prints an error as one paragraph (what went wrong, then what to do) and
 * returns the exit code. Stack traces only with --verbose.
 */
export function reportError(e: unknown, verbose: boolean, json: boolean): number {
  const alki = isAlkiError(e);
  const code = alki ? e.code : 'INTERNAL';
  const message = e instanceof Error ? e.message : String(e);
  const hint = alki
    ? (e.hint ?? HINTS[code] ?? 'run the command again with --verbose for details')
    : 'this is a bug in Alki: please report it with the command you ran and the output of --verbose';
  const exit = code === 'ABORTED' ? EXIT.interrupted : code === 'BAD_OPTION' ? EXIT.usage : EXIT.failure;
  if (json) {
    process.stdout.write(`${JSON.stringify({ error: { code, message, hint } }, null, 2)}\n`);
  } else {
    process.stderr.write(`error: ${message}${hint ? `\n  hint: ${hint}` : ''}\n`);
  }
  if (verbose && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
  return exit;
}
