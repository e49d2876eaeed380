import { relativeErrorOf } from '../blockwise.js';
import { rtn } from '../rtn.js';
import type { LayerContext } from './types.js';

/**
 * Rounds the named linears to nearest at their own width (codes into the results), with the error against the
 * weight as it is now (AWQ's scaling is exact, its clipping part of the error). Excluded weights stay float.
 */
export function roundLinears(c: LayerContext, names: string[]): void {
  for (const name of names) {
    if (c.o.excluded?.has(name)) continue;
    const t = c.weight(name);
    const w = t.data as Float32Array;
    const [K, N] = t.dims;
    const bits = c.bitsOf(name);
    const qw = rtn(w, N, K, { ...c.opts, bits, blockSize: c.blockOf(K, bits) }, 'KN');
    c.results.set(name, qw);
    c.o.errors?.set(name, relativeErrorOf(qw, w, 'KN'));
  }
}
