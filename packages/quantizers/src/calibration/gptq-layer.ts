import { measureBlockwise } from '../blockwise.js';
import { gptq, prepareGptqHessian, type GptqHessian } from '../gptq.js';
import { roundLinears } from './round-linears.js';
import type { LayerContext, LayerWork } from './types.js';

/** GPTQ: H = 2XᵀX/n per input, one factorisation per input, then every linear reading it; weights become their dequantized values. */
export async function gptqLayer(c: LayerContext, l: LayerWork): Promise<void> {
  const abt = c.gemm.abt;
  const excluded = c.o.excluded ?? new Set<string>();
  // The head's 8-bit weights are rounded to nearest, as AWQ does (see CalibratedOptions.gptqHead).
  const rounded = (name: string) => l.last && c.bitsOf(name) >= 8 && !c.o.gptqHead;
  roundLinears(c, l.groups.flatMap((g) => g.linears).filter(rounded));
  const inputs = [...new Set(l.groups.filter((g) => g.linears.some((w) => !excluded.has(w) && !rounded(w))).map(l.inputOf))];
  if (inputs.length === 0) return; // every linear of this span is excluded or rounded: nothing to measure
  const options = { ...c.opts, actOrder: c.o.actOrder, percDamp: c.o.percDamp, mseClip: c.o.mseClip, scratch: c.scratch };
  const stats = await c.runner.collect(l.index, inputs, { gram: true });
  const prepared = new Map<string, GptqHessian>();
  for (const input of inputs) {
    const st = stats.get(input)!;
    // H = 2XᵀX/n, formed in the runner's buffer, which then holds U (the sums are not needed afterwards).
    const H = st.gram!;
    for (let j = 0; j < H.length; j++) H[j] *= 2 / st.tokens;
    prepared.set(input, await prepareGptqHessian(H, st.K, { ...options, overwrite: true }, abt));
  }
  for (const g of l.groups) {
    const hessian = prepared.get(l.inputOf(g));
    if (!hessian) continue;
    for (const name of g.linears) {
      if (excluded.has(name) || rounded(name)) continue;
      const t = c.weight(name);
      const [K, N] = t.dims;
      const qw = await gptq(t.data as Float32Array, hessian, N, K, { ...options, bits: c.bitsOf(name), layout: 'KN' }, abt, c.gemm.update);
      c.results.set(name, qw);
      // The error, and (in the same pass) the weights replaced by their dequantized values: later layers calibrate
      // on these; after the last span nothing reads them.
      const w = t.data as Float32Array;
      c.o.errors?.set(name, measureBlockwise(qw, w, 'KN', l.last ? undefined : w));
    }
  }
}
