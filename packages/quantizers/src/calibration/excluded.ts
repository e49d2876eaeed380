import type { ScaleGroup } from '@alki/onnx';
import type { LayerContext } from './types.js';

/** Whether scaling g's input would change an excluded weight: one of its linears, or the linear it folds into. */
export function touchesExcluded(c: LayerContext, g: ScaleGroup): boolean {
  const ex = c.o.excluded;
  return !!ex && (g.linears.some((w) => ex.has(w)) || (!!g.prev && ex.has(g.prev)));
}
