export { AlkiError, isAlkiError, fsError, throwIfAborted, showValue } from './errors.js';
export type { AlkiErrorCode } from './errors.js';
export type { ProgressEvent, ProgressCallback } from './progress.js';
export { SeededRandom } from './random.js';
export { onInterrupt, runInterruptCleanups, isProcessRunning } from './cleanup.js';
