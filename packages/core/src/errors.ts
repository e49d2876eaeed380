/**
 * Machine-readable error codes used across Alki. A code is stable across
 * versions; the message and hint are for people.
 */
export type AlkiErrorCode =
  | 'NOT_FOUND'
  | 'NOT_A_MODEL'
  | 'BAD_CONFIG'
  | 'UNSUPPORTED_ARCH'
  | 'UNSUPPORTED_CONFIG'
  | 'CORRUPT_SAFETENSORS'
  | 'CORRUPT_ONNX'
  | 'MISSING_WEIGHT'
  | 'BAD_OPTION'
  | 'BAD_BUNDLE'
  | 'VERIFY_FAILED'
  | 'TOKENIZER'
  | 'RUNTIME'
  | 'NUMERIC'
  | 'IO'
  | 'NO_SPACE'
  | 'ABORTED'
  | 'NETWORK'
  | 'BAD_INPUT'
  | 'DEGRADED'
  | 'TOO_LARGE';

/**
 * The one error type of Alki: a code, a plain sentence of what went wrong, and
 * what to do next. The CLI prints `message` and `hint` and exits non-zero.
 *
 * @example
 * throw new AlkiError('UNSUPPORTED_ARCH', 'model_type "mamba" is not supported', 'supported: llama');
 */
export class AlkiError extends Error {
  override readonly name = 'AlkiError';
  constructor(
    readonly code: AlkiErrorCode,
    message: string,
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** True for an AlkiError, also across duplicated module copies (CJS + ESM). */
export function isAlkiError(e: unknown): e is AlkiError {
  return e instanceof AlkiError || (e instanceof Error && e.name === 'AlkiError' && 'code' in e);
}

/**
 * Turns a Node file-system error into an AlkiError with a next step, so that
 * "no space left on device" never surfaces as a raw ENOSPC stack trace.
 */
export function fsError(e: unknown, what: string): AlkiError {
  if (isAlkiError(e)) return e;
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code === 'ENOSPC') {
    return new AlkiError(
      'NO_SPACE',
      `no space left on the device while ${what}`,
      'free some disk space or choose another --out folder, then run the command again',
      { cause: e },
    );
  }
  if (code === 'ENOENT') {
    return new AlkiError('NOT_FOUND', `${what}: file or folder not found`, 'check the path', { cause: e });
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new AlkiError('IO', `permission denied while ${what}`, 'check the folder permissions or choose another location', { cause: e });
  }
  return new AlkiError('IO', `${what} failed: ${(e as Error)?.message ?? String(e)}`, undefined, { cause: e });
}

/** Throws ABORTED when the signal has fired; long loops call this between steps. */
export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) {
    throw new AlkiError('ABORTED', 'the operation was interrupted', 'nothing was written; run the command again when ready');
  }
}

/** A value read from a file or the network, for an error message: JSON, shortened, never throwing. */
export function showValue(v: unknown, max = 60): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = Array.isArray(v) ? '[…]' : typeof v === 'object' && v !== null ? '{…}' : String(v);
  }
  return s.length > max ? `${s.slice(0, max)}…` : s;
}
