import { transpose } from '@alki/onnx';
import { awqBlockGram, awqClip, awqSearchScale } from '../awq.js';
import { applyScale, canFoldScale } from '../graph/scale-folding.js';
import { touchesExcluded } from './excluded.js';
import { roundLinears } from './round-linears.js';
import type { LayerContext, LayerWork } from './types.js';

/**
 * AWQ: per group, the scale search (folded into the producer), then the clipping search per linear. With `scalesOnly`
 * (GPTQ with AWQ's scales) the clipping is GPTQ's rounding's job, and the layer is not advanced here: GPTQ measures
 * its Hessians on the scaled layer and advances it once quantized.
 */
export async function awqLayer(c: LayerContext, l: LayerWork, scalesOnly = false): Promise<void> {
  const abt = c.gemm.abt;
  // One pass per layer, as AutoAWQ: the next layer is calibrated on this layer's float outputs before its scales
  // (exact in float) and clipping (not reflected in the next layer's inputs, as in AutoAWQ).
  const stats = await c.runner.collect(l.index, [...new Set(l.groups.map(l.inputOf))], {
    absMean: true,
    rows: c.o.awqRows ?? 4096,
    advance: !l.last && !scalesOnly,
  });
  for (const g of l.groups) {
    const size = g.linears.reduce((sum, name) => sum + c.weight(name).data.length, 0);
    if (size > (c.o.awqMaxGroup ?? 32 * 1024 * 1024)) continue;
    const st = stats.get(l.inputOf(g))!;
    const K = st.K;
    const n = st.rows!.length / K;
    // A group's linears share one width (the head, the only one with its own, is alone in its group).
    const blockSize = c.blockOf(K, c.bitsOf(g.linears[0]));
    const xMean = new Float64Array(K);
    for (let k = 0; k < K; k++) xMean[k] = st.absSum![k] / st.tokens;
    if (!touchesExcluded(c, g) && canFoldScale(c.model, g)) {
      const lin = g.linears.map((name) => {
        const t = c.weight(name);
        return { w: transpose(t.data as Float32Array, t.dims[0], t.dims[1]), N: t.dims[1] };
      });
      // Each candidate costs outputs × K (fake quantization) + rows × outputs × K (the product): large groups
      // are measured on a sample of their outputs, and on fewer rows.
      const searchOutputs = c.o.awqSearchOutputs ?? 1024;
      const outputs = Math.min(
        searchOutputs,
        lin.reduce((sum, x) => sum + x.N, 0),
      );
      const searchRows = Math.min(n, Math.max(256, Math.floor((c.o.awqSearchBudget ?? 2e9) / (outputs * K))));
      // The candidate graph cuts K into whole blocks; otherwise the JS path quantizes the candidates.
      const candidates = K % blockSize === 0 ? c.gemm.candidateLoss : undefined;
      const options = { ...c.opts, bits: c.bitsOf(g.linears[0]), blockSize, searchOutputs };
      const { scale } = await awqSearchScale(evenRows(st.rows!, n, K, searchRows), Math.min(n, searchRows), K, xMean, lin, options, abt, candidates);
      applyScale(c.model, g, scale);
      for (const name of g.linears) c.o.appliedScales?.set(name, scale);
      // Later searches of this layer see the input as the scaled graph produces it.
      for (let t = 0; t < n; t++) for (let k = 0; k < K; k++) st.rows![t * K + k] /= scale[k];
    }
    if (scalesOnly) continue;
    // Clipping measures each block's output error through its Gram matrix, so it can use every kept row.
    const products = { blockGram: c.gemm.blockGram, quadratic: c.gemm.quadratic };
    let gram: Float32Array | undefined;
    for (const name of g.linears) {
      if (c.o.excluded?.has(name)) continue;
      const t = c.weight(name);
      const [Kw, N] = t.dims;
      // AWQ does not clip attention queries and keys: attention scores are too sensitive to it.
      const first = g.unclipped?.[name] ?? ((c.o.awqUnclippedNames ?? /q_proj|k_proj/).test(name) ? N : 0);
      if (first >= N) continue;
      gram ??= await awqBlockGram(st.rows!, n, K, blockSize, products);
      c.weightScratch.reserve(N * Kw);
      const rows = transpose(t.data as Float32Array, Kw, N, c.weightScratch.take(N * Kw));
      await awqClip(rows, N, Kw, st.rows!, n, { ...c.opts, bits: c.bitsOf(name), blockSize, first, inPlace: true, scratch: c.scratch, gram }, products);
      transpose(rows, N, Kw, t.data as Float32Array);
      c.weightScratch.release(0);
    }
  }
}

/** AWQ's final rounding: RTN of the scaled, clipped weights (as AutoAWQ); clipping is part of the error. */
export function roundLayer(c: LayerContext, l: LayerWork): void {
  roundLinears(
    c,
    l.groups.flatMap((g) => g.linears),
  );
}

/** `count` rows of x [n, K] spread evenly (all of them when count ≥ n). */
function evenRows(x: Float32Array, n: number, K: number, count: number): Float32Array {
  if (count >= n) return x;
  const out = new Float32Array(count * K);
  for (let r = 0; r < count; r++) {
    const src = Math.floor((r * n) / count);
    out.set(x.subarray(src * K, (src + 1) * K), r * K);
  }
  return out;
}
