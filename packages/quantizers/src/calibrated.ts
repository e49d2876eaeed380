import { AlkiError, throwIfAborted } from '@alki/core';
import { isLazy, materialize, readDecoderLayout, release, type LayerSpan, type Model, type ScaleGroup, type Tensor } from '@alki/onnx';
import type { BlockwiseQuantized } from './blockwise.js';
import { awqLayer, roundLayer } from './calibration/awq-layer.js';
import { gptqLayer } from './calibration/gptq-layer.js';
import { LayerRunner } from './calibration/layer-runner.js';
import { smoothLayer } from './calibration/smooth-layer.js';
import type { CalibratedOptions, CalibrationData, LayerContext, LayerWork } from './calibration/types.js';
import { inferScaleGroups } from './graph/infer-groups.js';
import { graphIndex } from './graph/scale-folding.js';
import { assertFinite } from './graph/rewrite.js';
import { writtenBlockSize } from './quantize.js';
import { Scratch } from './scratch.js';
import { OrtGemm } from './ort/gemm.js';

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
  const runner = new LayerRunner(model, spans, calibration.samples, hiddenSize, 4, o.signal, o.method === 'gptq' && !!o.floatTargets);
  const results = new Map<string, BlockwiseQuantized>();
  const gemm = new OrtGemm();
  const ctx: LayerContext = {
    model,
    runner,
    gemm,
    scratch: new Scratch(),
    weightScratch: new Scratch(),
    weight,
    o,
    results,
    opts: { bits: o.bits, blockSize: o.blockSize, symmetric: o.symmetric },
    bitsOf: (name) => o.bitsOf?.(name) ?? o.bits,
    blockOf: (K, bits) => writtenBlockSize(K, o.blockSize, bits, o.symmetric),
  };
  try {
    const total = spans.length;
    // One span's weights in memory at a time: lazy weights (a streamed export) are loaded for their span and
    // dropped after it (their codes hold the result; SmoothQuant's rewritten weights go to the spill).
    const hold = (i: number) => runner.initializersOf(i).filter(isLazy).map(materialize);
    const checkpoint = o.method === 'smoothquant' ? undefined : o.checkpoint;
    const resumed = checkpoint?.load();
    if (resumed && resumed.done >= spans.length)
      throw new AlkiError('BAD_INPUT', 'the checkpoint has more layers than this model', 'build again without --resume');
    let first = 0;
    if (resumed) {
      // Layers finished before the interruption: their codes and rewritten weights as they were recorded.
      for (const layer of resumed.layers) {
        for (const t of layer.tensors) weight(t.name).data = t.data;
        for (const { name, qw, error } of layer.codes) {
          // Codes an earlier version recorded in another block layout (see writtenBlockSize) are not this build's.
          if (qw.blockSize !== ctx.blockOf(qw.K, qw.bits))
            throw new AlkiError(
              'BAD_INPUT',
              `the checkpoint holds ${name} in blocks of ${qw.blockSize}, where this build writes blocks of ${ctx.blockOf(qw.K, qw.bits)}`,
              'build again without --resume',
            );
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
      } else {
        await awqLayer(ctx, layer);
        roundLayer(ctx, layer);
      }
      // AWQ and SmoothQuant took the next layer's inputs from their statistics pass (see awqLayer).
      if (i < spans.length - 1 && o.method === 'gptq') await runner.advance(i);
      const codes = layerGroups
        .flatMap((g) => g.linears)
        .flatMap((name) => (results.has(name) ? [{ name, qw: results.get(name)!, error: o.errors?.get(name) ?? NaN }] : []));
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

/** The float weights of a layer's groups that are not linears (norm weights and biases): what AWQ folds into. */
function rewrittenFloats(c: LayerContext, l: LayerWork): Tensor[] {
  const names = new Set(l.groups.flatMap((g) => [g.norm, g.normBias].filter((n): n is string => !!n)));
  return [...names].map((n) => c.weight(n));
}
