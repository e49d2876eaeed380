import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Gc = (o?: { type: 'minor' | 'major' }) => void;
let gc: Gc | undefined;

/**
 * Lets {@link GarbageMeter}s collect: turns on V8's --expose-gc for the whole process and reads gc() from a fresh
 * context. A process-wide switch, so it is the host's call, not a library's: the CLI and Alki's benchmarks make it
 * at startup (a process started with `node --expose-gc` needs nothing). Why it matters: onnxruntime-node's outputs
 * are native memory that V8 does not count, freed only when a collection finalizes their wrappers (see
 * ort-memory.ts in @alki/quantizers); without collections GPTQ's lazy updates ran 1.5× slower (fresh memory,
 * page faults; Intel Xeon Sapphire Rapids, 2 cores, AVX-512 VNNI). Returns whether collections are available.
 */
export function enableGarbageCollection(): boolean {
  if (gc) return true;
  try {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as Gc;
  } catch {
    gc = undefined;
  }
  return !!gc;
}

/** A collection now, when the host enabled them (or started Node with --expose-gc); nothing otherwise. */
function collectGarbage(type: 'minor' | 'major' = 'major'): void {
  const f = gc ?? (globalThis as { gc?: Gc }).gc;
  f?.({ type });
}

/** Collects once `threshold` bytes of large short-lived arrays have been dropped since the last collection. */
export class GarbageMeter {
  private pending = 0;

  constructor(
    private readonly threshold: number,
    private readonly type: 'minor' | 'major' = 'minor',
  ) {}

  /** Records `bytes` just dropped (or about to be). */
  note(bytes: number): void {
    this.pending += bytes;
    if (this.pending < this.threshold) return;
    this.pending = 0;
    collectGarbage(this.type);
  }
}
