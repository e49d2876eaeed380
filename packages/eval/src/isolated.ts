import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AlkiError } from '@alki/core';
import { runWorker } from '@alki/core/node';
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
  return runWorker<IsolatedResult>(workerPath(), [modelPath, JSON.stringify(options)], `measuring ${modelPath}`, signal);
}
