import { AlkiError, throwIfAborted, type ProgressCallback } from '@alki/core';
import { isLazy, materialize, readDecoderLayout, release, transpose, type LayerSpan, type Model, type Node, type ScaleGroup, type Tensor, type TensorSpill } from '@alki/onnx';
import { awqBlockGram, awqClip, awqSearchScale } from './awq.js';
import { measureBlockwise, relativeErrorOf, type BlockwiseQuantized } from './blockwise.js';
import { LayerRunner } from './calibration/layer-runner.js';
import { gptq, prepareGptqHessian, type GptqHessian } from './gptq.js';
import { OrtGemm } from './ort-gemm.js';
import { Scratch } from './linalg.js';
import { smoothingFactors } from './smoothquant.js';
import { inferScaleGroups } from './infer-groups.js';
import { floatTensor } from '@alki/onnx';
import { assertFinite } from './rewrite.js';
import { rtn } from './rtn.js';
import type { LayerCheckpoint } from './checkpoint.js';

/** Token sequences to calibrate on, all of one length, and where they came from. */
export interface CalibrationData {
  samples: number[][];
  /** e.g. "calib.txt (sha256 …)" or "sampled from the fp32 model (seed 0)". */
  source: string;
  sha256?: string;
}

export interface CalibratedOptions {
  method: 'gptq' | 'awq' | 'smoothquant';
  /** SmoothQuant migration strength α (default 0.5). */
  alpha?: number;
  bits: 2 | 4 | 8;
  /** Bits per weight where they differ from `bits` (the output projection's own width). */
  bitsOf?: (name: string) => 2 | 4 | 8;
  blockSize: number;
  symmetric: boolean;
  actOrder?: boolean;
  /** GPTQ: MSE-searched block ranges (see GptqOptions.mseClip). */
  mseClip?: boolean;
  /** GPTQ: search and fold AWQ's per-channel scales first, then round with GPTQ (see QuantizeOptions.awqScales). */
  awqScales?: boolean;
  percDamp?: number;
  /** Calibration rows kept per linear input for AWQ's searches (default 4096). */
  awqRows?: number;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
  /**
   * Weights to leave bit-identical (still MatMul): never rounded, dequantized or clipped, and a group holding one
   * (or folding into one) gets no AWQ / SmoothQuant scale, which would rescale its rows.
   */
  excluded?: ReadonlySet<string>;
  /** Filled with each GPTQ weight's ‖W − Ŵ‖ / ‖W‖ against the weight it started from. */
  errors?: Map<string, number>;
  /**
   * Streaming: AWQ's and GPTQ's codes are handed here as soon as nothing reads the layer's float weights any more
   * (and are not kept for the returned map), so that a model's codes never sit in memory all at once.
   */
  onCodes?: (name: string, qw: BlockwiseQuantized) => void;
  /**
   * Streaming: where weights that SmoothQuant rewrote are kept once their layer is done. Without it they stay in
   * memory. Lazy weights (a streamed export) are loaded per layer either way and dropped after it.
   */
  spill?: TensorSpill;
  /** AWQ, GPTQ: records each finished layer, and resumes after the last one it holds (see {@link FolderCheckpoint}). */
  checkpoint?: LayerCheckpoint;
}

/**
 * The layer boundaries and scale groups the export recorded; a graph Alki did
 * not build is calibrated as one span, with groups inferred from its structure.
 */
function decoderLayout(model: Model): { spans: LayerSpan[]; groups: ScaleGroup[] } {
  const layout = readDecoderLayout(model);
  if (!layout) return { spans: [{ input: '', output: model.graph.outputs[0].name }], groups: inferScaleGroups(model) };
  const { layers, scaleGroups: groups } = layout;
  const head: LayerSpan = { input: layers[layers.length - 1].output, output: 'logits' };
  return { spans: [...layers, head], groups: groups.map((g) => ({ ...g, layer: g.layer < 0 ? layers.length : g.layer })) };
}

/**
 * Runs GPTQ or AWQ layer by layer over calibration data and returns the
 * quantized codes of every linear weight (by initializer name). The float
 * model is modified along the way: GPTQ replaces each finished layer's
 * weights by their dequantized values (so the next layer is calibrated on
 * quantized inputs: sequential GPTQ; the head keeps its float weights); AWQ folds its scales into norms and
 * preceding linears and clips weights (the float model stays equivalent but
 * for clipping).
 */
export async function calibratedQuantize(model: Model, calibration: CalibrationData, o: CalibratedOptions): Promise<Map<string, BlockwiseQuantized>> {
  const { spans, groups } = decoderLayout(model);
  const { inits, matmulOf } = graphIndex(model);
  const weight = (name: string): Tensor => {
    const t = inits.get(name);
    if (!t) throw new AlkiError('MISSING_WEIGHT', `weight ${name} named by the export metadata is missing from the graph`);
    return t;
  };
  const hiddenSize = spans[0].input ? weight(groups[0].linears[0]).dims[0] : 0;
  const runner = new LayerRunner(model, spans, calibration.samples, hiddenSize, 4, o.signal);
  const results = new Map<string, BlockwiseQuantized>();
  const gemm = new OrtGemm();
  const ctx: LayerContext = { model, runner, gemm, scratch: new Scratch(), weightScratch: new Scratch(), weight, o, results, opts: { bits: o.bits, blockSize: o.blockSize, symmetric: o.symmetric } };
  try {
    const total = spans.length;
    // One span's weights in memory at a time: lazy weights (a streamed export) are loaded for their span and
    // dropped after it (their codes hold the result; SmoothQuant's rewritten weights go to the spill).
    const hold = (i: number) => runner.initializersOf(i).filter(isLazy).map(materialize);
    const checkpoint = o.method === 'smoothquant' ? undefined : o.checkpoint;
    const resumed = checkpoint?.load();
    if (resumed && resumed.done >= spans.length) throw new AlkiError('BAD_INPUT', 'the checkpoint has more layers than this model', 'build again without --resume');
    let first = 0;
    if (resumed) {
      // Layers finished before the interruption: their codes and rewritten weights as they were recorded.
      for (const layer of resumed.layers) {
        for (const t of layer.tensors) weight(t.name).data = t.data;
        for (const { name, qw, error } of layer.codes) {
          o.errors?.set(name, error);
          if (o.onCodes) o.onCodes(name, qw);
          else results.set(name, qw);
        }
      }
      runner.restore(resumed.hidden);
      first = resumed.done;
      o.onProgress?.({ step: `${o.method} calibrate`, done: first, total, detail: `resumed after layer ${first - 1}` });
    } else {
      o.onProgress?.({ step: `${o.method} calibrate`, done: 0, total, detail: `${calibration.samples.length} samples × ${runner.seqLen} tokens` });
      const embedding = hold(-1);
      await runner.start();
      for (const t of embedding) release(t);
    }
    for (let i = first; i < spans.length; i++) {
      throwIfAborted(o.signal);
      const held = hold(i);
      const layerGroups = groups.filter((g) => g.layer === i);
      for (const g of layerGroups) for (const w of g.linears) assertFinite(w, weight(w).data as Float32Array);
      const inputOf = (g: ScaleGroup) => matmulOf.get(g.linears[0])!.inputs[0];
      const layer = { index: i, groups: layerGroups, inputOf, last: i === spans.length - 1 };
      if (o.method === 'smoothquant') await smoothLayer(ctx, layer);
      else if (o.method === 'gptq') {
        if (o.awqScales) await awqLayer(ctx, layer, true);
        await gptqLayer(ctx, layer);
      }
      else {
        await awqLayer(ctx, layer);
        roundLayer(ctx, layer);
      }
      // AWQ and SmoothQuant took the next layer's inputs from their statistics pass (see awqLayer).
      if (i < spans.length - 1 && o.method === 'gptq') await runner.advance(i);
      const codes = layerGroups.flatMap((g) => g.linears).flatMap((name) => (results.has(name) ? [{ name, qw: results.get(name)!, error: o.errors?.get(name) ?? NaN }] : []));
      // Besides the codes, what a layer rewrites that stays float: the norms AWQ folded its scales into.
      if (checkpoint && i < spans.length - 1) checkpoint.save(i, { codes, tensors: rewrittenFloats(ctx, layer) }, runner.hiddenStates);
      if (o.method !== 'smoothquant') for (const t of held) release(t);
      else if (o.spill) for (const t of held) release(t, o.spill);
      if (o.onCodes) {
        for (const { name, qw } of codes) {
          o.onCodes(name, qw);
          results.delete(name);
        }
      }
      o.onProgress?.({ step: `${o.method} calibrate`, done: i + 1, total, detail: i < spans.length - 1 ? `layer ${i}` : 'head' });
    }
  } finally {
    await gemm.release();
    await runner.release();
  }
  return results;
}

interface LayerContext {
  model: Model;
  runner: LayerRunner;
  gemm: OrtGemm;
  /** Work memory shared by the layers' GPTQ and AWQ searches, and for weight copies. */
  scratch: Scratch;
  weightScratch: Scratch;
  weight: (name: string) => Tensor;
  o: CalibratedOptions;
  results: Map<string, BlockwiseQuantized>;
  opts: { bits: 2 | 4 | 8; blockSize: number; symmetric: boolean };
}

interface LayerWork {
  index: number;
  /** The last span (the head): nothing is calibrated after it. */
  last: boolean;
  groups: ScaleGroup[];
  inputOf: (g: ScaleGroup) => string;
}

/** SmoothQuant: smoothing is exact in float, so statistics of the float model serve every group. */
async function smoothLayer(c: LayerContext, l: LayerWork): Promise<void> {
  const stats = await c.runner.collect(l.index, [...new Set(l.groups.map(l.inputOf))], { absMax: true, advance: !l.last });
  for (const g of l.groups) {
    if (!g.norm || touchesExcluded(c, g) || !canFoldScale(c.model, g)) continue;
    const st = stats.get(l.inputOf(g))!;
    const weights = g.linears.map((name) => ({ data: c.weight(name).data as Float32Array, N: c.weight(name).dims[1] }));
    applyScale(c.model, g, smoothingFactors(st.absMax!, weights, c.o.alpha ?? 0.5));
  }
}

/** GPTQ: H = 2XᵀX/n per input, one factorisation per input, then every linear reading it; weights become their dequantized values. */
async function gptqLayer(c: LayerContext, l: LayerWork): Promise<void> {
  const abt = c.gemm.abt;
  const excluded = c.o.excluded ?? new Set<string>();
  const inputs = [...new Set(l.groups.filter((g) => g.linears.some((w) => !excluded.has(w))).map(l.inputOf))];
  if (inputs.length === 0) return; // every linear of this span is excluded (a float head): nothing to measure
  const stats = await c.runner.collect(l.index, inputs, { gram: true });
  const options = { ...c.opts, actOrder: c.o.actOrder, percDamp: c.o.percDamp, mseClip: c.o.mseClip, scratch: c.scratch };
  const prepared = new Map<string, GptqHessian>();
  for (const input of inputs) {
    const st = stats.get(input)!;
    // H = 2XᵀX/n, formed in the runner's buffer, which then holds U (the sums are not needed afterwards).
    const H = st.gram!;
    for (let j = 0; j < H.length; j++) H[j] *= 2 / st.tokens;
    prepared.set(input, await prepareGptqHessian(H, st.K, { ...options, overwrite: true }, abt));
  }
  for (const g of l.groups) {
    for (const name of g.linears) {
      if (excluded.has(name)) continue;
      const t = c.weight(name);
      const [K, N] = t.dims;
      const qw = await gptq(t.data as Float32Array, prepared.get(l.inputOf(g))!, N, K, { ...options, bits: c.o.bitsOf?.(name) ?? options.bits, layout: 'KN' }, abt, c.gemm.update);
      c.results.set(name, qw);
      // The error, and (in the same pass) the weights replaced by their dequantized values: later layers calibrate
      // on these; after the last span nothing reads them.
      const w = t.data as Float32Array;
      c.o.errors?.set(name, measureBlockwise(qw, w, 'KN', l.last ? undefined : w));
    }
  }
}

/**
 * Groups larger than this (outputs × inputs) skip AWQ's searches and are plain RTN: in practice the vocabulary
 * head of real models (32000 × 2048), which AutoAWQ does not quantize at all; its searches would cost more than
 * all decoder layers together on a CPU.
 */
const AWQ_MAX_GROUP = 32 * 1024 * 1024;

/** Outputs on which AWQ's scale search measures its candidates (see {@link AwqOptions.searchOutputs}). */
const AWQ_SEARCH_OUTPUTS = 1024;

/**
 * AWQ: per group, the scale search (folded into the producer), then the clipping search per linear. With `scalesOnly`
 * (GPTQ with AWQ's scales) the clipping is GPTQ's rounding's job, and the layer is not advanced here: GPTQ measures
 * its Hessians on the scaled layer and advances it once quantized.
 */
async function awqLayer(c: LayerContext, l: LayerWork, scalesOnly = false): Promise<void> {
  const abt = c.gemm.abt;
  // One pass per layer, as AutoAWQ: the next layer is calibrated on this layer's float outputs before its scales
  // (exact in float) and clipping (not reflected in the next layer's inputs, as in AutoAWQ).
  const stats = await c.runner.collect(l.index, [...new Set(l.groups.map(l.inputOf))], { absMean: true, rows: c.o.awqRows ?? 4096, advance: !l.last && !scalesOnly });
  for (const g of l.groups) {
    const size = g.linears.reduce((sum, name) => sum + c.weight(name).data.length, 0);
    if (size > AWQ_MAX_GROUP) continue;
    const st = stats.get(l.inputOf(g))!;
    const K = st.K;
    const n = st.rows!.length / K;
    const xMean = new Float64Array(K);
    for (let k = 0; k < K; k++) xMean[k] = st.absSum![k] / st.tokens;
    if (!touchesExcluded(c, g) && canFoldScale(c.model, g)) {
      const lin = g.linears.map((name) => {
        const t = c.weight(name);
        return { w: transpose(t.data as Float32Array, t.dims[0], t.dims[1]), N: t.dims[1] };
      });
      // Each candidate costs outputs × K (fake quantization) + rows × outputs × K (the product): large groups
      // are measured on a sample of their outputs, and on fewer rows.
      const outputs = Math.min(AWQ_SEARCH_OUTPUTS, lin.reduce((sum, x) => sum + x.N, 0));
      const searchRows = Math.min(n, Math.max(256, Math.floor(2e9 / (outputs * K))));
      // The candidate graph cuts K into whole blocks; otherwise the JS path quantizes the candidates.
      const candidates = K % c.opts.blockSize === 0 ? c.gemm.candidateLoss : undefined;
      // A group's linears share one width (the head, the only one with its own, is alone in its group).
      const options = { ...c.opts, bits: c.o.bitsOf?.(g.linears[0]) ?? c.opts.bits, searchOutputs: AWQ_SEARCH_OUTPUTS };
      const { scale } = await awqSearchScale(evenRows(st.rows!, n, K, searchRows), Math.min(n, searchRows), K, xMean, lin, options, abt, candidates);
      applyScale(c.model, g, scale);
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
      const first = g.unclipped?.[name] ?? (/q_proj|k_proj/.test(name) ? N : 0);
      if (first >= N) continue;
      gram ??= await awqBlockGram(st.rows!, n, K, c.opts.blockSize, products);
      c.weightScratch.reserve(N * Kw);
      const rows = transpose(t.data as Float32Array, Kw, N, c.weightScratch.take(N * Kw));
      await awqClip(rows, N, Kw, st.rows!, n, { ...c.opts, bits: c.o.bitsOf?.(name) ?? c.opts.bits, first, inPlace: true, scratch: c.scratch, gram }, products);
      transpose(rows, N, Kw, t.data as Float32Array);
      c.weightScratch.release(0);
    }
  }
}

/**
 * AWQ's final rounding: RTN of the scaled, clipped weights (as AutoAWQ), with the error against the weight it
 * rounds (scaling is exact; clipping is part of the error).
 */
function roundLayer(c: LayerContext, l: LayerWork): void {
  for (const g of l.groups) {
    for (const name of g.linears) {
      if (c.o.excluded?.has(name)) continue;
      const t = c.weight(name);
      const w = t.data as Float32Array;
      const [K, N] = t.dims;
      const qw = rtn(w, N, K, { ...c.opts, bits: c.o.bitsOf?.(name) ?? c.opts.bits }, 'KN');
      c.results.set(name, qw);
      c.o.errors?.set(name, relativeErrorOf(qw, w, 'KN'));
    }
  }
}

/** The float weights of a layer's groups that are not linears (norm weights and biases): what AWQ folds into. */
function rewrittenFloats(c: LayerContext, l: LayerWork): Tensor[] {
  const names = new Set(l.groups.flatMap((g) => [g.norm, g.normBias].filter((n): n is string => !!n)));
  return [...names].map((n) => c.weight(n));
}

/** Whether scaling g's input would change an excluded weight: one of its linears, or the linear it folds into. */
function touchesExcluded(c: LayerContext, g: ScaleGroup): boolean {
  const ex = c.o.excluded;
  return !!ex && (g.linears.some((w) => ex.has(w)) || (!!g.prev && ex.has(g.prev)));
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

/** Whether a per-channel input scale of `g` can be applied: folded at zero cost, or (foreign graphs) by an inserted Mul. */
export function canFoldScale(model: Model, g: ScaleGroup): boolean {
  return foldFor(model, g) !== undefined || !!g.insertMul;
}

/** Where no producer can absorb the scale: x → Mul(x, 1/s) → the group's MatMuls (one Mul at run time). */
function insertMul(model: Model, g: ScaleGroup): (s: Float32Array) => void {
  return (s) => {
    const targets = model.graph.nodes.filter((n) => n.opType === 'MatMul' && g.linears.includes(n.inputs[1]));
    const x = targets[0].inputs[0];
    const inv = floatTensor(`${g.linears[0]}.input_scale`, [s.length], s.map((v) => 1 / v));
    const out = `${x}_scaled_${model.graph.initializers.length}`;
    model.graph.initializers.push(inv);
    const at = Math.min(...targets.map((n) => model.graph.nodes.indexOf(n)));
    model.graph.nodes.splice(at, 0, { opType: 'Mul', name: `${inv.name}_Mul`, inputs: [x, inv.name], outputs: [out], attributes: {} });
    for (const n of targets) n.inputs[0] = out;
  };
}

/**
 * Applies a per-input-channel scale s to a group without changing what the
 * float model computes: the linears' input rows are multiplied by s and the
 * producer of their input (norm weight, or preceding linear's output columns
 * and bias) divided by s. Throws when the group has no foldable producer.
 */
export function applyScale(model: Model, g: ScaleGroup, s: Float32Array): void {
  const fold = foldFor(model, g) ?? (g.insertMul ? insertMul(model, g) : undefined);
  if (!fold) throw new AlkiError('BAD_INPUT', `the input of ${g.linears.join(', ')} has no producer that can absorb a scale`);
  fold(s);
  const inits = new Map(model.graph.initializers.map((t) => [t.name, t]));
  for (const name of g.linears) {
    const t = materialize(inits.get(name)!);
    const d = t.data as Float32Array;
    const [K, N] = t.dims;
    for (let k = 0; k < K; k++) for (let c = 0; c < N; c++) d[k * N + c] *= s[k];
  }
}

/** Initializers by name, the MatMul reading each constant weight, and the readers of each value. */
function graphIndex(model: Model): { inits: Map<string, Tensor>; matmulOf: Map<string, Node>; consumers: Map<string, Node[]> } {
  const inits = new Map(model.graph.initializers.map((t) => [t.name, t]));
  const matmulOf = new Map<string, Node>();
  const consumers = new Map<string, Node[]>();
  for (const n of model.graph.nodes) {
    if (n.opType === 'MatMul' && inits.has(n.inputs[1])) matmulOf.set(n.inputs[1], n);
    for (const i of n.inputs) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  }
  return { inits, matmulOf, consumers };
}

function foldFor(model: Model, g: ScaleGroup): ((s: Float32Array) => void) | undefined {
  const { inits, matmulOf, consumers } = graphIndex(model);
  const first = inits.get(g.linears[0]);
  if (!first) return undefined;
  // Folding rewrites values in place: lazy tensors (a streamed export) are loaded and kept first.
  return foldTarget(g, (name) => {
    const t = inits.get(name);
    return t && materialize(t);
  }, consumers, matmulOf, first.dims[0]);
}

/**
 * Where a group's input scale can be folded at zero runtime cost: the norm
 * weight (divided by s) when only that norm's Mul reads it, or the output
 * columns (and bias) of the preceding linear when its width matches.
 */
function foldTarget(g: ScaleGroup, weight: (n: string) => Tensor | undefined, consumers: Map<string, Node[]>, matmulOf: Map<string, Node>, K: number): ((s: Float32Array) => void) | undefined {
  if (g.norm) {
    const t = weight(g.norm)!;
    if ((consumers.get(g.norm) ?? []).length !== 1 || t.dims.length !== 1 || t.dims[0] !== K) return undefined;
    const bias = g.normBias ? weight(g.normBias) : undefined;
    return (s) => {
      const d = t.data as Float32Array;
      for (let k = 0; k < K; k++) d[k] /= s[k];
      // LayerNorm: y = x̂·γ + β, so β is divided too.
      if (bias) for (let k = 0; k < K; k++) (bias.data as Float32Array)[k] /= s[k];
    };
  }
  if (g.prev) {
    const t = weight(g.prev)!;
    if (t.dims[1] !== K) return undefined; // e.g. v_proj → o_proj under grouped-query attention
    const mm = matmulOf.get(g.prev)!;
    const adds = (consumers.get(mm.outputs[0]) ?? []).filter((n) => n.opType === 'Add');
    const biasName = adds.length === 1 ? adds[0].inputs.find((x) => x !== mm.outputs[0]) : undefined;
    return (s) => {
      const d = t.data as Float32Array;
      const Kp = t.dims[0];
      for (let r = 0; r < Kp; r++) for (let c = 0; c < K; c++) d[r * K + c] /= s[c];
      const bias = biasName ? weight(biasName) : undefined;
      if (bias) {
        const b = bias.data as Float32Array;
        for (let c = 0; c < K; c++) b[c] /= s[c];
      }
    };
  }
  return undefined;
}
