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
  /**
   * Updated cache, to pass as `past` of the next step. With a cache from emptyCache with a capacity it is `past`
   * itself, written in place (or a larger buffer when it was full): take a copyCache before a step if an earlier
   * state is needed again (a shared prefix).
   */
  present: KvCache;
}

/** How a {@link Decoder} runs its graph. */
export interface DecoderOptions {
  /**
   * The graph's past_key_values inputs feed only GroupQueryAttention nodes, which append to a max-length buffer
   * when their past and present are the same memory (onnxruntime's past_present_share_buffer): a cache from
   * emptyCache(batch, capacity) is then updated in place instead of copied into new tensors every step (onnxruntime-
   * node still copies each bound output out after the run, in proportion to the buffer's length: the buffers grow
   * with the sequence instead of being reserved at full length — see {@link Decoder.forward}).
   * DecoderSession.load finds this out from the graph (cacheUpdatedInPlace); set it only where that says true.
   * Default false. Nothing to gain with onnxruntime-web, which copies tensors in and out of its heap anyway.
   */
  kvInPlace?: boolean;
}

/**
 * A decoder graph with the transformers.js I/O names (input_ids, attention_mask, position_ids,
 * past_key_values.*) over an onnxruntime session of any build: onnxruntime-node (DecoderSession.load)
 * or onnxruntime-web (the browser entry, `@alki/runtime/web`). Browser-safe.
 */
export class Decoder {
  readonly kv: KvLayout;
  private readonly hasPositionIds: boolean;
  /** The logits' last dimension when the graph fixes it: token ids must stay below it. */
  readonly vocabSize: number | undefined;
  /** Whether the graph can update a max-length cache in place (see {@link DecoderOptions.kvInPlace}). */
  readonly kvInPlace: boolean;
  /** The buffers emptyCache, copyCache or a growing step made (the graph appends to them in place), with their limit. */
  private readonly buffers = new WeakMap<Tensor, number>();

  constructor(
    readonly session: InferenceSession,
    private readonly TensorClass: TensorConstructor,
    options: DecoderOptions = {},
  ) {
    this.kv = kvLayout(session);
    this.hasPositionIds = session.inputNames.includes('position_ids');
    this.vocabSize = logitsWidth(session);
    this.kvInPlace = !!options.kvInPlace && this.kv.names.length > 0;
  }

  /**
   * An empty cache for `batch` sequences. With a `capacity` and a graph that updates its cache in place
   * ({@link kvInPlace}), one buffer of `capacity` positions per key/value that the steps write into (no copy of the
   * cache per step inside onnxruntime; grown by about an eighth when a step needs more room); otherwise a cache that
   * grows by one copy per step, as transformers.js keeps it. Size it to what is about to be used: onnxruntime-node
   * copies the whole buffer out after every step (a 4096-position buffer made decode 2.7× slower than the copying
   * cache on the TinyLlama shape). `maxPositions` (the model's context) bounds how far a growth reaches ahead.
   */
  emptyCache(batch = 1, capacity = 0, maxPositions = Infinity): KvCache {
    if (this.kvInPlace && capacity > 0) {
      if (!Number.isInteger(capacity)) throw new AlkiError('BAD_INPUT', `the cache capacity must be a whole number of positions, got ${capacity}`);
      return this.buffersOf(batch, capacity, maxPositions);
    }
    const { numKvHeads: h, headDim: d } = this.kv;
    return this.kv.names.map(() => new this.TensorClass('float32', new Float32Array(0), [batch, h, 0, d]));
  }

  /**
   * A copy of a cache's first `length` positions that later steps can append to without touching the original (to
   * branch from a shared prefix: `present` is written in place). A copying cache is copied as it is.
   */
  copyCache(past: KvCache, length: number): KvCache {
    const limit = past.length > 0 ? this.buffers.get(past[0]) : undefined;
    if (limit === undefined) return past.map((t) => new this.TensorClass('float32', (t.data as Float32Array).slice(), t.dims));
    return this.moved(past, length, Math.max(past[0].dims[2], length, 1), limit);
  }

  /** Zeroed in-place buffers of `capacity` positions, marked as such, that growths keep within `limit` positions. */
  private buffersOf(batch: number, capacity: number, limit: number): KvCache {
    const { numKvHeads: h, headDim: d } = this.kv;
    return this.kv.names.map(() => {
      const t = new this.TensorClass('float32', new Float32Array(batch * h * capacity * d), [batch, h, capacity, d]);
      this.buffers.set(t, limit);
      return t;
    });
  }

  /** `past`'s first `used` positions in new buffers of `capacity` positions. */
  private moved(past: KvCache, used: number, capacity: number, limit: number): KvCache {
    const [batch, h, room, d] = past[0].dims;
    const next = this.buffersOf(batch, capacity, limit);
    past.forEach((t, i) => {
      const from = t.data as Float32Array;
      const to = next[i].data as Float32Array;
      for (let r = 0; r < batch * h; r++) to.set(from.subarray(r * room * d, (r * room + used) * d), r * capacity * d);
    });
    return next;
  }

  /** `past`'s first `used` positions with room for `total` and an eighth more (at least 32), within its limit. */
  private grown(past: KvCache, used: number, total: number): KvCache {
    const limit = this.buffers.get(past[0]) ?? Infinity;
    return this.moved(past, used, Math.max(total, Math.min(limit, total + Math.max(32, total >> 3))), limit);
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
    // A cache from emptyCache with a capacity is appended to in place (and grown first when this step needs more).
    const own = past.filter((t) => this.buffers.has(t)).length;
    if (own !== 0 && own !== past.length)
      throw new AlkiError('BAD_INPUT', 'the KV cache mixes this decoder’s buffers with other tensors', 'pass the cache the previous step returned, as it is');
    const inPlace = own > 0;
    const room = past[0]?.dims[2] ?? 0;
    if (inPlace && pastLength > room)
      throw new AlkiError(
        'BAD_INPUT',
        `the KV cache has room for ${room} positions, fewer than the ${pastLength} said to be past`,
        'pass the cache the previous step returned',
      );
    if (inPlace && total > room) past = this.grown(past, pastLength, total);
    else if (!inPlace && past.length > 0 && room !== pastLength) {
      throw new AlkiError(
        'BAD_INPUT',
        `the KV cache holds ${room} positions but ${pastLength} were said to be past`,
        'pass the present tensors of the previous step as they are, or a cache from this decoder’s emptyCache or copyCache',
      );
    }
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
      // In place: each present output is bound to its past buffer (GroupQueryAttention sees the same pointer and
      // appends instead of copying the cache into a fresh output).
      out = inPlace ? await this.session.run(feeds, this.boundOutputs(past)) : await this.session.run(feeds);
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
      present: inPlace ? past : this.kv.presentNames.map((n) => out[n] as Tensor),
    };
  }

  /** Fetches that write each present output into its past buffer, and the logits into a fresh tensor. */
  private boundOutputs(past: KvCache): InferenceSession.NullableOnnxValueMapType {
    const fetches: Record<string, Tensor | null> = { logits: null };
    this.kv.presentNames.forEach((n, i) => (fetches[n] = past[i]));
    return fetches;
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
