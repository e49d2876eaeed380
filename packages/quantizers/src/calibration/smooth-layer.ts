import { smoothingFactors } from '../smoothquant.js';
import { applyScale, canFoldScale } from '../graph/scale-folding.js';
import { touchesExcluded } from './excluded.js';
import type { LayerContext, LayerWork } from './types.js';

/** SmoothQuant: smoothing is exact in float, so statistics of the float model serve every group. */
export async function smoothLayer(c: LayerContext, l: LayerWork): Promise<void> {
  const stats = await c.runner.collect(l.index, [...new Set(l.groups.map(l.inputOf))], { absMax: true, advance: !l.last });
  for (const g of l.groups) {
    if (!g.norm || touchesExcluded(c, g) || !canFoldScale(c.model, g)) continue;
    const st = stats.get(l.inputOf(g))!;
    const weights = g.linears.map((name) => ({ data: c.weight(name).data as Float32Array, N: c.weight(name).dims[1] }));
    applyScale(c.model, g, smoothingFactors(st.absMax!, weights, c.o.alpha ?? 0.5));
  }
}
