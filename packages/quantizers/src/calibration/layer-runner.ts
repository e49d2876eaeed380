import { ort } from '@alki/runtime';
import { AlkiError, throwIfAborted } from '@alki/core';
import { DataType, int64Tensor, type Graph, type LayerSpan, type Model, type Tensor, type ValueInfo } from '@alki/onnx';
import { noteOrtOutput } from '../ort/memory.js';
import { SliceSessions, type PreparedSlice } from './slice-sessions.js';
import { extractSubgraph } from './subgraph.js';

/** Statistics of one linear-layer input X ([tokens, K]) over all calibration tokens. */
export interface InputStats {
  K: number;
  tokens: number;
  /** Σ XᵀX, [K, K] row-major (GPTQ's Hessian is 2/n of it). The runner reuses this buffer at its next `collect`. */
  gram?: Float32Array;
  /** Σ |x| per channel (divide by tokens for the mean). */
  absSum?: Float64Array;
  /** max |x| per channel. */
  absMax?: Float32Array;
  /** Token rows of X spread over all batches and positions, [rows, K] (AWQ's output-error search). */
  rows?: Float32Array;
  /** Σ X̃ᵀX [K, K] against the float model's input X (StatsRequest.float). */
  cross?: Float32Array;
}

export interface StatsRequest {
  gram?: boolean;
  absMean?: boolean;
  absMax?: boolean;
  /** Keep up to this many token rows of X. */
  rows?: number;
  /**
   * Also keep the layer's outputs, from the weights as they are now, as the next layer's inputs (one pass instead
   * of `collect` + `advance`; right for methods whose changes are exact in float, as AutoAWQ does for AWQ).
   */
  advance?: boolean;
  /**
   * Asymmetric calibration: also run the layer on the float model's own hidden states with these float weights
   * (by initializer name; others as they are), and return Σ X̃ᵀX (X̃: this model's input, X: the float model's).
   */
  float?: ReadonlyMap<string, Float32Array>;
  /** With `float`: keep the float layer's outputs as the float stream's next inputs. */
  advanceFloat?: boolean;
  /**
   * Keep the requested values of this model's stream until the layer advances: the layer's later passes and its
   * `advance` then start from them instead of recomputing the layer up to them (they are [batch, seq, K] values).
   */
  keep?: boolean;
  /**
   * With `float`: keep these values of the float stream (linear inputs a later pass of this layer asks for), whose
   * Σ X̃ᵀX then reads them instead of running the float layer again.
   */
  keepFloat?: string[];
}

/**
 * Runs a decoder one layer at a time over calibration samples: only the
 * current layer's weights are in use, and the hidden states between layers
 * are kept in memory (samples × seqlen × hidden). Weights are read from
 * `model` when a layer runs, so a quantizer that replaces a layer's weights
 * by their dequantized values before `advance` makes the next layer see
 * quantized inputs (sequential quantization). Layers of the same structure
 * share one onnxruntime session, and outputs are written into buffers reused
 * from layer to layer: XᵀX accumulates inside onnxruntime (Gemm with β = 1
 * into its own input, by lower block rows), hidden states alternate between
 * two sets of buffers. Call `release` when done.
 */
export class LayerRunner {
  private hidden: Float32Array[] = [];
  private spare: Float32Array[] = [];
  /** The float model's hidden states (asymmetric calibration), and the next layer's. */
  private floatHidden?: Float32Array[];
  private floatSpare: Float32Array[] = [];
  private floatAdvanced = false;
  private readonly batches: number[][][];
  private readonly sessions: SliceSessions;
  /** Output buffers reused across batches and layers, by role. */
  private readonly buffers = new Map<string, Float32Array>();
  /** Values of the current layer kept by a pass (StatsRequest.keep / keepFloat), one [tokens, K] array per batch. */
  private readonly kept = new Map<string, Float32Array[]>();
  /** The kept values' own dims per batch (a [batch, seq, K] value, or a flattened [tokens, K] one). */
  private readonly keptDims = new Map<string, number[][]>();
  private readonly floatKept = new Map<string, Float32Array[]>();
  /** Arrays of values kept for an earlier layer, reused by the next one's. */
  private keptFree: Float32Array[] = [];
  readonly hiddenSize: number;

  constructor(
    private readonly model: Model,
    readonly layers: LayerSpan[],
    samples: number[][],
    hiddenSize: number,
    batchSize = 4,
    private readonly signal?: AbortSignal,
    /** Also keep the float model's hidden states, which only float weights touch (see StatsRequest.float). */
    private readonly withFloatStream = false,
  ) {
    if (samples.length === 0) throw new AlkiError('BAD_INPUT', 'no calibration samples', 'pass --calib with enough text for at least one sample');
    const len = samples[0].length;
    if (samples.some((s) => s.length !== len)) throw new AlkiError('BAD_INPUT', 'calibration samples must all have the same length');
    this.batches = [];
    for (let i = 0; i < samples.length; i += batchSize) this.batches.push(samples.slice(i, i + batchSize));
    this.hiddenSize = hiddenSize;
    this.sessions = new SliceSessions(model);
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
    const p = await this.sessions.prepare(graph);
    this.hidden = [];
    for (const batch of this.batches) {
      const out = await p.session.run(this.feeds(graph, p, batch));
      this.hidden.push(out[p.name(this.layers[0].input)].data as Float32Array);
    }
    if (this.hasFloatStream) this.floatHidden = this.hidden.map((h) => Float32Array.from(h));
  }

  /** Whether the float model's hidden states are kept: asked for at construction, and the graph is cut into layers. */
  get hasFloatStream(): boolean {
    return this.withFloatStream && !!this.layers[0].input;
  }

  /** Releases the onnxruntime sessions. */
  async release(): Promise<void> {
    this.kept.clear();
    this.keptDims.clear();
    this.floatKept.clear();
    this.keptFree = [];
    await this.sessions.release();
  }

  /** Checks values for NaN/Inf, naming where they come from. */
  private checkFinite(where: string, data: Float32Array): void {
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) {
        throw new AlkiError(
          'NUMERIC',
          `activations ${where} contain ${Number.isNaN(data[i]) ? 'NaN' : 'Inf'}`,
          'the model overflows in float32 on the calibration data, or its weights are damaged; check the checkpoint, or try other calibration text',
        );
      }
    }
  }

  /** A buffer of `length` floats reused under `role` (grown when needed); zeroed on request. */
  private buffer(role: string, length: number, zero = false): Float32Array {
    let b = this.buffers.get(role);
    if (!b || b.length < length) this.buffers.set(role, (b = new Float32Array(length)));
    else if (zero) b.fill(0, 0, length);
    return b.subarray(0, length);
  }

  /** Collects statistics of the given values (linear inputs) of layer `i` over all samples. */
  async collect(i: number, inputs: string[], request: StatsRequest): Promise<Map<string, InputStats>> {
    // One pass that advances this model's stream must advance the float model's too (or the two fall out of step).
    if (request.advance && this.floatHidden && !(request.float && request.advanceFloat))
      throw new AlkiError('RUNTIME', 'a statistics pass that advances the hidden states must advance the float stream too (StatsRequest.advanceFloat)');
    const widths = inputs.map((name) => this.widthOf(name));
    const b = this.statsGraph(i, inputs, widths, request);
    const p = await this.sessions.prepare(b.graph);
    const stats = new Map<string, InputStats>();
    inputs.forEach((name, j) => stats.set(name, { K: widths[j], tokens: 0 }));
    // The running sums of the Gram matrices' lower block rows, [r1 − r0, r1] each.
    const sums = new Map<string, Float32Array>();
    for (const names of b.outputs.values()) for (const blk of names.gram ?? []) sums.set(blk.acc, this.buffer(blk.acc, (blk.r1 - blk.r0) * blk.r1, true));
    // Rows kept from each batch: an even share of `request.rows`, as far as the batch has tokens.
    const rowPlan: number[] = [];
    for (const batch of this.batches) {
      const left = (request.rows ?? 0) - rowPlan.reduce((a, v) => a + v, 0);
      rowPlan.push(Math.max(0, Math.min(Math.ceil((request.rows ?? 0) / this.batches.length), batch.length * this.seqLen, left)));
    }
    const crossSums = new Map<string, Float32Array>();
    if (request.float) inputs.forEach((name, j) => crossSums.set(name, this.buffer(`cross${j}`, widths[j] * widths[j], true)));
    const rowsKept = new Map(inputs.map((name) => [name, 0]));
    // Float X an earlier pass kept is fed (the graph reads it, see statsGraph); then this pass's own kept values.
    const floatFed = inputs.filter((name) => this.floatKept.has(name));
    if (request.keep)
      for (const [j, name] of inputs.entries()) {
        // Its arrays would be refilled while this very pass reads them.
        if (this.kept.has(name)) throw new AlkiError('RUNTIME', `"${name}" of layer ${i} is kept already: a pass cannot keep it again`);
        this.kept.set(name, this.keptArrays(widths[j]));
        this.keptDims.set(name, []);
      }
    const keepFloat = request.float && request.advanceFloat ? (request.keepFloat ?? []) : [];
    for (const name of keepFloat) this.floatKept.set(name, this.keptArrays(this.widthOf(name)));
    /** Where batch `bi`'s X of input j goes: the kept array, or a scratch buffer. */
    const xOf = (j: number, bi: number, size: number) => (request.keep ? this.kept.get(inputs[j])![bi] : this.buffer(`x${j}`, size));
    for (let bi = 0; bi < this.batches.length; bi++) {
      throwIfAborted(this.signal);
      const tokens = this.batches[bi].length * this.seqLen;
      const feeds = this.layerFeeds(b.graph, p, i, bi);
      // null: onnxruntime allocates the output (a kept value's dims, a few int64s).
      const fetches: Record<string, ort.Tensor | null> = {};
      inputs.forEach((name, j) => {
        const names = b.outputs.get(name)!;
        const st = stats.get(name)!;
        if (request.keep) fetches[p.name(keptDimsOf(j))] = null;
        if (names.x) fetches[p.name(names.x)] = new ort.Tensor('float32', xOf(j, bi, tokens * st.K), [tokens, st.K]);
        for (const blk of names.gram ?? [])
          feeds[p.name(blk.acc)] = fetches[p.name(blk.out)] = new ort.Tensor('float32', sums.get(blk.acc)!, [blk.r1 - blk.r0, blk.r1]);
      });
      if (request.advance) fetches[p.name(this.layers[i].output)] = this.nextHidden(bi);
      if (request.float) {
        const shape = [this.batches[bi].length, this.seqLen, this.hiddenSize];
        if (b.graph.inputs.some((v) => v.name === FLOAT_PREFIX + this.layers[i].input))
          feeds[p.name(FLOAT_PREFIX + this.layers[i].input)] = new ort.Tensor('float32', this.floatHidden![bi], shape);
        for (const name of floatFed) {
          const j = inputs.indexOf(name);
          feeds[p.name(floatX(j))] = new ort.Tensor('float32', this.floatKept.get(name)![bi], [tokens, widths[j]]);
        }
        keepFloat.forEach((name, m) => {
          const K = this.floatKept.get(name)![bi].length / tokens;
          fetches[p.name(keptFloatX(m))] = new ort.Tensor('float32', this.floatKept.get(name)![bi], [tokens, K]);
        });
        inputs.forEach((name, j) => {
          const K = widths[j];
          const sum = crossSums.get(name)!;
          for (const blk of b.outputs.get(name)!.cross!)
            feeds[p.name(blk.acc)] = fetches[p.name(blk.out)] = new ort.Tensor('float32', sum.subarray(blk.r0 * K, blk.r1 * K), [blk.r1 - blk.r0, K]);
        });
        if (request.advanceFloat) fetches[p.name(FLOAT_PREFIX + this.layers[i].output)] = this.nextHidden(bi, this.floatSpare);
      }
      const out = await p.session.run(feeds, fetches);
      noteOrtOutput(Object.values(fetches).reduce((sum, t) => sum + (t?.size ?? 0) * 4, 0));
      if (request.keep) inputs.forEach((name, j) => this.keptDims.get(name)!.push(Array.from(out[p.name(keptDimsOf(j))].data as BigInt64Array, Number)));
      if (request.advance) this.checkFinite(`leaving layer ${i}`, this.spare[bi]);
      inputs.forEach((name, j) => {
        const names = b.outputs.get(name)!;
        const st = stats.get(name)!;
        const K = st.K;
        st.tokens += tokens;
        // Kept only, with a Gram: its check at the end covers X.
        if (!names.x || (request.gram && !(request.absMean || request.absMax || request.rows))) return;
        const x = xOf(j, bi, tokens * K);
        this.checkFinite(`entering ${name.replace(/\.weight$/, '')} (layer ${i})`, x);
        if (request.absMean || request.absMax) {
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
        if (request.rows) {
          // Rows spread evenly over all batches and positions, not just the first sequence.
          st.rows ??= new Float32Array(rowPlan.reduce((a, v) => a + v, 0) * K);
          const take = rowPlan[bi];
          const step = tokens / take;
          for (let r = 0; r < take; r++) st.rows.set(x.subarray(Math.floor(r * step) * K, (Math.floor(r * step) + 1) * K), (rowsKept.get(name)! + r) * K);
          rowsKept.set(name, rowsKept.get(name)! + take);
        }
      });
    }
    inputs.forEach((name, j) => {
      const blocks = b.outputs.get(name)!.gram;
      if (!blocks) return;
      const st = stats.get(name)!;
      const K = st.K;
      const gram = (st.gram = this.buffer(`gram${j}`, K * K));
      // Lower block rows into place, mirrored above the diagonal.
      for (const blk of blocks) {
        const sum = sums.get(blk.acc)!;
        for (let r = blk.r0; r < blk.r1; r++) {
          const row = sum.subarray((r - blk.r0) * blk.r1, (r - blk.r0) * blk.r1 + r + 1);
          gram.set(row, r * K);
          for (let c = 0; c < r; c++) gram[c * K + r] = row[c];
        }
      }
      // A NaN/Inf input poisons the whole sum: one check at the end names the layer all the same.
      this.checkFinite(`entering ${name.replace(/\.weight$/, '')} (layer ${i})`, gram);
    });
    if (request.float) inputs.forEach((name) => (stats.get(name)!.cross = crossSums.get(name)));
    if (request.float && request.advanceFloat) this.floatAdvanced = true;
    if (request.advance) this.swap();
    return stats;
  }

  /** The inputs of the next layer to run, one array per batch, then the float stream's (what a checkpoint records). */
  get hiddenStates(): Float32Array[] {
    return this.floatHidden ? [...this.hidden, ...this.floatHidden] : this.hidden;
  }

  /** Continues from recorded {@link hiddenStates} instead of {@link start} (a resumed calibration). */
  restore(hidden: Float32Array[]): void {
    const B = this.batches.length;
    const streams = this.hasFloatStream ? 2 : 1;
    if (hidden.length !== streams * B || hidden.some((h, j) => h.length !== this.batches[j % B].length * this.seqLen * this.hiddenSize)) {
      throw new AlkiError('BAD_INPUT', 'the checkpoint was recorded with other calibration data', 'build again without --resume');
    }
    this.hidden = hidden.slice(0, B);
    if (streams === 2) this.floatHidden = hidden.slice(B);
  }

  /** The initializers layer `i` reads (-1: the part before layer 0, which {@link start} runs). */
  initializersOf(i: number): Tensor[] {
    if (i < 0) return this.layers[0].input ? extractSubgraph(this.model, [this.layers[0].input], []).initializers : [];
    return extractSubgraph(this.model, [this.layers[i].output], this.cuts(i)).initializers;
  }

  /**
   * Runs layer `i` with the model's current weights and keeps its outputs as the next layer's inputs. A float stream
   * not advanced by a `collect` of this layer (a layer left in float) advances with the same weights.
   */
  async advance(i: number): Promise<void> {
    const span = this.layers[i];
    // A float stream advanced here runs the same graph from its own hidden states: then nothing kept is used.
    const floatHere = !!this.floatHidden && !this.floatAdvanced;
    const graph = extractSubgraph(this.model, [span.output], floatHere ? this.cuts(i) : this.cutsWithKept(i));
    const p = await this.sessions.prepare(graph);
    for (let bi = 0; bi < this.batches.length; bi++) {
      throwIfAborted(this.signal);
      const out = this.nextHidden(bi);
      const feeds = this.layerFeeds(graph, p, i, bi);
      await p.session.run(feeds, { [p.name(span.output)]: out });
      noteOrtOutput(out.size * 4);
      this.checkFinite(`leaving layer ${i}`, this.spare[bi]);
      if (floatHere) {
        // The same feeds, but for the hidden states.
        feeds[p.name(span.input)] = new ort.Tensor('float32', this.floatHidden![bi], out.dims);
        await p.session.run(feeds, { [p.name(span.output)]: this.nextHidden(bi, this.floatSpare) });
      }
    }
    if (this.floatHidden) this.floatAdvanced = true;
    this.swap();
  }

  /** The next layer's inputs become the current ones (both streams). */
  private swap(): void {
    for (const arrays of [...this.kept.values(), ...this.floatKept.values()]) this.keptFree.push(...arrays);
    this.kept.clear();
    this.keptDims.clear();
    this.floatKept.clear();
    [this.hidden, this.spare] = [this.spare, this.hidden];
    if (this.floatHidden && this.floatAdvanced) [this.floatHidden, this.floatSpare] = [this.floatSpare, this.floatHidden];
    this.floatAdvanced = false;
  }

  /** One [tokens, K] array per batch for a kept value, from those an earlier layer kept when their sizes match. */
  private keptArrays(K: number): Float32Array[] {
    return this.batches.map((batch) => {
      const size = batch.length * this.seqLen * K;
      const at = this.keptFree.findIndex((a) => a.length === size);
      return at >= 0 ? this.keptFree.splice(at, 1)[0] : new Float32Array(size);
    });
  }

  /** The layer's cut: its input, and the values kept by this layer's earlier passes (see StatsRequest.keep). */
  private cutsWithKept(i: number): ValueInfo[] {
    const kept = [...this.keptDims].map(([name, dims]) => ({
      name,
      elemType: DataType.FLOAT,
      shape: dims[0].map((d, k) => (k === dims[0].length - 1 ? d : `kept_d${k}`)),
    }));
    return [...this.cuts(i), ...kept];
  }

  /** Frees the arrays kept for reuse by a next layer's kept values (when no later layer keeps any). */
  releaseKept(): void {
    this.keptFree = [];
  }

  /** Batch `bi`'s buffer for the next layer's inputs (of the float stream with its spares), as an output tensor. */
  private nextHidden(bi: number, spare = this.spare): ort.Tensor {
    const size = this.batches[bi].length * this.seqLen * this.hiddenSize;
    if (spare[bi]?.length !== size) spare[bi] = new Float32Array(size);
    return new ort.Tensor('float32', spare[bi], [this.batches[bi].length, this.seqLen, this.hiddenSize]);
  }

  /** Input width K of the linear layer(s) reading `value`. */
  widthOf(value: string): number {
    for (const n of this.model.graph.nodes) {
      const w = n.opType === 'MatMul' && n.inputs[0] === value ? this.model.graph.initializers.find((t) => t.name === n.inputs[1]) : undefined;
      if (w) return w.dims[0];
    }
    throw new AlkiError('BAD_INPUT', `no linear layer with a constant weight reads "${value}"`);
  }

  private layerFeeds(graph: Graph, p: PreparedSlice, i: number, bi: number): Record<string, ort.Tensor> {
    const feeds = this.feeds(graph, p, this.batches[bi]);
    const B = this.batches[bi].length;
    for (const { name } of graph.inputs) {
      if (name === this.layers[i].input) feeds[p.name(name)] = new ort.Tensor('float32', this.hidden[bi], [B, this.seqLen, this.hiddenSize]);
      const kept = this.kept.get(name)?.[bi];
      if (kept) feeds[p.name(name)] = new ort.Tensor('float32', kept, this.keptDims.get(name)![bi]);
    }
    return feeds;
  }

  private cuts(i: number): ValueInfo[] {
    return this.layers[i].input ? [{ name: this.layers[i].input, elemType: DataType.FLOAT, shape: ['batch', 'seq', this.hiddenSize] }] : [];
  }

  /**
   * The layer slice plus, for each requested value X: X flattened to [tokens, K] (when a statistic needs it),
   * and the lower block rows of Σ XᵀX: for rows [r0, r1), Gemm(X[:, r0:r1]ᵀ, X[:, 0:r1], C = the running sum) with
   * its output bound to C. Block rows skip most of the symmetric upper half and keep each onnxruntime output
   * under ~25 MB, small enough for the allocator to recycle (see ort/memory.ts).
   */
  private statsGraph(i: number, inputs: string[], widths: number[], request: StatsRequest): { graph: Graph; outputs: Map<string, StatsOutputs> } {
    const base = extractSubgraph(this.model, request.advance ? [...inputs, this.layers[i].output] : inputs, this.cutsWithKept(i));
    const outputs = new Map<string, StatsOutputs>();
    const needX = !!(request.absMean || request.absMax || request.rows || request.keep);
    const extraInits = [int64Tensor('alki_calib_minus1', [1], [-1])];
    const nodes = [...base.nodes];
    const extraInputs: ValueInfo[] = [];
    const outs: ValueInfo[] = [];
    /** Columns [from, to) of a [tokens, K] value. */
    const cols = (x: string, from: number, to: number, out: string): string => {
      if (!extraInits.some((t) => t.name === 'alki_calib_axis1')) extraInits.push(int64Tensor('alki_calib_axis1', [1], [1]));
      extraInits.push(int64Tensor(`${out}_starts`, [1], [from]), int64Tensor(`${out}_ends`, [1], [to]));
      nodes.push({ opType: 'Slice', inputs: [x, `${out}_starts`, `${out}_ends`, 'alki_calib_axis1'], outputs: [out], attributes: {} });
      return out;
    };
    /** Rows [r0, r1) of a running sum Σ AᵀB: Gemm(A, B, C = the sum) with its output bound to C (fed back each batch). */
    const accumulate = (tag: string, a: string, b: string, r0: number, r1: number, width: number): StatsBlock => {
      const acc = `${tag}_acc`;
      const out = `${tag}_out`;
      extraInputs.push({ name: acc, elemType: DataType.FLOAT, shape: [r1 - r0, width] });
      nodes.push({ opType: 'Gemm', inputs: [a, b, acc], outputs: [out], attributes: { transA: { type: 'int', value: 1 } } });
      outs.push({ name: out, elemType: DataType.FLOAT });
      return { r0, r1, acc, out };
    };
    /** `value` reshaped to [tokens, K] as `out` (shape [-1, K], K its last dim, as `${tag}_k`). */
    const flatten = (value: string, tag: string, out: string): string => {
      nodes.push({ opType: 'Shape', inputs: [value], outputs: [`${tag}_shape`], attributes: { start: { type: 'int', value: -1 } } });
      nodes.push({ opType: 'Concat', inputs: ['alki_calib_minus1', `${tag}_shape`], outputs: [`${tag}_k`], attributes: { axis: { type: 'int', value: 0 } } });
      nodes.push({ opType: 'Reshape', inputs: [value, `${tag}_k`], outputs: [out], attributes: {} });
      return out;
    };
    inputs.forEach((name, j) => {
      const x2d = flatten(name, `alki_calib_${j}`, `alki_calib_${j}_x`);
      if (needX) outs.push({ name: x2d, elemType: DataType.FLOAT });
      if (request.keep) {
        nodes.push({ opType: 'Shape', inputs: [name], outputs: [keptDimsOf(j)], attributes: {} });
        outs.push({ name: keptDimsOf(j), elemType: DataType.INT64 });
      }
      const entry: StatsOutputs = needX ? { x: x2d } : {};
      if (request.gram) {
        const K = widths[j];
        // Two or more block rows skip a quarter or more of the flops; tiny widths are not worth the extra nodes.
        const rows = K <= 512 ? K : Math.max(1, Math.min(Math.ceil(K / 2), Math.floor(GRAM_OUTPUT_FLOATS / K)));
        entry.gram = [];
        for (let r0 = 0; r0 < K; r0 += rows) {
          const r1 = Math.min(K, r0 + rows);
          const tag = `alki_calib_${j}_${r0}`;
          const left = r1 === K ? x2d : cols(x2d, 0, r1, `${tag}_left`);
          const block = r0 === 0 && r1 === K ? x2d : cols(x2d, r0, r1, `${tag}_rows`);
          entry.gram.push(accumulate(tag, block, left, r0, r1, r1));
        }
      }
      outputs.set(name, entry);
    });
    if (request.advance) outs.push({ name: this.layers[i].output, elemType: DataType.FLOAT });
    const floatInits: Tensor[] = [];
    // The float stream's values a pass needs and no earlier pass kept, and those it keeps for later passes.
    const keepFloat = request.float && request.advanceFloat ? (request.keepFloat ?? []) : [];
    const floatNeeded = inputs.filter((name) => !this.floatKept.has(name));
    if (request.float && (floatNeeded.length > 0 || request.advanceFloat)) {
      // The same slice once more on the float stream, every value prefixed, with the float weights.
      const fouts = [...floatNeeded, ...keepFloat, ...(request.advanceFloat ? [this.layers[i].output] : [])];
      const fbase = extractSubgraph(this.model, fouts, this.cuts(i));
      // Subgraph bodies (If, Loop) would read outer values by their unprefixed names: this model's, not the float one's.
      if (fbase.nodes.some((n) => Object.values(n.attributes).some((a) => a.type === 'graph')))
        throw new AlkiError('UNSUPPORTED_CONFIG', 'float targets cannot pair a layer with control flow (If/Loop)', 'use --no-float-targets');
      const shared = new Set(fbase.inputs.map((v) => v.name).filter((n) => n !== this.layers[i].input));
      const f = (n: string) => (n === '' || shared.has(n) ? n : FLOAT_PREFIX + n);
      for (const n of fbase.nodes) nodes.push({ ...n, name: undefined, inputs: n.inputs.map(f), outputs: n.outputs.map(f) });
      floatInits.push(...fbase.initializers.map((t) => ({ ...t, name: f(t.name), data: request.float!.get(t.name) ?? t.data })));
      extraInputs.push({ name: f(this.layers[i].input), elemType: DataType.FLOAT, shape: ['batch', 'seq', this.hiddenSize] });
      // Graph inputs only the float slice reads (the mask, when only it runs the attention).
      for (const v of fbase.inputs) if (shared.has(v.name) && !base.inputs.some((b) => b.name === v.name)) extraInputs.push(v);
      for (const name of floatNeeded)
        nodes.push({ opType: 'Reshape', inputs: [f(name), `alki_calib_${inputs.indexOf(name)}_k`], outputs: [floatX(inputs.indexOf(name))], attributes: {} });
      keepFloat.forEach((name, m) => outs.push({ name: flatten(f(name), `alki_calib_keep_${m}`, keptFloatX(m)), elemType: DataType.FLOAT }));
      if (request.advanceFloat) outs.push({ name: f(this.layers[i].output), elemType: DataType.FLOAT });
    }
    if (request.float) {
      // Σ X̃ᵀX against the float X computed above, or kept by an earlier pass (then a graph input).
      inputs.forEach((name, j) => {
        if (this.floatKept.has(name)) extraInputs.push({ name: floatX(j), elemType: DataType.FLOAT, shape: ['tokens', widths[j]] });
      });
      inputs.forEach((name, j) => {
        const K = widths[j];
        const x2d = `alki_calib_${j}_x`;
        const fx = floatX(j);
        // Σ X̃ᵀX by block rows, each output under GRAM_OUTPUT_FLOATS as for XᵀX.
        const rows = Math.max(1, Math.min(K, Math.floor(GRAM_OUTPUT_FLOATS / K)));
        const blocks: StatsBlock[] = [];
        for (let r0 = 0; r0 < K; r0 += rows) {
          const r1 = Math.min(K, r0 + rows);
          const tag = `alki_calib_${j}_cross_${r0}`;
          blocks.push(accumulate(tag, r1 - r0 === K ? x2d : cols(x2d, r0, r1, `${tag}_rows`), fx, r0, r1, K));
        }
        outputs.get(name)!.cross = blocks;
      });
    }
    const inits = [...base.initializers, ...extraInits, ...floatInits];
    return { graph: { ...base, nodes, inputs: [...base.inputs, ...extraInputs], initializers: inits, outputs: outs }, outputs };
  }

  /** Feeds for a slice's graph inputs (token ids, mask, positions, empty past) and its weights, by session name. */
  private feeds(graph: Graph, p: PreparedSlice, batch: number[][]): Record<string, ort.Tensor> {
    const B = batch.length;
    const S = batch[0].length;
    const feeds: Record<string, ort.Tensor> = p.weightFeeds();
    for (const { name } of graph.inputs) {
      const key = p.name(name);
      if (name === 'input_ids') feeds[key] = new ort.Tensor('int64', BigInt64Array.from(batch.flat().map(BigInt)), [B, S]);
      else if (name === 'attention_mask') feeds[key] = new ort.Tensor('int64', new BigInt64Array(B * S).fill(1n), [B, S]);
      else if (name === 'position_ids')
        feeds[key] = new ort.Tensor(
          'int64',
          BigInt64Array.from({ length: B * S }, (_, k) => BigInt(k % S)),
          [B, S],
        );
      else if (name.startsWith('past_key_values.')) {
        const info = this.model.graph.inputs.find((v) => v.name === name)!;
        const dims = (info.shape ?? []).map((d, k) => (k === 0 ? B : typeof d === 'number' ? d : 0));
        feeds[key] = new ort.Tensor('float32', new Float32Array(0), dims);
      } else if (!this.layers.some((l) => l.input === name) && !this.kept.has(name) && !name.startsWith('alki_calib_') && !name.startsWith(FLOAT_PREFIX)) {
        throw new AlkiError(
          'BAD_INPUT',
          `calibration cannot feed the graph input "${name}"`,
          'calibrated methods run decoder graphs fed by input_ids (with optional attention_mask, position_ids, past_key_values.*); use method "rtn" for other graphs',
        );
      }
    }
    return feeds;
  }
}

/** Prefix of the float stream's values in a paired statistics graph (StatsRequest.float). */
const FLOAT_PREFIX = 'alki_f/';
/** The float stream's requested value j as [tokens, K], and kept value m (StatsRequest.keepFloat). */
const floatX = (j: number) => `alki_calib_${j}_fx`;
const keptFloatX = (m: number) => `alki_calib_keep_${m}_fx`;
/** The dims of requested value j, when it is kept. */
const keptDimsOf = (j: number) => `alki_calib_${j}_dims`;

/** Rows [r0, r1) of a sum accumulated in a graph: its input (the running sum) and output. */
interface StatsBlock {
  r0: number;
  r1: number;
  acc: string;
  out: string;
}

/** What the statistics graph returns for one value: X itself, the lower block rows of XᵀX, the rows of X̃ᵀX. */
interface StatsOutputs {
  x?: string;
  gram?: StatsBlock[];
  cross?: StatsBlock[];
}

/** Largest Gram block row in floats (~25 MB): under glibc's 32 MiB mmap threshold, so its memory is recycled. */
const GRAM_OUTPUT_FLOATS = 6 * 1024 * 1024;
