import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { AlkiError } from '@alki/core';
import type { BlockwiseOptions } from './blockwise.js';
import { relativeErrorFromSums, rtnPacked, type PackedRtn } from './rtn-packed.js';

/** Weights smaller than this (values) are rounded in the calling thread: a message round trip would cost more. */
const PARALLEL_MIN_VALUES = 1 << 20;

/**
 * {@link rtnPacked} over the cores: a weight's output rows are split between the calling thread and worker threads,
 * each rounding its rows exactly as rtnPacked does (codes and scales are the same bytes; only the relative error's
 * sum is taken in another order). RTN of a 1.1B model is this loop (~28 of its 41 s on one core of an Intel Xeon
 * with AVX-512), which the calling thread ran alone. The workers run dist/rtn-worker.js (tests of the sources use
 * the built one beside them); without it, with one core, or for small weights, everything runs in the calling
 * thread. Workers start at the first weight large enough to split; a worker that exits is not used again. Call
 * {@link close} when done.
 */
export class RtnPool {
  private readonly workers: Worker[] = [];
  private readonly script?: string;
  private readonly wanted: number;
  private started = false;

  /** `threads` in all, the calling thread included (default: the cores Node reports; at most 16). */
  constructor(threads = availableParallelism()) {
    this.script = workerFile();
    this.wanted = this.script ? Math.max(0, Math.min(threads, 16) - 1) : 0;
  }

  /** Threads that round a large weight: the calling thread and the workers (started or to start). */
  get threads(): number {
    return (this.started ? this.workers.length : this.wanted) + 1;
  }

  /** rtnPacked(w, N, K, o), with the rows [N, K] split over the threads. */
  async pack(w: Float32Array, N: number, K: number, o: BlockwiseOptions): Promise<PackedRtn> {
    if (N * K < PARALLEL_MIN_VALUES || this.threads < 2) return rtnPacked(w, N, K, o);
    this.start();
    const parts = Math.min(this.workers.length + 1, N);
    if (parts < 2) return rtnPacked(w, N, K, o);
    const bounds = Array.from({ length: parts + 1 }, (_, i) => Math.round((i * N) / parts));
    // The workers get copies of their rows (moved, not cloned, into the message); the first part stays here.
    const pending = Promise.all(
      this.workers.slice(0, parts - 1).map((worker, j) => {
        const rows = w.slice(bounds[j + 1] * K, bounds[j + 2] * K);
        return this.run(worker, { rows, N: bounds[j + 2] - bounds[j + 1], K, o }, [rows.buffer]);
      }),
    );
    // Should this thread's part throw, the workers' outcome is not waited for (close() ends them), nor left unhandled.
    pending.catch(() => undefined);
    const mine = rtnPacked(w.subarray(0, bounds[1] * K), bounds[1], K, o);
    return merge([mine, ...(await pending)], N, K);
  }

  /** Ends the worker threads. */
  async close(): Promise<void> {
    await Promise.all(this.workers.splice(0).map((w) => w.terminate()));
  }

  private start(): void {
    if (this.started) return;
    this.started = true;
    for (let t = 0; t < this.wanted; t++) {
      const w = new Worker(this.script!);
      w.unref(); // an idle pool never keeps the process alive
      // A failure is reported to the job in flight (run); a worker that has exited leaves the pool either way, so
      // a later weight never waits on it.
      w.on('error', () => undefined);
      w.once('exit', () => {
        const at = this.workers.indexOf(w);
        if (at >= 0) this.workers.splice(at, 1);
      });
      this.workers.push(w);
    }
  }

  private run(worker: Worker, message: object, transfer: ArrayBuffer[]): Promise<PackedRtn> {
    return new Promise((resolve, reject) => {
      const fail = (e: unknown) => {
        off();
        reject(new AlkiError('RUNTIME', `a rounding thread failed: ${String((e as Error)?.message ?? e)}`));
      };
      const done = (m: { ok: boolean; p?: PackedRtn; message?: string }) => {
        off();
        if (m.ok) resolve(m.p!);
        else reject(new AlkiError('RUNTIME', `a rounding thread failed: ${m.message}`));
      };
      const exited = (code: number) => fail(`it exited with code ${code}`);
      const off = () => {
        worker.off('message', done);
        worker.off('error', fail);
        worker.off('exit', exited);
        worker.unref();
      };
      worker.on('message', done);
      worker.on('error', fail);
      worker.on('exit', exited);
      worker.ref(); // a job in flight keeps the process alive until its answer
      worker.postMessage(message, transfer);
    });
  }
}

/** Parts of consecutive rows, concatenated: codes and scales are per output row, so rows keep their bytes. */
function merge(parts: PackedRtn[], N: number, K: number): PackedRtn {
  const [first] = parts;
  const cat = <T extends Uint8Array | Float32Array>(arrays: T[], make: (n: number) => T): T => {
    const out = make(arrays.reduce((s, a) => s + a.length, 0));
    let at = 0;
    for (const a of arrays) {
      out.set(a as never, at);
      at += a.length;
    }
    return out;
  };
  const squaredError = parts.reduce((s, p) => s + p.squaredError, 0);
  const squaredNorm = parts.reduce((s, p) => s + p.squaredNorm, 0);
  return {
    bits: first.bits,
    blockSize: first.blockSize,
    N,
    K,
    nBlocks: first.nBlocks,
    B: cat(
      parts.map((p) => p.B),
      (n) => new Uint8Array(n),
    ),
    scales: cat(
      parts.map((p) => p.scales),
      (n) => new Float32Array(n),
    ),
    zeroPoints: first.zeroPoints
      ? cat(
          parts.map((p) => p.zeroPoints!),
          (n) => new Uint8Array(n),
        )
      : undefined,
    relativeError: relativeErrorFromSums(squaredError, squaredNorm),
    squaredError,
    squaredNorm,
  };
}

/** dist/rtn-worker.js beside this module when built, or the built one beside src/ when tests run the sources. */
function workerFile(): string | undefined {
  const here = typeof __dirname === 'string' ? __dirname : dirname(fileURLToPath(import.meta.url));
  return [join(here, 'rtn-worker.js'), join(here, '..', 'dist', 'rtn-worker.js')].find((p) => existsSync(p));
}
