import type { InferenceSession, Tensor } from 'onnxruntime-common';
import { AlkiError } from '@alki/core';

/** The Tensor class of the onnxruntime build in use (onnxruntime-node or onnxruntime-web). */
export type TensorConstructor = typeof Tensor;

/** A past key or value tensor of one layer. */
export type KvCache = Tensor[];

/** Layout of a decoder's KV cache, read from the graph's inputs. */
export interface KvLayout {
  names: string[];
  numKvHeads: number;
  headDim: number;
  /** Output name that carries each input's updated cache. */
  presentNames: string[];
}

/** What one forward pass returns. */
export interface ForwardResult {
  /** [batch, seq, vocab], row-major. */
  logits: Float32Array;
  vocabSize: number;
  /** Updated cache, to pass as `past` of the next step. */
  present: KvCache;
}

/**
 * A decoder graph with the transformers.js I/O names (input_ids, attention_mask, position_ids,
 * past_key_values.*) over an onnxruntime session of any build: onnxruntime-node (DecoderSession.load)
 * or onnxruntime-web (the browser entry, `@alki/runtime/web`). Browser-safe.
 */
export class Decoder {
  constructor(
    readonly session: InferenceSession,
    private readonly TensorClass: TensorConstructor,
    readonly kv: KvLayout = kvLayout(session),
    private readonly hasPositionIds = session.inputNames.includes('position_ids'),
    /** The logits' last dimension when the graph fixes it: token ids must stay below it. */
    readonly vocabSize: number | undefined = logitsWidth(session),
  ) {}

  /** An empty cache for `batch` sequences. */
  emptyCache(batch = 1): KvCache {
    return this.kv.names.map(() => new this.TensorClass('float32', new Float32Array(0), [batch, this.kv.numKvHeads, 0, this.kv.headDim]));
  }

  /**
   * Runs the decoder on `ids` (one row per sequence, all the same length) after
   * `past` (whose length is `pastLength`). Positions continue from `pastLength`.
   */
  async forward(ids: number[][], past: KvCache, pastLength: number): Promise<ForwardResult> {
    const batch = ids.length;
    const seq = ids[0]?.length ?? 0;
    if (batch === 0 || seq === 0)
      throw new AlkiError('BAD_INPUT', 'nothing to run: the token sequence is empty', 'give at least one token (a prompt, or a tokenizer that adds BOS)');
    const V = this.vocabSize;
    for (const row of ids) {
      if (row.length !== seq) throw new AlkiError('BAD_INPUT', 'the sequences of one batch must have the same length');
      for (const id of row) {
        if (!Number.isInteger(id) || id < 0 || (V !== undefined && id >= V)) {
          throw new AlkiError(
            'BAD_INPUT',
            `token id ${id} is outside the model's vocabulary${V !== undefined ? ` (0 … ${V - 1})` : ''}`,
            'the tokenizer does not belong to this model, or the ids were given by hand: check them',
          );
        }
      }
    }
    const total = pastLength + seq;
    const flat = new BigInt64Array(batch * seq);
    const pos = new BigInt64Array(batch * seq);
    for (let b = 0; b < batch; b++) {
      for (let s = 0; s < seq; s++) {
        flat[b * seq + s] = BigInt(ids[b][s]);
        pos[b * seq + s] = BigInt(pastLength + s);
      }
    }
    const feeds: Record<string, Tensor> = {
      input_ids: new this.TensorClass('int64', flat, [batch, seq]),
      attention_mask: new this.TensorClass('int64', new BigInt64Array(batch * total).fill(1n), [batch, total]),
    };
    if (this.hasPositionIds) feeds.position_ids = new this.TensorClass('int64', pos, [batch, seq]);
    this.kv.names.forEach((n, i) => (feeds[n] = past[i]));
    let out: InferenceSession.OnnxValueMapType;
    try {
      out = await this.session.run(feeds);
    } catch (e) {
      const first = ortMessage(e);
      throw new AlkiError(
        'RUNTIME',
        `onnxruntime failed while running the model on ${batch} × ${seq} tokens after ${pastLength}: ${first}`,
        'check that the bundle verifies (`alki info --verify`) and that the inputs fit its context; if both hold, report this with --verbose',
        { cause: e },
      );
    }
    const logits = out.logits as Tensor;
    return {
      logits: logits.data as Float32Array,
      vocabSize: logits.dims[logits.dims.length - 1],
      present: this.kv.presentNames.map((n) => out[n] as Tensor),
    };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** The logits' last dimension when the graph fixes it. */
function logitsWidth(session: InferenceSession): number | undefined {
  const logits = session.outputMetadata.find((m) => m.name === 'logits');
  const last = logits?.isTensor ? logits.shape[logits.shape.length - 1] : undefined;
  return typeof last === 'number' && last > 0 ? last : undefined;
}

function kvLayout(session: InferenceSession): KvLayout {
  const names = session.inputNames.filter((n) => n.startsWith('past_key_values.'));
  let numKvHeads = 0;
  let headDim = 0;
  for (const m of session.inputMetadata) {
    if (m.isTensor && m.name === names[0]) {
      const [, kvh, , hd] = m.shape;
      if (typeof kvh === 'number') numKvHeads = kvh;
      if (typeof hd === 'number') headDim = hd;
    }
  }
  if (!session.inputNames.includes('input_ids') || !session.outputNames.includes('logits')) {
    throw new AlkiError(
      'BAD_BUNDLE',
      'the ONNX model is not a decoder with input_ids → logits',
      'Alki runs causal language-model graphs with the transformers.js input/output names',
    );
  }
  if (names.length > 0 && (!numKvHeads || !headDim)) {
    throw new AlkiError('BAD_BUNDLE', 'the KV-cache inputs of the model have no fixed head count/size', 'export the model with Alki');
  }
  const presentNames = names.map((n) => n.replace('past_key_values.', 'present.'));
  for (const p of presentNames) {
    if (!session.outputNames.includes(p)) throw new AlkiError('BAD_BUNDLE', `the model has no output ${p} for its cache input`, 'export the model with Alki');
  }
  return { names, numKvHeads, headDim, presentNames };
}

/**
 * onnxruntime's error text without the C++ source paths and function signatures it carries
 * ("/onnxruntime_src/…cc:264 onnxruntime::common::Status onnxruntime::…(…) …"): the sentence a person can read.
 */
export function ortMessage(e: unknown): string {
  let m = String((e as Error)?.message ?? e).split('\n')[0];
  // Source paths of the build machine: /onnxruntime_src/…cc:264 (node), /mnt/…/s/onnxruntime/…/matmul_nbits.h:21 (web).
  m = m.replace(/\/onnxruntime_src\/\S+:\d+\s*/g, '').replace(/\/\S*\/onnxruntime\/\S+\.(?:h|cc|cpp|c):\d+\s*/g, '');
  // Drop "onnxruntime::ns::Type onnxruntime::ns::fn(args…)" signatures, up to the matching closing parenthesis.
  for (let i = m.indexOf('onnxruntime::'); i >= 0; i = m.indexOf('onnxruntime::')) {
    const open = m.indexOf('(', i);
    if (open < 0) break;
    let depth = 0;
    let end = open;
    for (; end < m.length; end++) {
      if (m[end] === '(') depth++;
      else if (m[end] === ')' && --depth === 0) break;
    }
    // From the first "onnxruntime::" (a return type such as onnxruntime::common::Status, or the function itself).
    m = `${m.slice(0, i)} ${m.slice(end + 1)}`;
  }
  m = m.replace(/\s+/g, ' ').trim();
  return m.length > 300 ? `${m.slice(0, 297)}…` : m;
}
