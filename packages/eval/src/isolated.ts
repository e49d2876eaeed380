import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AlkiError, onInterrupt } from '@alki/core';
import type { SpeedOptions, SpeedResult } from './speed.js';

/** Speed plus the measuring process's own peak resident memory. */
export interface IsolatedResult {
  speed: SpeedResult;
  /** Peak resident memory of the child process (VmHWM on Linux): Node + onnxruntime + the loaded model + generation. */
  peakRssBytes: number;
  /** RSS of the child before loading the model (Node's own share of the peak). */
  startRssBytes: number;
}

function workerPath(): string {
  const here = typeof __dirname === 'string' ? __dirname : dirname(fileURLToPath(import.meta.url));
  // Built: dist/speed-worker.js beside this module; from sources (tests): the package's dist.
  for (const p of [join(here, 'speed-worker.js'), join(here, '..', 'dist', 'speed-worker.js')]) if (existsSync(p)) return p;
  throw new AlkiError('RUNTIME', 'the speed worker (dist/speed-worker.js) is missing', 'build @alki/eval first (pnpm build)');
}

/**
 * Measures a model in a fresh child process, so that bundles measured one
 * after another do not disturb each other (allocator state, caches, peak RSS).
 */
export function measureIsolated(modelPath: string, options: SpeedOptions, signal?: AbortSignal): Promise<IsolatedResult> {
  return new Promise((resolve, reject) => {
    // stdin stays open as a lifeline (the worker exits when it closes); an interrupt kills the worker at once.
    const child = spawn(process.execPath, [workerPath(), modelPath, JSON.stringify(options)], { stdio: ['pipe', 'pipe', 'pipe'], signal });
    const unregister = onInterrupt(() => child.kill('SIGKILL'));
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', (e) => {
      unregister();
      reject(isAbort(e) ? new AlkiError('ABORTED', 'the measurement was interrupted', 'run the command again when ready') : new AlkiError('RUNTIME', `could not start the measuring process: ${e.message}`));
    });
    child.on('close', (code) => {
      unregister();
      const line = out.trim().split('\n').pop() ?? '';
      let parsed: { ok: boolean; error?: { message: string; hint?: string } } & Partial<IsolatedResult>;
      try {
        parsed = JSON.parse(line);
      } catch {
        reject(new AlkiError('RUNTIME', `the measuring process exited with code ${code} without a result`, err.trim().split('\n').slice(-3).join(' ') || undefined));
        return;
      }
      if (!parsed.ok) reject(new AlkiError('RUNTIME', `measuring ${modelPath} failed: ${parsed.error?.message}`, parsed.error?.hint));
      else resolve(parsed as IsolatedResult);
    });
  });
}

function isAbort(e: Error): boolean {
  return e.name === 'AbortError' || (e as NodeJS.ErrnoException).code === 'ABORT_ERR';
}
