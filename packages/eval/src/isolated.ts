import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runWorker, workerScript } from '@alki/core/node';
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
  return workerScript(typeof __dirname === 'string' ? __dirname : dirname(fileURLToPath(import.meta.url)), 'speed-worker.js', '@alki/eval');
}

/**
 * Measures a model in a fresh child process, so that bundles measured one
 * after another do not disturb each other (allocator state, caches, peak RSS).
 */
export function measureIsolated(modelPath: string, options: SpeedOptions, signal?: AbortSignal): Promise<IsolatedResult> {
  return runWorker<IsolatedResult>(workerPath(), [modelPath, JSON.stringify(options)], `measuring ${modelPath}`, signal);
}
