import { totalmem } from 'node:os';
import { measureBlockwise } from '../blockwise.js';
import { gptq, prepareGptqHessian, type GptqOptions } from '../gptq.js';
import type { InputStats } from './layer-runner.js';
import { shiftToFloatTargets } from './float-targets.js';
import { roundLinears } from './round-linears.js';
import type { LayerContext, LayerWork } from './types.js';

/**
 * GPTQ: H = 2XᵀX/n per input, one factorisation per input, then every linear reading it; weights become their
 * dequantized values. With `trueSequential` each input's statistics are collected after the linears before it in the
 * layer are quantized (one pass per input, in the order they run); with `floatTargets` the layer also runs on the
 * float model's hidden states and each linear is fitted to the float model's outputs (see shiftToFloatTargets).
 */
export async function gptqLayer(c: LayerContext, l: LayerWork): Promise<void> {
  const excluded = c.o.excluded ?? new Set<string>();
  // The head's 8-bit weights are rounded to nearest, as AWQ does (see CalibratedOptions.gptqHead).
  const rounded = (name: string) => l.last && c.bitsOf(name) >= 8 && !c.o.gptqHead;
  roundLinears(c, l.groups.flatMap((g) => g.linears).filter(rounded));
  const quantized = (name: string) => !excluded.has(name) && !rounded(name);
  const inputs = runOrder(c, [...new Set(l.groups.filter((g) => g.linears.some(quantized)).map(l.inputOf))]);
  if (inputs.length === 0) return; // every linear of this span is excluded or rounded: nothing to measure
  const options = { ...c.opts, actOrder: c.o.actOrder, percDamp: c.o.percDamp, mseClip: c.o.mseClip, scratch: c.scratch };
  // The float stream runs on the layer's float weights: the live ones until GPTQ replaces them, then a copy taken
  // just before, only for linears a later pass still runs (the last pass's never are).
  const floats =
    c.o.floatTargets && c.runner.hasFloatStream && !l.last
      ? new Map(l.groups.flatMap((g) => g.linears).map((n) => [n, c.weight(n).data as Float32Array]))
      : undefined;
  const passes = c.o.trueSequential ? inputs.map((x) => [x]) : [inputs];
  // Passes after the first keep the values they measure, and the first keeps the float stream's values of the later
  // passes' inputs: each pass then runs only the part of the layer after the last kept value, and the float layer
  // runs once (a TinyLlama-shaped layer at 32 × 512 tokens: see docs/quantization.md). Kept while memory allows.
  const later = passes.slice(1).flat();
  const keep = later.length > 0 && keptBytes(c, later, !!floats) <= keepBudgetBytes();
  if (!keep) c.runner.releaseKept(); // arrays an earlier layer kept, which no pass of this one reuses
  for (let p = 0; p < passes.length; p++) {
    const stats = await c.runner.collect(l.index, passes[p], {
      gram: true,
      float: floats,
      advanceFloat: !!floats && p === 0,
      keep: keep && p > 0,
      keepFloat: keep && floats && p === 0 ? later : undefined,
    });
    for (const input of passes[p]) {
      const linears = l.groups.filter((g) => l.inputOf(g) === input).flatMap((g) => g.linears.filter(quantized));
      // With kept values later passes read the float stream's kept inputs and never run the float layer again.
      if (floats && !keep && p < passes.length - 1) for (const n of linears) floats.set(n, Float32Array.from(c.weight(n).data as Float32Array));
      await gptqInput(c, l, stats.get(input)!, linears, options);
    }
  }
}

/** GPTQ of the linears reading one input, from that input's statistics. */
async function gptqInput(c: LayerContext, l: LayerWork, st: InputStats, linears: string[], options: GptqOptions): Promise<void> {
  // H = 2XᵀX/n, formed in the runner's buffer, which then holds U (the sums are not needed afterwards).
  const H = st.gram!;
  const { K, tokens } = st;
  for (let j = 0; j < H.length; j++) H[j] *= 2 / tokens;
  // D = 2/n·X̃ᵀX − H, in the runner's cross-product buffer, before H is dampened.
  const D = st.cross;
  if (D) for (let j = 0; j < D.length; j++) D[j] = (2 / tokens) * D[j] - H[j];
  const hessian = await prepareGptqHessian(H, K, { ...options, overwrite: true }, c.gemm.abt);
  if (D)
    await shiftToFloatTargets(
      D,
      hessian,
      linears.map((n) => ({ w: c.weight(n).data as Float32Array, N: c.weight(n).dims[1] })),
      c.gemm,
    );
  for (const name of linears) {
    const t = c.weight(name);
    const [, N] = t.dims;
    const w = t.data as Float32Array;
    const bits = c.bitsOf(name);
    const qw = await gptq(w, hessian, N, K, { ...options, bits, blockSize: c.blockOf(K, bits), layout: 'KN' }, c.gemm.abt, c.gemm.update);
    c.results.set(name, qw);
    // The error, and (in the same pass) the weights replaced by their dequantized values: later layers calibrate
    // on these; after the last span nothing reads them.
    c.o.errors?.set(name, measureBlockwise(qw, w, 'KN', l.last ? undefined : w));
  }
}

/** Memory that keeping `values` takes: [tokens, K] floats each, twice with the float stream's. */
function keptBytes(c: LayerContext, values: string[], withFloat: boolean): number {
  const widths = values.map((v) => c.runner.widthOf(v));
  return widths.reduce((s, K) => s + K, 0) * c.runner.tokens * 4 * (withFloat ? 2 : 1);
}

/**
 * The most memory kept values may take: a quarter of the machine's, or of the process's limit where a container
 * sets one (TinyLlama at 32 × 512 tokens keeps 1.3 GB, the Mistral-7B shape 2.9 GB).
 */
function keepBudgetBytes(): number {
  const limit = process.constrainedMemory?.() || Infinity;
  return Math.min(totalmem(), limit) / 4;
}

/** Linear inputs in the order the graph computes them (the first MatMul reading each). */
function runOrder(c: LayerContext, inputs: string[]): string[] {
  const first = new Map<string, number>();
  c.model.graph.nodes.forEach((n, i) => {
    if (n.opType === 'MatMul' && !first.has(n.inputs[0])) first.set(n.inputs[0], i);
  });
  return [...inputs].sort((a, b) => (first.get(a) ?? 0) - (first.get(b) ?? 0));
}
