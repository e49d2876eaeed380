import * as ort from 'onnxruntime-node';
import { AlkiError, throwIfAborted } from '@alki/core';
import { DataType, createModel, encodeModel, int64Tensor, type Graph, type Model, type ValueInfo } from '@alki/onnx';
import { extractSubgraph } from './subgraph.js';

/** Statistics of one linear-layer input X ([tokens, K]) over all calibration tokens. */
export interface InputStats {
  K: number;
  tokens: number;
  /** Σ XᵀX, [K, K] row-major (GPTQ's Hessian is 2/n of it). */
  gram?: Float32Array;
  /** Σ |x| per channel (divide by tokens for the mean). */
  absSum?: Float64Array;
  /** max |x| per channel. */
  absMax?: Float32Array;
  /** The first `rows` token rows of X, [rows, K] (AWQ's output-error search). */
  rows?: Float32Array;
}

export interface StatsRequest {
  gram?: boolean;
  absMean?: boolean;
  absMax?: boolean;
  /** Keep up to this many token rows of X. */
  rows?: number;
}

/** The boundary values of one decoder layer. */
export interface LayerSpan {
  input: string;
  output: string;
}

/**
 * Runs a decoder one layer at a time over calibration samples: only the
 * current layer's weights are in an onnxruntime session, and the hidden
 * states between layers are kept in memory (samples × seqlen × hidden).
 * Weights are read from `model` when a layer runs, so a quantizer that
 * replaces a layer's weights by their dequantized values before `advance`
 * makes the next layer see quantized inputs (sequential quantization).
 */
export class LayerRunner {
  private hidden: Float32Array[] = [];
  /** The weights the current session takes as inputs (see withSession). */
  private weightFeeds: Record<string, ort.Tensor> = {};
  private readonly batches: number[][][];
  readonly hiddenSize: number;

  constructor(
    private readonly model: Model,
    readonly layers: LayerSpan[],
    samples: number[][],
    hiddenSize: number,
    batchSize = 4,
    private readonly signal?: AbortSignal,
  ) {
    if (samples.length === 0) throw new AlkiError('BAD_INPUT', 'no calibration samples', 'pass --calib with enough text for at least one sample');
    const len = samples[0].length;
    if (samples.some((s) => s.length !== len)) throw new AlkiError('BAD_INPUT', 'calibration samples must all have the same length');
    this.batches = [];
    for (let i = 0; i < samples.length; i += batchSize) this.batches.push(samples.slice(i, i + batchSize));
    this.hiddenSize = hiddenSize;
  }

  get seqLen(): number {
    return this.batches[0][0].length;
  }

  get tokens(): number {
    return this.batches.reduce((s, b) => s + b.length, 0) * this.seqLen;
  }

  /** Computes the input hidden states of layer 0 (the embedding part of the graph). */
  async start(): Promise<void> {
    if (!this.layers[0].input) return; // one span from the graph inputs: nothing before it
    const graph = extractSubgraph(this.model, [this.layers[0].input], []);
    this.hidden = [];
    await this.withSession(graph, async (s) => {
      for (const batch of this.batches) {
        const out = await s.run(this.feeds(s, batch));
        this.hidden.push(out[this.layers[0].input].data as Float32Array);
      }
    });
  }

  /** Checks hidden states for NaN/Inf, naming the layer that produced them. */
  private checkFinite(where: string, data: Float32Array): void {
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) {
        throw new AlkiError('NUMERIC', `activations ${where} contain ${Number.isNaN(data[i]) ? 'NaN' : 'Inf'}`, 'the model overflows in float32 on the calibration data, or its weights are damaged; check the checkpoint, or try other calibration text');
      }
    }
  }

  /** Collects statistics of the given values (linear inputs) of layer `i` over all samples. */
  async collect(i: number, inputs: string[], request: StatsRequest): Promise<Map<string, InputStats>> {
    const b = this.statsGraph(i, inputs, request);
    const stats = new Map<string, InputStats>();
    await this.withSession(b.graph, async (s) => {
      for (let bi = 0; bi < this.batches.length; bi++) {
        throwIfAborted(this.signal);
        const out = await s.run(this.layerFeeds(s, i, bi));
        const tokens = this.batches[bi].length * this.seqLen;
        for (const name of inputs) {
          const names = b.outputs.get(name)!;
          const shapeOf = out[names.x ?? names.gram!];
          const K = shapeOf.dims[shapeOf.dims.length - 1] as number;
          // X itself only comes back when a statistic needs it; a Hessian alone stays in onnxruntime.
          const x = names.x ? (out[names.x].data as Float32Array) : undefined;
          this.checkFinite(`entering ${name.replace(/\.weight$/, '')} (layer ${i})`, x ?? (out[names.gram!].data as Float32Array));
          const st = stats.get(name) ?? { K, tokens: 0 };
          if (request.gram) {
            const g = out[names.gram!].data as Float32Array;
            if (!st.gram) st.gram = new Float32Array(K * K);
            for (let j = 0; j < g.length; j++) st.gram[j] += g[j];
          }
          if (x && (request.absMean || request.absMax)) {
            if (!st.absSum) st.absSum = new Float64Array(K);
            if (!st.absMax) st.absMax = new Float32Array(K);
            for (let t = 0; t < tokens; t++) {
              for (let k = 0; k < K; k++) {
                const v = Math.abs(x[t * K + k]);
                st.absSum[k] += v;
                if (v > st.absMax[k]) st.absMax[k] = v;
              }
            }
          }
          if (x && request.rows) {
            // Rows spread evenly over all batches and positions, not just the first sequence.
            const perBatch = Math.ceil(request.rows / this.batches.length);
            const take = Math.min(perBatch, tokens, request.rows - (st.rows ? st.rows.length / K : 0));
            if (take > 0) {
              const have = st.rows ? st.rows.length / K : 0;
              const next = new Float32Array((have + take) * K);
              if (st.rows) next.set(st.rows);
              const step = tokens / take;
              for (let r = 0; r < take; r++) next.set(x.subarray(Math.floor(r * step) * K, (Math.floor(r * step) + 1) * K), (have + r) * K);
              st.rows = next;
            }
          }
          st.tokens += tokens;
          stats.set(name, st);
        }
      }
    });
    return stats;
  }

  /** Runs layer `i` with the model's current weights and keeps its outputs as the next layer's inputs. */
  async advance(i: number): Promise<void> {
    const span = this.layers[i];
    const graph = extractSubgraph(this.model, [span.output], this.cuts(i));
    const next: Float32Array[] = [];
    await this.withSession(graph, async (s) => {
      for (let bi = 0; bi < this.batches.length; bi++) {
        throwIfAborted(this.signal);
        const out = await s.run(this.layerFeeds(s, i, bi));
        const h = out[span.output].data as Float32Array;
        this.checkFinite(`leaving layer ${i}`, h);
        next.push(h);
      }
    });
    this.hidden = next;
  }

  private layerFeeds(s: ort.InferenceSession, i: number, bi: number): Record<string, ort.Tensor> {
    const feeds = this.feeds(s, this.batches[bi]);
    if (this.layers[i].input) feeds[this.layers[i].input] = this.hiddenTensor(bi);
    return feeds;
  }

  private cuts(i: number): ValueInfo[] {
    return this.layers[i].input ? [this.hiddenInfo(this.layers[i].input)] : [];
  }

  private hiddenInfo(name: string): ValueInfo {
    return { name, elemType: DataType.FLOAT, shape: ['batch', 'seq', this.hiddenSize] };
  }

  private hiddenTensor(bi: number): ort.Tensor {
    return new ort.Tensor('float32', this.hidden[bi], [this.batches[bi].length, this.seqLen, this.hiddenSize]);
  }

  /** The layer slice plus, for each requested value X: X flattened to [tokens, K], and XᵀX. */
  private statsGraph(i: number, inputs: string[], request: StatsRequest): { graph: Graph; outputs: Map<string, { x?: string; gram?: string }> } {
    const base = extractSubgraph(this.model, inputs, this.cuts(i));
    const outputs = new Map<string, { x?: string; gram?: string }>();
    const needX = !!(request.absMean || request.absMax || request.rows);
    const extraInits = [int64Tensor('alki_calib_minus1', [1], [-1])];
    const nodes = [...base.nodes];
    const outs: ValueInfo[] = [];
    inputs.forEach((name, j) => {
      // Reshape to [tokens, K]: shape [-1, K] where K comes from the last dim.
      const shape = `alki_calib_${j}_shape`;
      const lastDim = `alki_calib_${j}_k`;
      const x2d = `alki_calib_${j}_x`;
      nodes.push({ opType: 'Shape', inputs: [name], outputs: [shape], attributes: { start: { type: 'int', value: -1 } } });
      nodes.push({ opType: 'Concat', inputs: ['alki_calib_minus1', shape], outputs: [lastDim], attributes: { axis: { type: 'int', value: 0 } } });
      nodes.push({ opType: 'Reshape', inputs: [name, lastDim], outputs: [x2d], attributes: {} });
      if (needX) outs.push({ name: x2d, elemType: DataType.FLOAT });
      const entry: { x?: string; gram?: string } = needX ? { x: x2d } : {};
      if (request.gram) {
        const t = `alki_calib_${j}_xt`;
        const g = `alki_calib_${j}_gram`;
        nodes.push({ opType: 'Transpose', inputs: [x2d], outputs: [t], attributes: { perm: { type: 'ints', value: [1, 0] } } });
        nodes.push({ opType: 'MatMul', inputs: [t, x2d], outputs: [g], attributes: {} });
        outs.push({ name: g, elemType: DataType.FLOAT });
        entry.gram = g;
      }
      outputs.set(name, entry);
    });
    return { graph: { ...base, nodes, initializers: [...base.initializers, ...extraInits], outputs: outs }, outputs };
  }

  private feeds(session: ort.InferenceSession, batch: number[][]): Record<string, ort.Tensor> {
    const B = batch.length;
    const S = batch[0].length;
    const feeds: Record<string, ort.Tensor> = { ...this.weightFeeds };
    for (const name of session.inputNames) {
      if (name in this.weightFeeds) continue;
      if (name === 'input_ids') feeds[name] = new ort.Tensor('int64', BigInt64Array.from(batch.flat().map(BigInt)), [B, S]);
      else if (name === 'attention_mask') feeds[name] = new ort.Tensor('int64', new BigInt64Array(B * S).fill(1n), [B, S]);
      else if (name === 'position_ids') feeds[name] = new ort.Tensor('int64', BigInt64Array.from({ length: B * S }, (_, k) => BigInt(k % S)), [B, S]);
      else if (name.startsWith('past_key_values.')) {
        const info = this.model.graph.inputs.find((v) => v.name === name)!;
        const dims = (info.shape ?? []).map((d, k) => (k === 0 ? B : typeof d === 'number' ? d : 0));
        feeds[name] = new ort.Tensor('float32', new Float32Array(0), dims);
      } else if (!this.layers.some((l) => l.input === name)) {
        throw new AlkiError('BAD_INPUT', `calibration cannot feed the graph input "${name}"`, 'calibrated methods run decoder graphs fed by input_ids (with optional attention_mask, position_ids, past_key_values.*); use method "rtn" for other graphs');
      }
    }
    return feeds;
  }

  /**
   * Runs `fn` with a session of `graph`. Large float weights become graph inputs fed from the model's current
   * tensors instead of initializers: encoding ~200 MB of weights into protobuf and parsing them back, twice per
   * layer, took seconds per TinyLlama layer in the CPU profile — more than the GEMMs' per-run packing of B costs.
   */
  private async withSession(graph: Graph, fn: (s: ort.InferenceSession) => Promise<void>): Promise<void> {
    const asInputs = graph.initializers.filter((t) => t.dataType === DataType.FLOAT && t.data instanceof Float32Array && t.data.length >= WEIGHT_INPUT_MIN);
    const moved = new Set(asInputs.map((t) => t.name));
    const sliced: Graph = {
      ...graph,
      initializers: graph.initializers.filter((t) => !moved.has(t.name)),
      inputs: [...graph.inputs, ...asInputs.map((t) => ({ name: t.name, elemType: DataType.FLOAT, shape: t.dims }))],
    };
    const model = createModel(sliced, { opsets: Object.fromEntries(this.model.opsetImports.map((o) => [o.domain, o.version])) });
    const s = await ort.InferenceSession.create(encodeModel(model), { graphOptimizationLevel: 'all', interOpNumThreads: 1 });
    const weights: Record<string, ort.Tensor> = {};
    for (const t of asInputs) weights[t.name] = new ort.Tensor('float32', t.data as Float32Array, t.dims);
    this.weightFeeds = weights;
    try {
      await fn(s);
    } finally {
      this.weightFeeds = {};
      await s.release();
    }
  }
}

/** Float initializers with at least this many elements are fed as inputs to calibration sessions. */
const WEIGHT_INPUT_MIN = 65536;
