import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Gc = (o?: { type: 'minor' | 'major' }) => void;
let gc: Gc | null | undefined;

/**
 * Runs a garbage collection now. Large typed arrays (a layer's weights, onnxruntime outputs) are freed only when
 * V8 collects their wrappers, and V8 does not count their native bytes as pressure soon enough: a streaming build
 * that drops a few hundred MB per layer would otherwise hold several layers' worth of garbage at its peak. gc()
 * exists only with --expose-gc; the flag is turned on at run time and gc read from a fresh context.
 */
export function collectGarbage(type: 'minor' | 'major' = 'major'): void {
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
