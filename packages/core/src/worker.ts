import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AlkiError, type AlkiErrorCode } from './errors.js';
import { onInterrupt } from './cleanup.js';
import type { ProgressCallback, ProgressEvent } from './progress.js';

/**
 * Runs a Node script in a child process and returns the JSON object it printed last (see {@link workerMain}).
 * Used where a step must not share the caller's memory or fate: measuring peak memory, loading a freshly written
 * model in onnxruntime (whose freed memory is not returned to the system, and whose crash would end a build).
 * An interrupt kills the child; the child exits when the parent goes away (its stdin is a lifeline).
 */
export function runWorker<T>(
  script: string,
  args: string[],
  what: string,
  signal?: AbortSignal,
  onProgress?: ProgressCallback,
  /** Variables added to the child's environment (read at its start, as the C library's allocator settings are). */ env?: Record<string, string>,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['pipe', 'pipe', 'pipe'], signal, env: env && { ...process.env, ...env } });
    const unregister = onInterrupt(() => child.kill('SIGKILL'));
    let out = '';
    let err = '';
    let seen = 0;
    child.stdout.on('data', (d) => {
      out += d;
      // Progress lines (workerProgress) are passed on as they arrive.
      for (let nl = out.indexOf('\n', seen); nl >= 0; nl = out.indexOf('\n', seen)) {
        const line = out.slice(seen, nl);
        seen = nl + 1;
        if (!onProgress || !line.startsWith('{"progress":')) continue;
        try {
          onProgress((JSON.parse(line) as { progress: ProgressEvent }).progress);
        } catch {
          // not a progress line after all
        }
      }
    });
    child.stderr.on('data', (d) => (err += d));
    child.on('error', (e) => {
      unregister();
      const aborted = e.name === 'AbortError' || (e as NodeJS.ErrnoException).code === 'ABORT_ERR';
      reject(
        aborted
          ? new AlkiError('ABORTED', `${what} was interrupted`, 'run the command again when ready')
          : new AlkiError('RUNTIME', `could not start a process for ${what}: ${e.message}`),
      );
    });
    child.on('close', (code, sig) => {
      unregister();
      const line = out.trim().split('\n').pop() ?? '';
      let parsed: { ok: boolean; error?: { message: string; code?: string; hint?: string } } & T;
      try {
        parsed = JSON.parse(line);
      } catch {
        const how = sig ? `was killed by ${sig}` : `exited with code ${code}`;
        reject(new AlkiError('RUNTIME', `the process for ${what} ${how} without a result`, err.trim().split('\n').slice(-3).join(' ') || undefined));
        return;
      }
      if (parsed.ok) resolve(parsed);
      else {
        const c = parsed.error?.code;
        reject(
          new AlkiError(
            (typeof c === 'string' && /^[A-Z_]+$/.test(c) ? c : 'RUNTIME') as AlkiErrorCode,
            parsed.error?.message ?? `${what} failed`,
            parsed.error?.hint,
          ),
        );
      }
    });
  });
}

/**
 * A package's child-process entry, `dist/<file>`, found from `here`, the folder of the calling module: dist/ when
 * built, src/ when tests run the sources (then the package's dist/ beside it).
 */
export function workerScript(here: string, file: string, pkg: string): string {
  for (const p of [join(here, file), join(here, '..', 'dist', file)]) if (existsSync(p)) return p;
  throw new AlkiError('RUNTIME', `the worker dist/${file} of ${pkg} is missing`, `build ${pkg} first (pnpm build)`);
}

/** In a worker (see {@link workerMain}): reports progress to the parent's `onProgress`. */
export function workerProgress(e: ProgressEvent): void {
  process.stdout.write(`${JSON.stringify({ progress: e })}\n`);
}

/** The child side of {@link runWorker}: runs `main`, prints `{ ok: true, ...result }` or the error as one JSON line. */
export async function workerMain(main: () => Promise<object>): Promise<void> {
  process.stdin.on('end', () => process.exit(1));
  process.stdin.on('error', () => process.exit(1));
  process.stdin.resume();
  try {
    const result = await main();
    process.stdout.write(`${JSON.stringify({ ...result, ok: true })}\n`);
  } catch (e) {
    const { message, code, hint } = e as { message?: string; code?: string; hint?: string };
    process.stdout.write(`${JSON.stringify({ ok: false, error: { message: String(message ?? e), code, hint } })}\n`);
    process.exitCode = 1;
  }
  process.stdin.destroy();
}

/**
 * This process's peak resident memory. Linux carries getrusage's maxrss across fork and exec, so a child of a
 * 5 GB parent (a build that still holds the float weights) reported 5 GB for a 1.5 GB model; VmHWM belongs to the
 * address space that exec created. Elsewhere maxrss is all there is.
 */
export function peakRssBytes(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}
