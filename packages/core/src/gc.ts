import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Gc = (o?: { type: 'minor' | 'major' }) => void;
let gc: Gc | null | undefined;

/**
 * Runs a garbage collection now. onnxruntime-node's outputs are native memory that V8 does not count, freed only
 * when a collection finalizes their wrappers (see ort-memory.ts in @alki/quantizers). gc() exists only with
 * --expose-gc; the flag is turned on at run time and gc read from a fresh context. (Streaming builds do not need
 * it: with and without collections after each layer, an RTN build of the TinyLlama shape peaked at 0.58 GB.)
 */
function collectGarbage(type: 'minor' | 'major' = 'major'): void {
  if (gc === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      gc = runInNewContext('gc') as Gc;
    } catch {
      gc = null;
    }
  }
  gc?.({ type });
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
